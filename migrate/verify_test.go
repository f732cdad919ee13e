package migrate

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/transform"
)

var timeZero time.Time

func keyOf(s string) Key { return Key{transform.StringValue(s)} }

// sleepHook is a fake clock that runs a function at its first sleep: the
// recheck delay, between verify's scan and its recheck.
type sleepHook struct {
	fakeClock
	once sync.Once
	fn   func()
}

func (c *sleepHook) Sleep(ctx context.Context, d time.Duration) error {
	c.once.Do(c.fn)
	return c.fakeClock.Sleep(ctx, d)
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
			r := newRig(t)
			if tc.sameSecond {
				r.src.ts = 1_700_000_000
			}
			for _, id := range []string{"a", "b", "c"} {
				r.src.upsert(t, keyOf("eu"), doc(id, "eu", "t1", 1))
			}
			r.copyAll(t)
			// The target's copy of b is stale: an update was never copied.
			r.src.upsert(t, keyOf("eu"), doc("b", "eu", "t1", 2))
			v2 := doc("b", "eu", "t1", 3)
			v := r.verifier()
			v.Clock = &sleepHook{fn: func() {
				r.src.upsert(t, keyOf("eu"), v2) // the application writes b again
				if tc.targetToo {
					key, body := r.copyOf(t, v2)
					r.dst.upsert(t, key, body)
				}
			}}
			rep, err := v.Verify(context.Background(), VerifyConfig{RecheckDelay: time.Second, TempDir: t.TempDir()})
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
	r := newRig(t)
	for _, id := range []string{"a", "b", "c"} {
		r.src.upsert(t, keyOf("eu"), doc(id, "eu", "t1", 1))
	}
	r.copyAll(t)
	r.src.upsert(t, keyOf("eu"), doc("a", "eu", "t1", 2)) // changed: copied before the recheck
	r.src.upsert(t, keyOf("eu"), doc("b", "eu", "t1", 2)) // changed: deleted from the source before the recheck
	v := r.verifier()
	v.Clock = &sleepHook{fn: func() {
		key, body := r.copyOf(t, doc("a", "eu", "t1", 2))
		r.dst.upsert(t, key, body)
		if _, err := r.src.Delete(context.Background(), keyOf("eu"), "b", ""); err != nil {
			t.Error(err)
		}
	}}
	rep, err := v.Verify(context.Background(), VerifyConfig{RecheckDelay: time.Second, TempDir: t.TempDir()})
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
	r := newRig(t)
	for _, id := range []string{"changed", "missing", "extra", "orphan", "fine"} {
		r.src.upsert(t, keyOf("eu"), doc(id, "eu", "t1", 1))
	}
	r.copyAll(t)
	r.src.upsert(t, keyOf("eu"), doc("changed", "eu", "t1", 2))
	key, _ := r.copyOf(t, doc("missing", "eu", "t1", 1))
	if _, err := r.dst.Delete(context.Background(), key, "missing", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := r.src.Delete(context.Background(), keyOf("eu"), "extra", ""); err != nil {
		t.Fatal(err)
	}
	// orphan moved to tenant t2: its copy under t1 is orphaned and fixed normally.
	r.src.upsert(t, keyOf("eu"), doc("orphan", "eu", "t2", 1))

	written := map[string]string{ // what the application writes in the target, by id
		"changed": `{"id":"changed","region":"eu","tenant":"t1","v":99,"pk":"t1"}`,
		"missing": `{"id":"missing","region":"eu","tenant":"t1","v":98,"pk":"t1"}`,
		"extra":   `{"id":"extra","region":"eu","tenant":"t1","v":97,"pk":"t1"}`,
	}
	app := maps.Clone(written) // not yet written
	r.dst.fail = func(op string, key Key, id string) error {
		if body, ok := app[id]; ok && (op == "create" || op == "replace" || op == "delete") {
			delete(app, id)
			r.dst.put(key, id, []byte(body)) // under the lock: just before the fix's write
		}
		return nil
	}
	rep, err := r.verifier().Verify(context.Background(), VerifyConfig{RecheckDelay: -1, Fix: true, TempDir: t.TempDir()})
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
		if it, ok := r.dst.get(keyOf("t1"), id); !ok || !sameContent(it.Body, []byte(body)) {
			t.Errorf("item %s: the application's write was not kept: %s", id, it.Body)
		}
	}
	if _, ok := r.dst.get(keyOf("t1"), "orphan"); ok {
		t.Error("the orphaned copy is still there")
	}
	if _, ok := r.dst.get(keyOf("t2"), "orphan"); !ok {
		t.Error("the moved item was not copied under its new key")
	}
}

