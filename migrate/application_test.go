package migrate_test

import (
	"testing"

	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/transform"
)

func TestApplicationWritesRendersTheExampleBothWays(t *testing.T) {
	spec, err := transform.ParseSpec([]string{"/tenantId", "/pk={tenantId}-{createdAt|yyyyMM}"})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := transform.New(spec, []string{"/region"})
	if err != nil {
		t.Fatal(err)
	}
	item := []byte(`{"id":"o1","region":"eu","tenantId":"t7","createdAt":"2024-11-03T10:00:00Z","_rid":"x","_ts":1730628000,"_etag":"\"e\""}`)
	w, err := migrate.ApplicationWritesOf(tr, item)
	if err != nil {
		t.Fatal(err)
	}
	if len(w.KeyPaths) != 2 || w.KeyPaths[0] != "/tenantId" || w.KeyPaths[1] != "/pk" {
		t.Fatalf("key paths %v", w.KeyPaths)
	}
	if len(w.Synthetic) != 1 || w.Synthetic[0].Path != "/pk" || w.Synthetic[0].Template != "{tenantId}-{createdAt|yyyyMM}" {
		t.Fatalf("synthetic keys %+v", w.Synthetic)
	}
	if got, want := string(w.Before), `{"id":"o1","region":"eu","tenantId":"t7","createdAt":"2024-11-03T10:00:00Z"}`; got != want {
		t.Fatalf("before %s, want %s", got, want)
	}
	if got, want := string(w.After), `{"id":"o1","region":"eu","tenantId":"t7","createdAt":"2024-11-03T10:00:00Z","pk":"t7-202411"}`; got != want {
		t.Fatalf("after %s, want %s", got, want)
	}
	w, err = migrate.ApplicationWritesOf(tr, []byte(`{"id":"o2","region":"eu"}`))
	if err == nil || w.Before == nil || w.After != nil || len(w.KeyPaths) != 2 {
		t.Fatalf("an example without its key fields: %+v, %v", w, err)
	}
}
