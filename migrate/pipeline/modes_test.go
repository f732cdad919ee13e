package pipeline_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/migrate/internal/rig"
	"github.com/rekey-dev/rekey/migrate/migratetest"
	"github.com/rekey-dev/rekey/migrate/pacing"
	"github.com/rekey-dev/rekey/migrate/pipeline"
	"github.com/rekey-dev/rekey/migrate/verify"
)

// syncRun runs the rig's migration in mode until every range caught up.
func syncRun(t *testing.T, r *rig.Rig, cfg pipeline.RunConfig) pipeline.Summary {
	t.Helper()
	cfg.UntilCaughtUp, cfg.PollInterval = true, time.Millisecond
	sum, err := r.Runner().Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return sum
}

// verifyClean asserts verify finds the copy clean: every source item once,
// under its key, with its content; nothing else.
func verifyClean(t *testing.T, r *rig.Rig) {
	t.Helper()
	rep := verifyReport(t, r)
	if !rep.Clean || rep.SourceItems != rep.TargetItems {
		t.Fatalf("verify: source %d, target %d, missing %d, extra %d, changed %d, orphaned %d, dead %d: want clean",
			rep.SourceItems, rep.TargetItems, rep.Missing.Count, rep.Extra.Count, rep.Changed.Count, rep.Orphaned.Count, rep.DeadLettered.Count)
	}
}