// After a cutover, --fix refuses before writing anything; a plain verify
// still reads. Run, Replay and a second cutover refuse too.
func TestWritingRefusedAfterCutover(t *testing.T) {
	r := newRig(t)
	r.src.upsert(t, keyOf("eu"), doc("a", "eu", "t1", 1))
	r.copyAll(t)
	ctx := context.Background()
	meta, err := r.store.ReadMeta(ctx)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	meta.Cutover = &lease.Cutover{At: at, Items: 1}
	if err := r.store.UpdateMeta(ctx, meta); err != nil {
		t.Fatal(err)
	}
	// The application owns the target now: it adds an item.
	r.dst.upsert(t, keyOf("t9"), `{"id":"new","region":"eu","tenant":"t9","pk":"t9"}`)
	writes := func() int {
		return r.dst.calls["create"] + r.dst.calls["replace"] + r.dst.calls["delete"] + r.dst.calls["batch"]
	}
	before := writes()

	_, err = r.verifier().Verify(ctx, VerifyConfig{Fix: true, RecheckDelay: -1, TempDir: t.TempDir()})
	var coe *CutOverError
	if !errors.Is(err, ErrCutOver) || !errors.As(err, &coe) || coe.Command != "verify --fix" || !coe.At.Equal(at) {
		t.Fatalf("verify --fix after the cutover: %v", err)
	}
	rep, err := r.verifier().Verify(ctx, VerifyConfig{RecheckDelay: -1, TempDir: t.TempDir()})
	if err != nil || rep.Extra.Count != 1 || rep.Matched != 1 {
		t.Fatalf("plain verify after the cutover: %v %+v", err, rep)
	}
	if _, err := r.runner().Run(ctx, RunConfig{UntilCaughtUp: true}); !errors.Is(err, ErrCutOver) {
		t.Fatalf("run after the cutover: %v", err)
	}
	if _, err := r.runner().Replay(ctx, RunConfig{}, nil); !errors.Is(err, ErrCutOver) {
		t.Fatalf("replay after the cutover: %v", err)
	}
	c := &Cutover{Runner: r.runner(), Verifier: r.verifier(), Clock: r.clock}
	if rep, err := c.Run(ctx, CutoverConfig{QuietPeriod: time.Second}); !errors.Is(err, ErrCutOver) || rep.Recorded {
		t.Fatalf("a second cutover: %v", err)
	}
	if got := writes(); got != before {
		t.Fatalf("%d writes to the target after the cutover", got-before)
	}
}

// Items with a current dead letter are classified by it, not as missing:
// accepted dead letters are the only differences left. A fix that cannot
// write an item counts it as dead-lettered, not as copied.
func TestVerifyClassifiesDeadLetteredItems(t *testing.T) {
	r := newRig(t)
	for _, id := range []string{"ok", "big", "refused", "later"} {
		r.src.upsert(t, keyOf("eu"), doc(id, "eu", "t1", 1))
	}
	r.dst.fail = func(op string, key Key, id string) error {
		switch {
		case id == "big" && (op == "create" || op == "replace"):
			return &RequestError{Status: http.StatusRequestEntityTooLarge}
		case id == "refused" && op == "create":
			return &RequestError{Status: http.StatusBadRequest, Message: "invalid"}
		case op == "batch":
			return &RequestError{Status: http.StatusBadRequest} // item by item
		}
		return nil
	}
	r.copyAll(t)
	if n := deadCount(t, r); n != 2 {
		t.Fatalf("dead letters %d, want big and refused", n)
	}
	// later's copy vanishes, and the target now refuses it too, with no
	// dead letter yet: the fix finds out.
	key, _ := r.copyOf(t, doc("later", "eu", "t1", 1))
	if _, err := r.dst.Delete(context.Background(), key, "later", ""); err != nil {
		t.Fatal(err)
	}
	rep, err := r.verifier().Verify(context.Background(), VerifyConfig{RecheckDelay: -1, TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if rep.DeadLettered.Count != 2 || rep.Missing.Count != 1 || rep.Missing.Items[0].ID != "later" || rep.Accepted() != 2 || rep.DeadLetters != 2 {
		t.Fatalf("want big and refused dead-lettered, later missing: %+v", rep)
	}

	prev := r.dst.fail
	r.dst.fail = func(op string, key Key, id string) error {
		if id == "later" && op == "create" {
			return &RequestError{Status: http.StatusRequestEntityTooLarge}
		}
		return prev(op, key, id)
	}
	rep, err = r.verifier().Verify(context.Background(), VerifyConfig{RecheckDelay: -1, Fix: true, TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if f := rep.Fix; f == nil || f.Copied != 0 || f.DeadLettered != 1 || f.Remaining != 3 {
		t.Fatalf("fix %+v: want later dead-lettered, nothing copied", rep.Fix)
	}
	if n := deadCount(t, r); rep.Missing.Count != 0 || rep.DeadLettered.Count != 3 || rep.Accepted() != rep.Differences() || n != 3 {
		t.Fatalf("after the fix every difference is a dead letter: %+v (dead letters %d)", rep, n)
	}
}

func deadCount(t *testing.T, r *rig) int {
	t.Helper()
	n, err := r.dead.Count()
	if err != nil {
		t.Fatal(err)
	}
	return n
}
