package cutover

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/migrate/internal/rig"
	"github.com/rekey-dev/rekey/migrate/migratetest"
	"github.com/rekey-dev/rekey/migrate/pipeline"
	"github.com/rekey-dev/rekey/migrate/verify"
)

// appDuringVerify makes the application write the source item id once
// during each final verify, right after the verify's scan read it. It
// returns how many writes it made.
func appDuringVerify(t *testing.T, r *rig.Rig, c *Gate, id string, times int) func() int {
	return appActsDuringVerify(t, r, c, id, times, func(written int) {
		migratetest.MustUpsert(t, r.Src, rig.Doc(id, "eu", "t1", 100+written))
	})
}

// appActsDuringVerify has the application act on the source item id (the
// nth time: act(n)) once during each final verify, right after the
// verify's scan read it, at most times times. It returns how often it did.
func appActsDuringVerify(t *testing.T, r *rig.Rig, c *Gate, id string, times int, act func(n int)) func() int {
	var mu sync.Mutex
	armed, written := false, 0
	c.Progress = func(step string) {
		mu.Lock()
		defer mu.Unlock()
		if strings.HasPrefix(step, "verifying") && written < times {
			armed = true
		}
	}
	r.Src.AfterFeed(func(_ migrate.ChangeRequest, page migrate.ChangePage) {
		mu.Lock()
		defer mu.Unlock()
		for _, body := range page.Items {
			if armed && rig.IDOf(string(body)) == id {
				armed = false
				written++
				act(written)
			}
		}
	})
	return func() int {
		mu.Lock()
		defer mu.Unlock()
		return written
	}
}

