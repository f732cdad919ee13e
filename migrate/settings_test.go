package migrate_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/rekey-dev/rekey/migrate"
)

func TestCarrySettings(t *testing.T) {
	src := migrate.ContainerSettings{
		"defaultTtl":               json.RawMessage(`3600`),
		"indexingPolicy":           json.RawMessage(`{"indexingMode":"consistent"}`),
		"computedProperties":       json.RawMessage(`[{"name":"cp","query":"SELECT VALUE 1 FROM c"}]`),
		"uniqueKeyPolicy":          json.RawMessage(`{"uniqueKeys":[{"paths":["/email"]}]}`),
		"conflictResolutionPolicy": json.RawMessage(`{"mode":"LastWriterWins","conflictResolutionPath":"/_ts"}`),
	}
	paths := func(p ...string) []string { return p }
	plan := migrate.CarrySettings(src, migrate.SettingsChoice{}, paths("/region"), paths("/pk"))
	if err := plan.Err(); !errors.Is(err, migrate.ErrUniqueKeysUndecided) || !strings.Contains(err.Error(), "--unique-keys copy") ||
		!strings.Contains(err.Error(), "unique per (/region, /email)") || !strings.Contains(err.Error(), "per (/pk, /email)") {
		t.Fatalf("undecided unique keys: %v", err)
	}
	copied := migrate.CarrySettings(src, migrate.SettingsChoice{UniqueKeys: migrate.UniqueKeysCopy}, paths("/region"), paths("/pk"))
	if err := copied.Err(); err != nil {
		t.Fatal(err)
	}
	got := copied.Carried()
	for _, name := range []string{"defaultTtl", "indexingPolicy", "computedProperties", "uniqueKeyPolicy", "conflictResolutionPolicy"} {
		if string(got[name]) != string(src[name]) {
			t.Errorf("copy: %s = %s, want %s", name, got[name], src[name])
		}
	}
	dropped := migrate.CarrySettings(src, migrate.SettingsChoice{UniqueKeys: migrate.UniqueKeysDrop, Drop: []string{"defaultTtl"}}, paths("/region"), paths("/pk")).Carried()
	if _, ok := dropped["uniqueKeyPolicy"]; ok {
		t.Error("--unique-keys drop carried the unique keys")
	}
	if _, ok := dropped["defaultTtl"]; ok {
		t.Error("--drop-setting defaultTtl carried it")
	}
	if len(migrate.CarrySettings(migrate.ContainerSettings{"uniqueKeyPolicy": json.RawMessage(`{"uniqueKeys":[]}`)}, migrate.SettingsChoice{}, nil, nil).Settings) != 1 {
		t.Error("an empty unique key policy blocks")
	}

	odd := migrate.ContainerSettings{
		"clientEncryptionPolicy":   json.RawMessage(`{"includedPaths":[]}`),
		"conflictResolutionPolicy": json.RawMessage(`{"mode":"Custom","conflictResolutionProcedure":"dbs/d/colls/c/sprocs/p"}`),
		"somethingNew":             json.RawMessage(`true`),
	}
	err := migrate.CarrySettings(odd, migrate.SettingsChoice{}, nil, nil).Err()
	if !errors.Is(err, migrate.ErrSettingNotCarried) {
		t.Fatalf("uncarried settings: %v", err)
	}
	for _, name := range []string{"clientEncryptionPolicy", "conflictResolutionPolicy", "somethingNew", "--drop-setting"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("the refusal does not name %s: %v", name, err)
		}
	}
	all := migrate.SettingsChoice{Drop: []string{"clientEncryptionPolicy", "conflictResolutionPolicy", "somethingNew"}}
	if p := migrate.CarrySettings(odd, all, nil, nil); p.Err() != nil || len(p.Carried()) != 0 {
		t.Fatalf("all dropped: %v %v", p.Err(), p.Carried())
	}
	if err := (migrate.SettingsChoice{UniqueKeys: "keep"}).Validate(); err == nil {
		t.Error("--unique-keys keep accepted")
	}
}
