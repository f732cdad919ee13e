package cosmos

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/rekey-dev/rekey/migrate"
)

// A container created with settings keeps them as given, computed
// properties and all, with its throughput; reading its settings returns
// them without the id, the key or the system properties.
func TestContainerSettingsRoundTrip(t *testing.T) {
	e := newEnv(t)
	ctx := tctx(t)
	settings := migrate.ContainerSettings{
		"defaultTtl":         json.RawMessage(`3600`),
		"indexingPolicy":     json.RawMessage(`{"indexingMode":"consistent","automatic":true,"includedPaths":[{"path":"/email/?"}],"excludedPaths":[{"path":"/*"}]}`),
		"uniqueKeyPolicy":    json.RawMessage(`{"uniqueKeys":[{"paths":["/email"]}]}`),
		"computedProperties": json.RawMessage(`[{"name":"cp_lowerEmail","query":"SELECT VALUE LOWER(c.email) FROM c"}]`),
	}
	def := migrate.Definition{Paths: []string{"/region"}}
	if err := e.client.CreateContainerWith(ctx, "setdb", "src", def, settings, 0, 4000); err != nil {
		t.Fatalf("create with settings in a new database: %v", err)
	}
	got, err := e.client.ContainerSettings(ctx, "setdb", "src")
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range settings {
		var a, b any
		if json.Unmarshal(got[name], &a) != nil || json.Unmarshal(want, &b) != nil || !reflect.DeepEqual(a, b) {
			t.Errorf("setting %s = %s, want %s", name, got[name], want)
		}
	}
	for _, name := range []string{"id", "partitionKey", "_rid", "_etag", "_ts", "_self"} {
		if _, ok := got[name]; ok {
			t.Errorf("settings include %s", name)
		}
	}
	if d, err := e.client.ContainerDefinition(ctx, "setdb", "src"); err != nil || !reflect.DeepEqual(d.Paths, def.Paths) {
		t.Fatalf("definition %+v %v", d, err)
	}
	if tp, err := e.client.ReadThroughput(ctx, "setdb", "src"); err != nil || tp != (Throughput{AutoscaleMax: 4000}) {
		t.Fatalf("throughput %+v %v, want autoscale 4000", tp, err)
	}
	if err := e.client.CreateContainerWith(ctx, "setdb", "manual", def, settings, 800, 0); err != nil {
		t.Fatal(err)
	}
	if tp, err := e.client.ReadThroughput(ctx, "setdb", "manual"); err != nil || tp != (Throughput{Manual: 800}) {
		t.Fatalf("throughput %+v %v, want manual 800", tp, err)
	}
	if err := e.client.CreateContainerWith(ctx, "setdb", "src", def, settings, 400, 0); !errors.Is(err, migrate.ErrConflict) {
		t.Fatalf("a second create = %v, want ErrConflict", err)
	}
	if _, err := e.client.ContainerSettings(ctx, "setdb", "absent"); !errors.Is(err, migrate.ErrNotFound) {
		t.Fatalf("settings of an absent container = %v, want ErrNotFound", err)
	}
	if err := e.client.CreateContainerWith(ctx, "setdb", "x", def, migrate.ContainerSettings{"id": json.RawMessage(`"y"`)}, 400, 0); err == nil {
		t.Fatal("a setting named id was accepted")
	}
}