// The application writes the source while the final verify runs, after the
// verify read the item: the verify compared an outdated version and found
// the copy clean. Cutover sees the change in the source's change feed after
// the verify, drains it, verifies again, and records only then, with the
// target holding the item's latest version.
func TestCutoverVerifiesAgainWhenTheSourceChangesDuringItsVerify(t *testing.T) {
	r := rig.New(t)
	for _, id := range []string{"a", "b", "c", "d"} {
		migratetest.MustUpsert(t, r.Src, rig.Doc(id, "eu", "t1", 1))
	}
	r.CopyAll(t)
	c := &Gate{Runner: r.Runner(), Verifier: r.Verifier(), Clock: r.Clock}
	writes := appDuringVerify(t, r, c, "c", 1)
	var steps []string
	progress := c.Progress
	c.Progress = func(step string) { steps = append(steps, step); progress(step) }

	rep, err := c.Run(context.Background(), Config{QuietPeriod: time.Second, Timeout: time.Minute, Run: pipeline.RunConfig{PollInterval: time.Millisecond}, Verify: verify.Config{RecheckDelay: -1, TempDir: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	if writes() != 1 || rep.Verifies != 2 || !rep.Recorded || !rep.Verify.Clean {
		t.Fatalf("writes %d, report %+v: want a second verify, clean, recorded", writes(), rep)
	}
	if !strings.Contains(strings.Join(steps, "\n"), "the source changed during the final verify") {
		t.Errorf("progress does not say why it verified again:\n%s", strings.Join(steps, "\n"))
	}
	latest := rig.Doc("c", "eu", "t1", 101)
	if it, ok := r.TargetCopy(t, latest); !ok || !migrate.SameContent(it.Body, []byte(mustCopy(t, r, latest))) {
		t.Fatalf("target holds %s, want the latest version %s", it.Body, latest)
	}
	meta, err := r.Store.ReadMeta(context.Background())
	if err != nil || meta.Cutover == nil || meta.Cutover.Items != 4 {
		t.Fatalf("recorded cutover %+v %v", meta.Cutover, err)
	}
}

func mustCopy(t *testing.T, r *rig.Rig, body string) string {
	_, c := r.CopyOf(t, body)
	return c
}

// An application that writes during every final verify keeps cutover from
// recording anything: it refuses once the timeout passes.
func TestCutoverRefusesWhileTheSourceChangesDuringEveryVerify(t *testing.T) {
	r := rig.New(t)
	for _, id := range []string{"a", "b"} {
		migratetest.MustUpsert(t, r.Src, rig.Doc(id, "eu", "t1", 1))
	}
	r.CopyAll(t)
	c := &Gate{Runner: r.Runner(), Verifier: r.Verifier(), Clock: r.Clock}
	writes := appDuringVerify(t, r, c, "a", 1000)
	rep, err := c.Run(context.Background(), Config{QuietPeriod: time.Second, Timeout: 10 * time.Second, Run: pipeline.RunConfig{PollInterval: time.Millisecond}, Verify: verify.Config{RecheckDelay: -1, TempDir: t.TempDir()}})
	if !errors.Is(err, ErrStillWriting) || rep.Recorded || !strings.Contains(err.Error(), "during the final verify") {
		t.Fatalf("want a refusal: %v, %+v", err, rep)
	}
	if writes() < 2 || rep.Verifies != writes() {
		t.Fatalf("%d verifies for %d writes", rep.Verifies, writes())
	}
	if meta, err := r.Store.ReadMeta(context.Background()); err != nil || meta.Cutover != nil {
		t.Fatalf("a cutover was recorded: %+v %v", meta.Cutover, err)
	}
}

// An item the target refuses (too large) is dead-lettered; the final verify
// classifies it as dead-lettered, not missing, so --accept-dead-letter cuts
// over. Without accepting, cutover refuses.
func TestCutoverAcceptsDeadLetteredItems(t *testing.T) {
	r := rig.New(t)
	for _, id := range []string{"a", "big"} {
		migratetest.MustUpsert(t, r.Src, rig.Doc(id, "eu", "t"+id, 1))
	}
	r.Dst.Intercept(func(op string, key migrate.Key, id string) error {
		if id == "big" && (op == migratetest.OpCreate || op == migratetest.OpReplace) {
			return &migrate.RequestError{Status: http.StatusRequestEntityTooLarge}
		}
		return nil
	})
	r.CopyAll(t)
	cfg := Config{QuietPeriod: time.Second, Timeout: time.Minute, Run: pipeline.RunConfig{PollInterval: time.Millisecond}, Verify: verify.Config{RecheckDelay: -1, TempDir: t.TempDir()}}
	c := &Gate{Runner: r.Runner(), Verifier: r.Verifier(), Clock: r.Clock}
	if _, err := c.Run(context.Background(), cfg); !errors.Is(err, ErrDeadLettersPending) {
		t.Fatalf("without accepting: %v", err)
	}
	cfg.AcceptDeadLetter = true
	rep, err := c.Run(context.Background(), cfg)
	if err != nil || !rep.Recorded {
		t.Fatalf("accepting the dead letter: %v %+v", err, rep)
	}
	if v := rep.Verify; v.DeadLettered.Count != 1 || v.Missing.Count != 0 || v.Matched != 1 || v.Fix == nil || v.Fix.Copied != 0 {
		t.Fatalf("final verify %+v", v)
	}
}

// Cutover and its final verify default what they are given unset (the
// gate's clock, the verifier's state and clock, each drain's stats) in
// copies of their own: the caller's gate, runner and verifier are the same
// after a cutover as before.
func TestCutoverLeavesItsPartsAsGiven(t *testing.T) {
	r := rig.New(t)
	migratetest.MustUpsert(t, r.Src, rig.Doc("a", "eu", "t1", 1))
	r.CopyAll(t)
	v := r.Verifier()
	v.State, v.Clock = nil, nil
	c := &Gate{Runner: r.Runner(), Verifier: v}
	runner, verifier := *c.Runner, *v
	rep, err := c.Run(context.Background(), Config{QuietPeriod: time.Millisecond, Timeout: time.Minute, Run: pipeline.RunConfig{PollInterval: time.Millisecond}, Verify: verify.Config{RecheckDelay: -1, TempDir: t.TempDir()}})
	if err != nil || !rep.Recorded {
		t.Fatalf("cutover %+v %v", rep, err)
	}
	if c.Clock != nil || *c.Runner != runner || c.Verifier != v || *v != verifier {
		t.Fatalf("cutover changed what it was given: clock %v, runner %+v, verifier %+v", c.Clock, *c.Runner, *v)
	}
}

// An item copied and then changed so that it no longer transforms leaves
// its old copy behind, orphaned. The final verify's fix deletes it, and
// the difference settles once the target no longer holds it: the item
// itself remains, untransformable and dead-lettered, which
// --accept-dead-letter accepts. Before, the orphan never settled (its
// source item could not be examined as a copy) and cutover refused for
// good.
func TestCutoverSettlesTheOrphanOfAnItemThatNoLongerTransforms(t *testing.T) {
	r := rig.New(t)
	for _, id := range []string{"a", "b"} {
		migratetest.MustUpsert(t, r.Src, rig.Doc(id, "eu", "t1", 1))
	}
	r.CopyAll(t)
	old, ok := r.TargetCopy(t, rig.Doc("b", "eu", "t1", 1))
	if !ok {
		t.Fatal("b was not copied")
	}
	migratetest.MustUpsert(t, r.Src, `{"id":"b","region":"eu","v":2}`) // no tenant: no key
	r.CopyAll(t)
	if n := r.DeadCount(t); n != 1 {
		t.Fatalf("dead letters %d, want b's", n)
	}
	c := &Gate{Runner: r.Runner(), Verifier: r.Verifier(), Clock: r.Clock}
	cfg := Config{QuietPeriod: time.Second, Timeout: time.Minute, AcceptDeadLetter: true,
		Run: pipeline.RunConfig{PollInterval: time.Millisecond}, Verify: verify.Config{RecheckDelay: -1, TempDir: t.TempDir()}}
	rep, err := c.Run(context.Background(), cfg)
	if err != nil || !rep.Recorded {
		t.Fatalf("cutover: %v, %+v", err, rep)
	}
	v := rep.Verify
	if v.Orphaned.Count != 0 || v.Untransformable.Count != 1 || v.Accepted() != v.Differences() || v.Fix == nil || v.Fix.Deleted != 1 {
		t.Fatalf("final verify %+v, fix %+v: want the orphan deleted and b the one accepted difference", v, v.Fix)
	}
	if _, ok := r.Dst.Get(old.Key, "b"); ok {
		t.Fatal("b's old copy is still in the target")
	}
}

// The application deletes a source item during the final verify, after
// the verify compared it: the change feed does not carry deletes, so only
// the scan of the source after the verify sees it. Cutover drains,
// verifies again (whose fix deletes the copy) and records only then.
// Before, it recorded with the deleted item's copy still in the target.
func TestCutoverVerifiesAgainWhenTheSourceDeletesDuringItsVerify(t *testing.T) {
	r := rig.New(t)
	for _, id := range []string{"a", "b", "c", "d"} {
		migratetest.MustUpsert(t, r.Src, rig.Doc(id, "eu", "t1", 1))
	}
	r.CopyAll(t)
	c := &Gate{Runner: r.Runner(), Verifier: r.Verifier(), Clock: r.Clock}
	deletes := appActsDuringVerify(t, r, c, "c", 1, func(int) {
		if _, err := r.Src.Delete(context.Background(), rig.Key("eu"), "c", ""); err != nil {
			t.Error(err)
		}
	})
	rep, err := c.Run(context.Background(), Config{QuietPeriod: time.Second, Timeout: time.Minute, Run: pipeline.RunConfig{PollInterval: time.Millisecond}, Verify: verify.Config{RecheckDelay: -1, TempDir: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	if deletes() != 1 || rep.Verifies != 2 || !rep.Recorded || !rep.Verify.Clean || rep.Verify.Fix == nil || rep.Verify.Fix.Deleted != 1 {
		t.Fatalf("deletes %d, report %+v (fix %+v): want a second verify that deleted c's copy, clean, recorded", deletes(), rep, rep.Verify.Fix)
	}
	if _, ok := r.TargetCopy(t, rig.Doc("c", "eu", "t1", 1)); ok {
		t.Fatal("the copy of the deleted item is still in the target")
	}
}

// A cutover waits for the source to be quiet for at least MinQuietPeriod
// whatever its configuration asks, so that a source write after the
// cutover has a later _ts (whole seconds) than every change it copied: a
// rollback takes an item whose _ts is not after the recorded horizon for
// the one the cutover left, and would otherwise overwrite such a write.
func TestCutoverWaitsAtLeastASecondOfQuiet(t *testing.T) {
	r := rig.New(t)
	migratetest.MustUpsert(t, r.Src, rig.Doc("a", "eu", "t1", 1))
	r.CopyAll(t)
	migratetest.MustUpsert(t, r.Src, rig.Doc("a", "eu", "t1", 2)) // a change the drain copies
	c := &Gate{Runner: r.Runner(), Verifier: r.Verifier(), Clock: r.Clock}
	rep, err := c.Run(context.Background(), Config{QuietPeriod: 100 * time.Millisecond, Timeout: time.Minute, Run: pipeline.RunConfig{PollInterval: time.Millisecond}, Verify: verify.Config{RecheckDelay: -1, TempDir: t.TempDir()}})
	if err != nil || !rep.Recorded {
		t.Fatalf("cutover: %v %+v", err, rep)
	}
	if rep.Drained == 0 || rep.QuietFor < MinQuietPeriod {
		t.Fatalf("the cutover drained %d changes and recorded after %v of quiet, want at least %v", rep.Drained, rep.QuietFor, MinQuietPeriod)
	}
}