func verifyReport(t *testing.T, r *rig.Rig) *verify.Report {
	t.Helper()
	rep, err := r.Verifier().Verify(context.Background(), verify.Config{RecheckDelay: -1, TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func leases(t *testing.T, r *rig.Rig) []lease.Lease {
	t.Helper()
	ls, err := r.Store.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ls
}

// versioned is a rig whose source keeps an all-versions log for ten
// minutes (with previous images or not) on a clock the test moves, its
// items expiring by their own "ttl".
func versioned(t *testing.T, previous bool) (*rig.Rig, *migratetest.Clock) {
	clock := &migratetest.Clock{}
	r := rig.New(t, migratetest.WithAllVersions(10*time.Minute, previous), migratetest.WithClock(clock.Now), migratetest.WithDefaultTTL(24*time.Hour))
	return r, clock
}

// upsert writes a source item as the application does.
func upsert(t *testing.T, r *rig.Rig, body string) { migratetest.MustUpsert(t, r.Src, body) }

// expiring is a source item that lives one second.
func expiring(id, region, tenant string, v int) string {
	return strings.TrimSuffix(rig.Doc(id, region, tenant, v), "}") + `,"ttl":1}`
}

// mutate makes one of each kind of change to the rig's source: creates,
// updates in place, key-field changes (the tenant feeds the new key),
// deletes and expiries by time to live (the clock moves two seconds on),
// on items 0..n-1 seeded by seed.
func mutate(t *testing.T, r *rig.Rig, clock *migratetest.Clock, round, n int) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		id := fmt.Sprintf("i%03d", i)
		switch i % 5 {
		case 0:
			upsert(t, r, rig.Doc(id, "eu", "t1", 10+round)) // update
		case 1:
			upsert(t, r, rig.Doc(id, "eu", fmt.Sprintf("t%d", 2+round), 10+round)) // key change
		case 2:
			if _, err := r.Src.Delete(ctx, rig.Key("eu"), id, ""); err != nil && !errors.Is(err, migrate.ErrNotFound) {
				t.Fatal(err)
			}
		case 3:
			upsert(t, r, expiring(id, "eu", "t1", 10+round))
		}
		upsert(t, r, rig.Doc(fmt.Sprintf("n%d-%03d", round, i), "us", "t9", round)) // create
	}
	clock.Advance(2 * time.Second) // the expiring items expire
}

func seed(t *testing.T, r *rig.Rig, n int) {
	t.Helper()
	for i := range n {
		upsert(t, r, rig.Doc(fmt.Sprintf("i%03d", i), "eu", "t1", 1))
	}
}

// In all-versions mode a sync carries creates, updates, deletes, expiries
// and key-field changes: after it, before any cutover, verify finds the
// copy clean (no extra, no orphaned, no changed item), with the changes
// made during the copy (replayed from the bookmark) and after it, with
// and without previous images.
func TestAllVersionsSyncLeavesNothingToReconcile(t *testing.T) {
	for _, previous := range []bool{true, false} {
		t.Run(fmt.Sprintf("previous images %v", previous), func(t *testing.T) {
			r, clock := versioned(t, previous)
			seed(t, r, 40)
			// Mutate during the copy, after its first page: the changes
			// the copy misses come from the all-versions feed.
			var once sync.Once
			r.Src.AfterFeed(func(req migrate.ChangeRequest, p migrate.ChangePage) {
				if len(p.Items) > 0 {
					once.Do(func() { mutate(t, r, clock, 0, 40) })
				}
			})
			sum := syncRun(t, r, pipeline.RunConfig{PageSize: 5})
			r.Src.AfterFeed(nil)
			for _, l := range leases(t, r) {
				if l.Mode != lease.ModeAllVersions || l.Bookmark == "" || l.Fallback != "" || l.CaughtUpAt.IsZero() {
					t.Fatalf("lease after the sync: %+v: want all-versions, the copy's continuation kept, no fallback, caught up", l)
				}
			}
			if sum.Stats.Deleted == 0 {
				t.Errorf("the sync deleted nothing: %+v", sum.Stats)
			}
			verifyClean(t, r)

			mutate(t, r, clock, 1, 40)
			sum = syncRun(t, r, pipeline.RunConfig{})
			verifyClean(t, r)
			if previous && sum.Stats.Lookups != 0 {
				t.Errorf("with previous images the sync searched for %d copies", sum.Stats.Lookups)
			}
			if !previous && sum.Stats.Lookups == 0 {
				t.Errorf("without previous images the sync searched for no copy")
			}
		})
	}
}

// --ttl-expiries skip leaves an expired item's copy to the target's own
// time to live; apply deletes it.
func TestTTLExpiries(t *testing.T) {
	for _, mode := range []string{pipeline.TTLSkip, pipeline.TTLApply} {
		t.Run(mode, func(t *testing.T) {
			r, clock := versioned(t, true)
			upsert(t, r, expiring("a", "eu", "t1", 1))
			upsert(t, r, rig.Doc("b", "eu", "t1", 1))
			syncRun(t, r, pipeline.RunConfig{TTLExpiries: mode})
			clock.Advance(2 * time.Second)
			if _, err := r.Src.Delete(context.Background(), rig.Key("eu"), "b", ""); err != nil {
				t.Fatal(err)
			}
			sum := syncRun(t, r, pipeline.RunConfig{TTLExpiries: mode})
			_, kept := r.TargetCopy(t, expiring("a", "eu", "t1", 1))
			if _, b := r.TargetCopy(t, rig.Doc("b", "eu", "t1", 1)); b {
				t.Fatal("an explicit delete was not applied")
			}
			if kept != (mode == pipeline.TTLSkip) || (sum.Stats.TTLSkipped == 1) != (mode == pipeline.TTLSkip) {
				t.Fatalf("mode %s: the expired item's copy kept %v, skipped %d", mode, kept, sum.Stats.TTLSkipped)
			}
		})
	}
}

// A bookmark that fell out of the retention window: the range says so,
// falls back to the latest-version feed from where its copy ended, records
// the fallback in its lease, and switches back to a new bookmark once
// caught up. The update made meanwhile is copied; the delete is left to
// reconciliation, which verify --fix does.
func TestOutOfRetentionFallsBackToLatest(t *testing.T) {
	r, clock := versioned(t, true)
	seed(t, r, 6)
	syncRun(t, r, pipeline.RunConfig{})
	upsert(t, r, rig.Doc("i000", "eu", "t7", 2)) // a key change
	if _, err := r.Src.Delete(context.Background(), rig.Key("eu"), "i001", ""); err != nil {
		t.Fatal(err)
	}
	clock.Advance(11 * time.Minute) // past the retention: the changes are gone from the log
	syncRun(t, r, pipeline.RunConfig{})
	fell := 0
	for _, l := range leases(t, r) {
		if l.Fallback != "" {
			fell++
			if l.FallbackAt.IsZero() || !strings.Contains(l.Fallback, "retention") || l.Mode != lease.ModeAllVersions || l.Bookmark == "" {
				t.Errorf("lease after the fallback: %+v: want the fallback recorded, and all-versions again", l)
			}
		}
	}
	if fell == 0 {
		t.Fatal("no lease records the fallback")
	}
	if _, ok := r.TargetCopy(t, rig.Doc("i000", "eu", "t7", 2)); !ok {
		t.Error("the update made before the fallback was not copied")
	}
	rep := verifyReport(t, r)
	if rep.Extra.Count+rep.Orphaned.Count == 0 {
		t.Errorf("verify found nothing to reconcile after a fallback: %+v", rep)
	}
	fixed, err := r.Verifier().Verify(context.Background(), verify.Config{RecheckDelay: -1, TempDir: t.TempDir(), Fix: true})
	if err != nil || fixed.Fix.Remaining != 0 {
		t.Fatalf("verify --fix: %v %+v", err, fixed)
	}
	verifyClean(t, r)
}

// A run in mode all-versions refuses a source that keeps no versions; in
// auto mode it follows the latest-version feed; a lease that follows the
// all-versions feed goes back to the latest-version feed in mode latest.
func TestModes(t *testing.T) {
	r := rig.New(t)
	seed(t, r, 4)
	_, err := r.Runner().Run(context.Background(), pipeline.RunConfig{Mode: pipeline.ModeAllVersions, UntilCaughtUp: true, PollInterval: time.Millisecond})
	if !errors.Is(err, migrate.ErrAllVersionsNotEnabled) {
		t.Fatalf("mode all-versions on a source without versions: %v", err)
	}
	syncRun(t, r, pipeline.RunConfig{})
	for _, l := range leases(t, r) {
		if l.ReadsAllVersions() || l.Bookmark != "" {
			t.Fatalf("auto on a source without versions: lease %+v", l)
		}
	}

	r, _ = versioned(t, true)
	seed(t, r, 4)
	syncRun(t, r, pipeline.RunConfig{Mode: pipeline.ModeAllVersions})
	upsert(t, r, rig.Doc("i000", "eu", "t1", 5))
	syncRun(t, r, pipeline.RunConfig{Mode: pipeline.ModeLatest})
	for _, l := range leases(t, r) {
		if l.ReadsAllVersions() || l.Fallback == "" {
			t.Fatalf("mode latest after all-versions: lease %+v: want latest, the fallback recorded", l)
		}
	}
	verifyClean(t, r)
}

// A deletion never removes another source item's copy: the target item
// under the deleted item's (id, new key) that another source item owns (a
// collision) stays, and so does a copy rewritten between the examination
// and the delete (412, examined again).
func TestDeletesRemoveOnlyTheSameItemsCopy(t *testing.T) {
	r, _ := versioned(t, true)
	upsert(t, r, rig.Doc("x", "eu", "t1", 1))
	upsert(t, r, rig.Doc("x", "us", "t1", 1)) // same id and new key: a collision
	syncRun(t, r, pipeline.RunConfig{})
	owner, ok := r.TargetCopy(t, rig.Doc("x", "eu", "t1", 1))
	if !ok {
		t.Fatal("no copy")
	}
	winner := "eu"
	if !strings.Contains(string(owner.Body), `"eu"`) {
		winner = "us"
	}
	loser := map[string]string{"eu": "us", "us": "eu"}[winner]
	if _, err := r.Src.Delete(context.Background(), rig.Key(loser), "x", ""); err != nil {
		t.Fatal(err)
	}
	syncRun(t, r, pipeline.RunConfig{})
	if it, ok := r.TargetCopy(t, rig.Doc("x", winner, "t1", 1)); !ok || !strings.Contains(string(it.Body), `"`+winner+`"`) {
		t.Fatalf("deleting the %s item removed the %s item's copy", loser, winner)
	}

	// The winner's delete meets a copy rewritten in between: another
	// source item's copy now, which it must leave alone.
	key, _ := r.CopyOf(t, rig.Doc("x", winner, "t1", 1))
	stolen := false
	_, stolenCopy := r.CopyOf(t, rig.Doc("x", loser, "t1", 9))
	r.Dst.Intercept(func(op string, k migrate.Key, id string) error {
		if op == migratetest.OpDelete && !stolen {
			stolen = true
			migratetest.MustUpsert(t, r.Dst, stolenCopy)
		}
		return nil
	})
	if _, err := r.Src.Delete(context.Background(), rig.Key(winner), "x", ""); err != nil {
		t.Fatal(err)
	}
	syncRun(t, r, pipeline.RunConfig{})
	it, ok := r.Dst.Get(key, "x")
	if !stolen || !ok || !strings.Contains(string(it.Body), `"v":9`) {
		t.Fatalf("the delete removed a copy written after it was examined (stolen %v, left %v %s)", stolen, ok, it.Body)
	}
}

// A page that fails between a key change's new copy and the removal of
// its old one (the run stops, the page is not checkpointed) is applied
// again on resume: the new copy is found written and the old one removed;
// a delete made meanwhile is applied after it; nothing is left to
// reconcile.
func TestAllVersionsPageReplayedAfterAFailureConverges(t *testing.T) {
	r, _ := versioned(t, false)
	seed(t, r, 4)
	syncRun(t, r, pipeline.RunConfig{})
	upsert(t, r, rig.Doc("i000", "eu", "t5", 2)) // a key change
	failed := false
	r.Dst.Intercept(func(op string, key migrate.Key, id string) error {
		if op == migratetest.OpDelete && !failed {
			failed = true
			return &migrate.RequestError{Op: "delete", Status: http.StatusUnauthorized}
		}
		return nil
	})
	_, err := r.Runner().Run(context.Background(), pipeline.RunConfig{UntilCaughtUp: true, PollInterval: time.Millisecond})
	if !failed || !errors.Is(err, migrate.ErrUnauthorized) {
		t.Fatalf("first run: %v (failed %v), want it stopped by the refused delete", err, failed)
	}
	if _, ok := r.TargetCopy(t, rig.Doc("i000", "eu", "t5", 2)); !ok {
		t.Fatal("the new copy was not written before the old one's removal")
	}
	if _, err := r.Src.Delete(context.Background(), rig.Key("eu"), "i001", ""); err != nil {
		t.Fatal(err)
	}
	syncRun(t, r, pipeline.RunConfig{})
	verifyClean(t, r)
}

// pageCounter is a PageApplier that counts the items it is handed.
type pageCounter struct {
	mu    sync.Mutex
	items int
}

func (a *pageCounter) ApplyPage(ctx context.Context, items [][]byte, fence func(context.Context) error) (float64, error) {
	if err := fence(ctx); err != nil {
		return 0, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.items += len(items)
	return 0, nil
}

// A run that writes through an Applier (a rollback) follows the
// latest-version feed even from a source that keeps versions: auto mode
// takes no bookmark, and all-versions mode is refused before anything is
// read.
func TestApplierFollowsTheLatestFeed(t *testing.T) {
	r, _ := versioned(t, true)
	seed(t, r, 4)
	a := &pageCounter{}
	runner := r.Runner()
	runner.Applier = a
	_, err := runner.Run(context.Background(), pipeline.RunConfig{Mode: pipeline.ModeAllVersions, UntilCaughtUp: true, PollInterval: time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "latest-version") {
		t.Fatalf("mode all-versions with an Applier: %v, want refused", err)
	}
	sum, err := runner.Run(context.Background(), pipeline.RunConfig{UntilCaughtUp: true, PollInterval: time.Millisecond})
	if err != nil || sum.AllVersions || !sum.CaughtUp {
		t.Fatalf("auto with an Applier: %+v, %v: want caught up on the latest-version feed", sum, err)
	}
	for _, l := range leases(t, r) {
		if l.ReadsAllVersions() || l.Bookmark != "" {
			t.Fatalf("auto with an Applier: lease %+v, want latest without a bookmark", l)
		}
	}
	if a.items != 4 {
		t.Fatalf("the Applier was handed %d items, want 4", a.items)
	}
}

// monotonicTarget is a target that fails the test when a write would put
// an older version ("v") of an item over a newer one.
type monotonicTarget struct {
	*migratetest.Container
	t *testing.T
}

func (m monotonicTarget) Replace(ctx context.Context, key migrate.Key, id string, body []byte, ifMatch string) (migrate.WriteResult, error) {
	if old, ok := m.Get(key, id); ok {
		var was, now struct{ V int }
		if json.Unmarshal(old.Body, &was) == nil && json.Unmarshal(body, &now) == nil && now.V < was.V {
			m.t.Errorf("item %q under %s: v%d written over v%d", id, key, now.V, was.V)
		}
	}
	return m.Container.Replace(ctx, key, id, body, ifMatch)
}

// A range that switches to the all-versions feed replays the changes made
// since its bookmark, which its copy already wrote at their latest
// version; a replay writes the source's current version, never an older
// one over a newer copy, and converges.
func TestReplayNeverWritesAnOlderVersion(t *testing.T) {
	r, _ := versioned(t, false)
	seed(t, r, 10)
	var once sync.Once
	r.Src.AfterFeed(func(req migrate.ChangeRequest, p migrate.ChangePage) {
		if len(p.Items) > 0 {
			once.Do(func() {
				for v := 2; v <= 4; v++ {
					for i := range 10 {
						upsert(t, r, rig.Doc(fmt.Sprintf("i%03d", i), "eu", "t1", v))
					}
				}
			})
		}
	})
	runner := r.Runner()
	runner.Writes = pipeline.NewWritePath(monotonicTarget{Container: r.Dst, t: t}, pipeline.WritePathConfig{Flow: pacing.Config{Controller: pacing.ControllerFixed}})
	sum, err := runner.Run(context.Background(), pipeline.RunConfig{Mode: pipeline.ModeAllVersions, PageSize: 3, UntilCaughtUp: true, PollInterval: time.Millisecond})
	if err != nil || !sum.AllVersions {
		t.Fatalf("run: %+v, %v", sum, err)
	}
	r.Src.AfterFeed(nil)
	verifyClean(t, r)
}

// An item whose version could not be copied (dead-lettered: its key field
// is missing) keeps its earlier copy; when a later version can be copied
// under another key, that earlier copy is found and removed, even with
// previous images (the previous version names no key).
func TestACopyLeftByADeadLetteredVersionIsRemoved(t *testing.T) {
	for _, previous := range []bool{true, false} {
		t.Run(fmt.Sprintf("previous images %v", previous), func(t *testing.T) {
			r, _ := versioned(t, previous)
			upsert(t, r, rig.Doc("x", "eu", "t1", 1))
			syncRun(t, r, pipeline.RunConfig{Mode: pipeline.ModeAllVersions})
			upsert(t, r, `{"id":"x","region":"eu","v":2}`) // no tenant: dead-lettered
			syncRun(t, r, pipeline.RunConfig{Mode: pipeline.ModeAllVersions})
			if n := r.DeadCount(t); n != 1 {
				t.Fatalf("%d dead letters, want the version without a tenant", n)
			}
			upsert(t, r, rig.Doc("x", "eu", "t2", 3)) // copied under t2
			syncRun(t, r, pipeline.RunConfig{Mode: pipeline.ModeAllVersions})
			verifyClean(t, r)
		})
	}
}

// With --ttl-expiries skip an expiry is left to the target's own time to
// live: that holds only when the target's copy is the version that
// expired. When the update that gave the item its short "ttl" and the
// expiry land in one page, the expiry is applied. Before, the whole item
// was skipped: the copy kept the earlier version, here one that never
// expires ("ttl":-1), so the target kept forever an item the source no
// longer had.
func TestTTLSkipNeverLeavesACopyThatOutlivesItsSourceForever(t *testing.T) {
	r, clock := versioned(t, true)
	v1 := strings.TrimSuffix(rig.Doc("x", "eu", "t1", 1), "}") + `,"ttl":-1}`
	upsert(t, r, v1)
	syncRun(t, r, pipeline.RunConfig{Mode: pipeline.ModeAllVersions, TTLExpiries: pipeline.TTLSkip})
	upsert(t, r, expiring("x", "eu", "t1", 2)) // the application gives x one second to live
	clock.Advance(2 * time.Second)             // x expires in the source
	sum := syncRun(t, r, pipeline.RunConfig{Mode: pipeline.ModeAllVersions, TTLExpiries: pipeline.TTLSkip})
	if it, ok := r.TargetCopy(t, v1); ok && !strings.Contains(string(it.Body), `"ttl":1`) {
		t.Fatalf("x expired in the source (skipped %d), but the target keeps a copy that never expires: %s", sum.Stats.TTLSkipped, it.Body)
	}
}
