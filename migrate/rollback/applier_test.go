package rollback

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rekey-dev/rekey/lease/leasetest"
	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/migrate/deadletter"
	"github.com/rekey-dev/rekey/migrate/internal/fake"
	"github.com/rekey-dev/rekey/migrate/pacing"
	"github.com/rekey-dev/rekey/migrate/pipeline"
	"github.com/rekey-dev/rekey/transform"
)

const horizon = 1000

// testApplier writes back into an in-memory source keyed on /region, from
// a target keyed on /pk={tenant}.
func testApplier(t *testing.T) (*Applier, *fake.Target) {
	t.Helper()
	rev, err := Reverse(fake.Transformer(t, "/pk={tenant}"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	dead, err := deadletter.OpenFile(filepath.Join(dir, "deadletter.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dead.Close() })
	ledger, err := OpenFileLedger(filepath.Join(dir, "written"))
	if err != nil {
		t.Fatal(err)
	}
	src := fake.NewTarget()
	writes := pipeline.NewWritePath(src, pipeline.WritePathConfig{Flow: pacing.Config{Controller: pacing.ControllerFixed}})
	return &Applier{Reverse: rev, Writer: writes.NewWriter(rev, dead, nil), Dead: dead, Ledger: ledger, Horizon: horizon}, src
}

func region(s string) migrate.Key { return migrate.Key{transform.StringValue(s)} }

// apply writes target items back, failing the test on an error.
func apply(t *testing.T, a *Applier, items ...string) {
	t.Helper()
	page := make([][]byte, len(items))
	for i, it := range items {
		page[i] = []byte(it)
	}
	if _, err := a.ApplyPage(context.Background(), page, func(context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := a.Dead.Sync(); err != nil {
		t.Fatal(err)
	}
}

func body(t *testing.T, src *fake.Target, id string) string {
	t.Helper()
	it, ok := src.Get(region("eu"), id)
	if !ok {
		return ""
	}
	return string(it.Body)
}

func deadKinds(t *testing.T, a *Applier) map[string]string {
	t.Helper()
	dl, err := a.Dead.List()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, d := range dl {
		out[d.SourceID] = d.Kind
	}
	return out
}

// The rollback's write rules: a new target item is created in the source;
// a source item as the cutover left it (_ts at or before the horizon) or
// as the rollback's last write left it is replaced; one holding the same
// content is left; one changed after the cutover by someone else is never
// overwritten but dead-lettered as a conflict; a target item without the
// source key's field cannot go back and is dead-lettered.
func TestApplierWritesBackByTheForwardRules(t *testing.T) {
	a, src := testApplier(t)
	src.Put(region("eu"), "old", []byte(`{"id":"old","region":"eu","tenant":"t1","v":1,"_ts":900}`))
	src.Put(region("eu"), "theirs", []byte(`{"id":"theirs","region":"eu","tenant":"t1","v":1,"_ts":2000}`))

	apply(t, a,
		`{"id":"new","region":"eu","tenant":"t2","pk":"t2","v":1,"_ts":3000}`,
		`{"id":"old","region":"eu","tenant":"t1","pk":"t1","v":2,"_ts":3000}`,
		`{"id":"theirs","region":"eu","tenant":"t1","pk":"t1","v":2,"_ts":3000}`,
		`{"id":"lost","tenant":"t3","pk":"t3","v":1,"_ts":3000}`,
	)
	if got := body(t, src, "new"); got != `{"id":"new","region":"eu","tenant":"t2","pk":"t2","v":1}` {
		t.Errorf("new item in the source: %s", got)
	}
	if got := body(t, src, "old"); !strings.Contains(got, `"v":2`) {
		t.Errorf("the cutover's copy was not replaced: %s", got)
	}
	if got := body(t, src, "theirs"); !strings.Contains(got, `"v":1`) {
		t.Errorf("a source item changed after the cutover was overwritten: %s", got)
	}
	kinds := deadKinds(t, a)
	if kinds["theirs"] != migrate.KindConflict || kinds["lost"] != transform.ErrMissingField.Error() || len(kinds) != 2 {
		t.Fatalf("dead letters %v", kinds)
	}

	// The rollback's own writes may be replaced again: the ledger knows
	// their versions. The source item "old" now carries no _ts of the
	// cutover's, so only the ledger makes it the rollback's.
	apply(t, a, `{"id":"old","region":"eu","tenant":"t1","pk":"t1","v":3,"_ts":3001}`)
	if got := body(t, src, "old"); !strings.Contains(got, `"v":3`) {
		t.Errorf("the rollback's own write was not replaced: %s", got)
	}
	// A replay of the same content writes nothing.
	before := a.Stats.Replaced.Load()
	apply(t, a, `{"id":"old","region":"eu","tenant":"t1","pk":"t1","v":3,"_ts":3001}`)
	if a.Stats.Replaced.Load() != before || a.Stats.Unchanged.Load() != 1 {
		t.Errorf("a replay replaced the item")
	}
	// Someone writes the rollback's copy: no longer the rollback's.
	it, _ := src.Get(region("eu"), "old")
	src.Put(region("eu"), "old", append([]byte(nil), it.Body...))
	apply(t, a, `{"id":"old","region":"eu","tenant":"t1","pk":"t1","v":4,"_ts":3002}`)
	if got := body(t, src, "old"); !strings.Contains(got, `"v":3`) || deadKinds(t, a)["old"] != migrate.KindConflict {
		t.Errorf("a source item rewritten by someone else was overwritten: %s, %v", got, deadKinds(t, a))
	}
}

// Delete removes the migration's copy of an item whose target copy is gone
// (as the cutover left it, or as the rollback wrote it), dead-letters one
// that someone else changed after the cutover, and needs nothing for one
// already gone.
func TestApplierDeletesOnlyTheMigrationsCopies(t *testing.T) {
	a, src := testApplier(t)
	ctx := context.Background()
	src.Put(region("eu"), "cut", []byte(`{"id":"cut","region":"eu","tenant":"t1","_ts":900}`))
	src.Put(region("eu"), "theirs", []byte(`{"id":"theirs","region":"eu","tenant":"t1","_ts":2000}`))
	apply(t, a, `{"id":"mine","region":"eu","tenant":"t1","pk":"t1","_ts":3000}`)
	for _, id := range []string{"cut", "mine", "theirs", "absent"} {
		if _, err := a.Delete(ctx, id, region("eu")); err != nil {
			t.Fatalf("delete %s: %v", id, err)
		}
	}
	if body(t, src, "cut") != "" || body(t, src, "mine") != "" || body(t, src, "theirs") == "" {
		t.Fatalf("after the deletes: cut %q, mine %q, theirs %q", body(t, src, "cut"), body(t, src, "mine"), body(t, src, "theirs"))
	}
	if err := a.Dead.Sync(); err != nil {
		t.Fatal(err)
	}
	if kinds := deadKinds(t, a); kinds["theirs"] != migrate.KindConflict || len(kinds) != 1 || a.Stats.Deleted.Load() != 2 {
		t.Fatalf("dead letters %v, deleted %d", kinds, a.Stats.Deleted.Load())
	}
}

// Both ledgers remember the last version recorded per item.
func TestLedgers(t *testing.T) {
	ctx := context.Background()
	file, err := OpenFileLedger(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for name, l := range map[string]Ledger{"file": file, "documents": NewDocLedger(leasetest.NewMemDocuments(), "rekey.x")} {
		t.Run(name, func(t *testing.T) {
			key := migrate.Key{transform.StringValue("eu"), {Type: transform.TypeNumber, Num: 7, Raw: "7"}}
			if _, ok, err := l.Written(ctx, "a", key); ok || err != nil {
				t.Fatalf("an unrecorded item: %v %v", ok, err)
			}
			for _, etag := range []string{`"e1"`, `"e2"`} {
				if err := l.Record(ctx, "a", key, etag); err != nil {
					t.Fatal(err)
				}
			}
			if etag, ok, err := l.Written(ctx, "a", key); !ok || err != nil || etag != `"e2"` {
				t.Fatalf("Written = %q %v %v, want the last version", etag, ok, err)
			}
			if _, ok, _ := l.Written(ctx, "a", region("eu")); ok {
				t.Fatal("another key of the same id is recorded")
			}
		})
	}
}
