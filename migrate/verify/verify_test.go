package verify_test

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/migrate/internal/rig"
	"github.com/rekey-dev/rekey/migrate/migratetest"
	"github.com/rekey-dev/rekey/migrate/verify"
)

// sleepHook is a fake clock that runs a function at its first sleep: the
// recheck delay, between verify's scan and its recheck.
type sleepHook struct {
	migratetest.Clock
	once sync.Once
	fn   func()
}

func (c *sleepHook) Sleep(ctx context.Context, d time.Duration) error {
	c.once.Do(c.fn)
	return c.Clock.Sleep(ctx, d)
}

// A source item written between verify's scan and its recheck is compared
// again at its new version: the difference settles only when the target
// holds that version, and otherwise stays a difference marked in flight.
// Before, a moved _ts alone settled it and verify reported a stale target
// as matching.
func TestVerifyRechecksAgainstTheSourcesNewVersion(t *testing.T) {
	for _, tc := range []struct {
		name       string
		sameSecond bool // every _ts equal: the change shows only in the content
		targetToo  bool // rekey run copies the new version before the recheck
		wantClean  bool
	}{
		{name: "source written, target stale", wantClean: false},
		{name: "source written within the second, target stale", sameSecond: true, wantClean: false},
		{name: "source written and copied", targetToo: true, wantClean: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var opts []migratetest.Option
			if tc.sameSecond { // a source clock that stands still
				opts = append(opts, migratetest.WithClock(func() time.Time { return time.Unix(1_700_000_000, 0) }))
			}
			r := rig.New(t, opts...)
			for _, id := range []string{"a", "b", "c"} {
				migratetest.MustUpsert(t, r.Src, rig.Doc(id, "eu", "t1", 1))
			}
			r.CopyAll(t)
			// The target's copy of b is stale: an update was never copied.
			migratetest.MustUpsert(t, r.Src, rig.Doc("b", "eu", "t1", 2))
			v2 := rig.Doc("b", "eu", "t1", 3)
			v := r.Verifier()
			v.Clock = &sleepHook{fn: func() {
				migratetest.MustUpsert(t, r.Src, v2) // the application writes b again
				if tc.targetToo {
					_, body := r.CopyOf(t, v2)
					migratetest.MustUpsert(t, r.Dst, body)
				}
			}}
			rep, err := v.Verify(context.Background(), verify.Config{RecheckDelay: time.Second, TempDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Clean != tc.wantClean {
				t.Fatalf("clean %v, want %v: %+v", rep.Clean, tc.wantClean, rep)
			}
			if tc.wantClean {
				if rep.Settled != 1 || rep.Changed.Count != 0 || rep.InFlight != 0 {
					t.Fatalf("settled %d, changed %d, in flight %d; want 1, 0, 0", rep.Settled, rep.Changed.Count, rep.InFlight)
				}
				return
			}
			if rep.Changed.Count != 1 || rep.Settled != 0 || rep.InFlight != 1 || len(rep.Changed.Items) != 1 ||
				rep.Changed.Items[0].ID != "b" || !rep.Changed.Items[0].InFlight || rep.Matched != 2 {
				t.Fatalf("want b changed and in flight, 2 matched: %+v", rep)
			}
		})
	}
}

// A difference that settles on its own (rekey run copied it, or the source
// deleted it along with the copy) is not reported; one whose source item
// was deleted while its copy stays is not settled.
func TestVerifySettlesOnlyWhatTheTargetMatches(t *testing.T) {
	r := rig.New(t)
	for _, id := range []string{"a", "b", "c"} {
		migratetest.MustUpsert(t, r.Src, rig.Doc(id, "eu", "t1", 1))
	}
	r.CopyAll(t)
	migratetest.MustUpsert(t, r.Src, rig.Doc("a", "eu", "t1", 2)) // changed: copied before the recheck
	migratetest.MustUpsert(t, r.Src, rig.Doc("b", "eu", "t1", 2)) // changed: deleted from the source before the recheck
	v := r.Verifier()
	v.Clock = &sleepHook{fn: func() {
		_, body := r.CopyOf(t, rig.Doc("a", "eu", "t1", 2))
		migratetest.MustUpsert(t, r.Dst, body)
		if _, err := r.Src.Delete(context.Background(), rig.Key("eu"), "b", ""); err != nil {
			t.Error(err)
		}
	}}
	rep, err := v.Verify(context.Background(), verify.Config{RecheckDelay: time.Second, TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Settled != 1 || rep.Changed.Count != 1 || rep.Changed.Items[0].ID != "b" || !rep.Changed.Items[0].InFlight || rep.Clean {
		t.Fatalf("want a settled and b (its copy outlived its source) still a difference: %+v", rep)
	}
}

// --fix writes only over the version it examined. The application writes
// each item between the examination and the fix's write: the delete of an
// extra item, the replace of a changed one and the copy of a missing one
// all find a newer version and leave it as it is.
func TestVerifyFixWritesOnlyTheVersionItCompared(t *testing.T) {
	r := rig.New(t)
	for _, id := range []string{"changed", "missing", "extra", "orphan", "fine"} {
		migratetest.MustUpsert(t, r.Src, rig.Doc(id, "eu", "t1", 1))
	}
	r.CopyAll(t)
	migratetest.MustUpsert(t, r.Src, rig.Doc("changed", "eu", "t1", 2))
	key, _ := r.CopyOf(t, rig.Doc("missing", "eu", "t1", 1))
	if _, err := r.Dst.Delete(context.Background(), key, "missing", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Src.Delete(context.Background(), rig.Key("eu"), "extra", ""); err != nil {
		t.Fatal(err)
	}
	// orphan moved to tenant t2: its copy under t1 is orphaned and fixed normally.
	migratetest.MustUpsert(t, r.Src, rig.Doc("orphan", "eu", "t2", 1))

	written := map[string]string{ // what the application writes in the target, by id
		"changed": `{"id":"changed","region":"eu","tenant":"t1","v":99,"pk":"t1"}`,
		"missing": `{"id":"missing","region":"eu","tenant":"t1","v":98,"pk":"t1"}`,
		"extra":   `{"id":"extra","region":"eu","tenant":"t1","v":97,"pk":"t1"}`,
	}
	app := maps.Clone(written) // not yet written
	r.Dst.Intercept(func(op string, key migrate.Key, id string) error {
		if body, ok := app[id]; ok && (op == migratetest.OpCreate || op == migratetest.OpReplace || op == migratetest.OpDelete) {
			delete(app, id)
			migratetest.MustUpsert(t, r.Dst, body) // just before the fix's write
		}
		return nil
	})
	rep, err := r.Verifier().Verify(context.Background(), verify.Config{RecheckDelay: -1, Fix: true, TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if len(app) != 0 {
		t.Fatalf("the fix never wrote %v", app)
	}
	f := rep.Fix
	if f == nil || f.Skipped != 3 || f.Copied != 1 || f.Deleted != 1 || f.Remaining != 3 || rep.Clean {
		t.Fatalf("fix %+v (want 3 skipped, orphan copied and its old copy deleted, 3 remaining), report %+v", f, rep)
	}
	for id, body := range written {
		if it, ok := r.Dst.Get(rig.Key("t1"), id); !ok || !migrate.SameContent(it.Body, []byte(body)) {
			t.Errorf("item %s: the application's write was not kept: %s", id, it.Body)
		}
	}
	if _, ok := r.Dst.Get(rig.Key("t1"), "orphan"); ok {
		t.Error("the orphaned copy is still there")
	}
	if _, ok := r.Dst.Get(rig.Key("t2"), "orphan"); !ok {
		t.Error("the moved item was not copied under its new key")
	}
}

// Items with a current dead letter are classified by it, not as missing:
// accepted dead letters are the only differences left. A fix that cannot
// write an item counts it as dead-lettered, not as copied.
func TestVerifyClassifiesDeadLetteredItems(t *testing.T) {
	r := rig.New(t)
	for _, id := range []string{"ok", "big", "refused", "later"} {
		migratetest.MustUpsert(t, r.Src, rig.Doc(id, "eu", "t1", 1))
	}
	refuse := func(op string, key migrate.Key, id string) error {
		switch {
		case id == "big" && (op == "create" || op == "replace"):
			return &migrate.RequestError{Status: http.StatusRequestEntityTooLarge}
		case id == "refused" && op == "create":
			return &migrate.RequestError{Status: http.StatusBadRequest, Message: "invalid"}
		case op == "batch":
			return &migrate.RequestError{Status: http.StatusBadRequest} // item by item
		}
		return nil
	}
	r.Dst.Intercept(refuse)
	r.CopyAll(t)
	if n := r.DeadCount(t); n != 2 {
		t.Fatalf("dead letters %d, want big and refused", n)
	}
	// later's copy vanishes, and the target now refuses it too, with no
	// dead letter yet: the fix finds out.
	key, _ := r.CopyOf(t, rig.Doc("later", "eu", "t1", 1))
	if _, err := r.Dst.Delete(context.Background(), key, "later", ""); err != nil {
		t.Fatal(err)
	}
	rep, err := r.Verifier().Verify(context.Background(), verify.Config{RecheckDelay: -1, TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if rep.DeadLettered.Count != 2 || rep.Missing.Count != 1 || rep.Missing.Items[0].ID != "later" || rep.Accepted() != 2 || rep.DeadLetters != 2 {
		t.Fatalf("want big and refused dead-lettered, later missing: %+v", rep)
	}

	r.Dst.Intercept(func(op string, key migrate.Key, id string) error {
		if id == "later" && op == "create" {
			return &migrate.RequestError{Status: http.StatusRequestEntityTooLarge}
		}
		return refuse(op, key, id)
	})
	rep, err = r.Verifier().Verify(context.Background(), verify.Config{RecheckDelay: -1, Fix: true, TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if f := rep.Fix; f == nil || f.Copied != 0 || f.DeadLettered != 1 || f.Remaining != 3 {
		t.Fatalf("fix %+v: want later dead-lettered, nothing copied", rep.Fix)
	}
	if n := r.DeadCount(t); rep.Missing.Count != 0 || rep.DeadLettered.Count != 3 || rep.Accepted() != rep.Differences() || n != 3 {
		t.Fatalf("after the fix every difference is a dead letter: %+v (dead letters %d)", rep, n)
	}
}

// Verify defaults its clock and logger in a copy of the Verifier: the
// caller's is the same after it as before.
func TestVerifyLeavesTheVerifierAsGiven(t *testing.T) {
	r := rig.New(t)
	migratetest.MustUpsert(t, r.Src, rig.Doc("a", "eu", "t1", 1))
	r.CopyAll(t)
	v := r.Verifier()
	v.Clock = nil
	before := *v
	if rep, err := v.Verify(context.Background(), verify.Config{RecheckDelay: -1, Fix: true, TempDir: t.TempDir()}); err != nil || !rep.Clean {
		t.Fatalf("verify %+v %v", rep, err)
	}
	if *v != before {
		t.Fatalf("Verify changed its Verifier: %+v, was %+v", *v, before)
	}
}

// A source item that does not transform and that no dead letter records
// (the copy never read it) is recorded as a dead letter by --fix, so that
// every difference --accept-dead-letter accepts is a counted dead letter.
func TestVerifyFixDeadLettersAnUntransformableItem(t *testing.T) {
	r := rig.New(t)
	migratetest.MustUpsert(t, r.Src, rig.Doc("a", "eu", "t1", 1))
	r.CopyAll(t)
	migratetest.MustUpsert(t, r.Src, `{"id":"b","region":"eu","v":1}`) // no tenant: no key
	rep, err := r.Verifier().Verify(context.Background(), verify.Config{RecheckDelay: -1, TempDir: t.TempDir()})
	if err != nil || rep.Untransformable.Count != 1 || !strings.Contains(rep.Untransformable.Items[0].Reason, "no dead letter") {
		t.Fatalf("verify: %v %+v: want b untransformable, not dead-lettered yet", err, rep.Untransformable)
	}
	rep, err = r.Verifier().Verify(context.Background(), verify.Config{RecheckDelay: -1, Fix: true, TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if n := r.DeadCount(t); n != 1 || rep.Untransformable.Count != 1 || rep.Fix.DeadLettered != 1 || rep.Accepted() != rep.Differences() || rep.DeadLetters != 1 {
		t.Fatalf("fix: dead letters %d, report %+v, fix %+v: want b dead-lettered and accepted", n, rep, rep.Fix)
	}
}

// Verify rechecks and fixes its differences by item, in the same order on
// every run of the same data. Before, they went in the order of a map and
// of spill buckets hashed with a random seed: a replay of a simulated
// migration could not reproduce a verify.
func TestVerifyRechecksAndFixesInTheSameOrderEveryTime(t *testing.T) {
	order := func() []string {
		r := rig.New(t)
		for i := range 40 {
			migratetest.MustUpsert(t, r.Src, rig.Doc(fmt.Sprintf("i%02d", i), "eu", "t1", 1))
		}
		r.CopyAll(t)
		for i := range 40 { // every copy is now outdated
			migratetest.MustUpsert(t, r.Src, rig.Doc(fmt.Sprintf("i%02d", i), "eu", "t1", 2))
		}
		var ops []string
		r.Dst.Intercept(func(op string, _ migrate.Key, id string) error {
			if op != migratetest.OpFeed {
				ops = append(ops, op+" "+id)
			}
			return nil
		})
		rep, err := r.Verifier().Verify(context.Background(), verify.Config{RecheckDelay: -1, Fix: true, TempDir: t.TempDir()})
		if err != nil || rep.Fix == nil || rep.Fix.Copied != 40 {
			t.Fatalf("verify --fix: %v %+v", err, rep)
		}
		return ops
	}
	first := order()
	var ids []string
	for _, op := range first {
		if id, ok := strings.CutPrefix(op, "replace "); ok {
			ids = append(ids, id)
		}
	}
	if len(ids) != 40 || !slices.IsSorted(ids) {
		t.Fatalf("the fix replaced %v: want the 40 items in the order of their ids", ids)
	}
	for range 3 {
		if again := order(); !slices.Equal(again, first) {
			t.Fatalf("another run went in another order:\n%v\nthen\n%v", first, again)
		}
	}
}
