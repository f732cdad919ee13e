package main

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/migrate/plan"
)

// sourceWithSettings creates the source shop/orders keyed on /region with
// a default TTL, a custom indexing policy, a unique key and a computed
// property, plus extra settings.
func sourceWithSettings(t *testing.T, e *e2e, id string, extra migrate.ContainerSettings) migrate.ContainerSettings {
	t.Helper()
	settings := migrate.ContainerSettings{
		"defaultTtl":         json.RawMessage(`3600`),
		"indexingPolicy":     json.RawMessage(`{"indexingMode":"consistent","automatic":true,"includedPaths":[{"path":"/email/?"},{"path":"/tenantId/?"}],"excludedPaths":[{"path":"/*"}]}`),
		"uniqueKeyPolicy":    json.RawMessage(`{"uniqueKeys":[{"paths":["/email"]}]}`),
		"computedProperties": json.RawMessage(`[{"name":"cp_lowerEmail","query":"SELECT VALUE LOWER(c.email) FROM c"}]`),
	}
	for k, v := range extra {
		settings[k] = v
	}
	if err := e.client.CreateContainerWith(context.Background(), testDB, id, migrate.TargetDefinition([]string{"/region"}), settings, 12_000, 0); err != nil {
		t.Fatal(err)
	}
	src := e.client.Container(testDB, id)
	for i := 0; i < 20; i++ {
		o := order(i, 1)
		o["email"] = itemID(i) + "@example.com"
		put(t, src, region(i), o)
	}
	return settings
}

func sameJSON(a, b []byte) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && reflect.DeepEqual(x, y)
}

// --create-target gives the target the source's default TTL, indexing
// policy and computed properties; the source's unique key needs an
// explicit --unique-keys copy|drop, because under the new key it means
// something else, and plan shows it all before anything is created.
func TestCreateTargetCarriesTheSourcesSettings(t *testing.T) {
	e := newE2E(t)
	settings := sourceWithSettings(t, e, "orders", nil)
	keys := []string{"/tenantId"}
	args := func(cmd ...string) []string { return append(cmd, e.args("orders", "target", keys...)...) }

	r := runCLI(t, args("plan", "--target-throughput", "12000")...)
	if r.code != ExitPlanWarnings {
		t.Errorf("plan with undecided unique keys: exit %d, want %d", r.code, ExitPlanWarnings)
	}
	for _, want := range []string{"settings a target created by --create-target gets from the source:", "defaultTtl", "indexingPolicy",
		"computedProperties", "uniqueKeyPolicy", "NEEDS A DECISION", "unique per (/region, /email)", "per (/tenantId, /email)", "--unique-keys copy"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("plan does not say %q:\n%s", want, r.out)
		}
	}
	r = runCLI(t, args("plan", "--target-throughput", "12000", "--unique-keys", "copy", "-o", "json")...)
	var p plan.Plan
	if err := json.Unmarshal([]byte(r.out), &p); err != nil || r.code != 0 || p.Settings == nil {
		t.Fatalf("plan --unique-keys copy -o json: exit %d, %v\n%s%s", r.code, err, r.out, r.errOut)
	}
	for name, want := range settings {
		if !sameJSON(p.Settings.Carried()[name], want) {
			t.Errorf("plan -o json: %s carried as %s, want %s", name, p.Settings.Carried()[name], want)
		}
	}

	r = runCLI(t, args("run", "--until-caught-up", "--create-target", "--target-throughput", "12000")...)
	if r.code != ExitError || !strings.Contains(r.errOut, "unique key") || !strings.Contains(r.errOut, "--unique-keys copy") {
		t.Fatalf("run --create-target with undecided unique keys: exit %d\n%s%s", r.code, r.out, r.errOut)
	}
	if _, err := e.client.ContainerDefinition(context.Background(), testDB, "target"); !errors.Is(err, migrate.ErrNotFound) {
		t.Fatalf("the target was created although refused: %v", err)
	}
	r = runCLI(t, args("run", "--until-caught-up", "--create-target", "--target-throughput", "12000", "--unique-keys", "copy")...)
	if r.code != 0 {
		t.Fatalf("run --create-target --unique-keys copy: exit %d\n%s%s", r.code, r.out, r.errOut)
	}
	got, err := e.client.ContainerSettings(context.Background(), testDB, "target")
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range settings {
		if !sameJSON(got[name], want) {
			t.Errorf("the target's %s = %s, want the source's %s", name, got[name], want)
		}
	}
	checkCopy(t, e.client.Container(testDB, "orders"), e.client.Container(testDB, "target"), keys, []string{"/region"}, nil)

	// --unique-keys drop: the second target has none.
	r = runCLI(t, append([]string{"plan", "--target-throughput", "12000", "--create-target", "--unique-keys", "drop"}, e.args("orders", "target2", keys...)...)...)
	if r.code != 0 {
		t.Fatalf("plan --create-target --unique-keys drop: exit %d\n%s%s", r.code, r.out, r.errOut)
	}
	got, err = e.client.ContainerSettings(context.Background(), testDB, "target2")
	if err != nil {
		t.Fatal(err)
	}
	if uk := got["uniqueKeyPolicy"]; uk != nil && strings.Contains(string(uk), "/email") {
		t.Errorf("--unique-keys drop: the target has %s", uk)
	}
	if !sameJSON(got["defaultTtl"], settings["defaultTtl"]) {
		t.Errorf("--unique-keys drop lost the default TTL: %s", got["defaultTtl"])
	}
}

// A setting rekey cannot carry is named, and the target is not created
// unless --drop-setting leaves it out.
func TestCreateTargetRefusesASettingItCannotCarry(t *testing.T) {
	e := newE2E(t)
	sourceWithSettings(t, e, "orders", migrate.ContainerSettings{
		"conflictResolutionPolicy": json.RawMessage(`{"mode":"Custom","conflictResolutionPath":"","conflictResolutionProcedure":"dbs/shop/colls/orders/sprocs/resolve"}`),
	})
	keys := []string{"/tenantId"}
	base := append([]string{"run", "--until-caught-up", "--create-target", "--target-throughput", "12000", "--unique-keys", "drop"}, e.args("orders", "target", keys...)...)
	r := runCLI(t, base...)
	if r.code != ExitError || !strings.Contains(r.errOut, "conflictResolutionPolicy") || !strings.Contains(r.errOut, "--drop-setting conflictResolutionPolicy") {
		t.Fatalf("run --create-target with a custom conflict policy: exit %d\n%s%s", r.code, r.out, r.errOut)
	}
	r = runCLI(t, append(base, "--drop-setting", "conflictResolutionPolicy")...)
	if r.code != 0 {
		t.Fatalf("with --drop-setting: exit %d\n%s%s", r.code, r.out, r.errOut)
	}
	got, err := e.client.ContainerSettings(context.Background(), testDB, "target")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(got["conflictResolutionPolicy"]), "Custom") {
		t.Fatalf("the dropped setting reached the target: %s", got["conflictResolutionPolicy"])
	}
}
