package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/migrate/deadletter"
	"github.com/rekey-dev/rekey/migrate/migratetest"
	"github.com/rekey-dev/rekey/migrate/pacing"
)

// newSource is an in-memory source keyed on /region with two partitions,
// on a clock that stands at 1,700,000,000 s: every item's _ts.
func newSource(t *testing.T) *migratetest.Container {
	t.Helper()
	return migratetest.MustNew(t, migrate.Definition{Paths: []string{"/region"}, Kind: "Hash", Version: 2},
		migratetest.WithPartitions(2), migratetest.WithClock(func() time.Time { return time.Unix(1_700_000_000, 0) }))
}

// newTarget is an in-memory target keyed on /pk, one partition.
func newTarget(t *testing.T) *migratetest.Container {
	t.Helper()
	return migratetest.MustNew(t, migrate.Definition{Paths: []string{"/pk"}, Kind: "Hash", Version: 2})
}

// upsert writes a source item as the application does.
func upsert(t *testing.T, src *migratetest.Container, id, region, tenant string, v int) {
	t.Helper()
	migratetest.MustUpsert(t, src, item(id, region, tenant, v))
}

// testRunner builds a Runner over an in-memory source and target with a file
// lease store in a temporary directory, on the real clock: run it inside
// synctest.Test, where that clock is virtual. It writes with a fixed limit
// of 32 writes in flight and no RU caps.
func testRunner(t *testing.T, src *migratetest.Container, dst *migratetest.Container, dir string) *Runner {
	t.Helper()
	tr := migratetest.Transformer(t, "/region", "/pk={tenant}-x")
	store, err := lease.OpenFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	meta := migrate.NewMeta("src", "dst", tr, time.Time{})
	for _, r := range src.Partitions() {
		meta.Ranges = append(meta.Ranges, r.LeaseRange())
	}
	if _, err := migrate.OpenMeta(context.Background(), store, meta, dir); err != nil {
		t.Fatal(err)
	}
	dead, err := deadletter.OpenFile(filepath.Join(dir, "deadletter.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dead.Close() })
	return &Runner{Source: src, Transformer: tr, Store: store, DeadLetters: dead, Writes: fixedWritePath(dst, 0)}
}

// fixedWritePath writes to dst 32 at a time, uncapped, trying transient
// failures tries times (the default when 0).
func fixedWritePath(dst migrate.Target, tries int) *WritePath {
	return NewWritePath(dst, WritePathConfig{Flow: pacing.Config{Controller: pacing.ControllerFixed}, TransientTries: tries})
}

func TestRunUntilCaughtUpCopiesEverything(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src, dst := newSource(t), newTarget(t)
		for i := 0; i < 250; i++ {
			region := []string{"eu", "in"}[i%2] // one in each partition
			upsert(t, src, fmt.Sprintf("item-%d", i), region, fmt.Sprintf("t%d", i%7), 1)
		}
		upsert(t, src, "bad", "eu", "", 1) // an empty tenant still makes a key: "-x"
		dir := t.TempDir()
		r := testRunner(t, src, dst, dir)
		sum, err := r.Run(context.Background(), RunConfig{PageSize: 40, UntilCaughtUp: true})
		if err != nil {
			t.Fatal(err)
		}
		if !sum.CaughtUp || sum.Interrupted || sum.Ranges != 2 {
			t.Fatalf("summary %+v", sum)
		}
		if len(dst.Items()) != 251 || sum.Stats.Written() != 251 || sum.Stats.Read != 251 {
			t.Fatalf("target has %d items, stats %+v", len(dst.Items()), sum.Stats)
		}
		leases, err := r.Store.List(context.Background())
		if err != nil || len(leases) != 2 {
			t.Fatalf("leases %v %v", leases, err)
		}
		var items int64
		for _, l := range leases {
			items += l.Items
			if l.Continuation == "" || l.CaughtUpAt.IsZero() || l.Owner != "" || l.RU <= 0 || l.LastChangeTS != 1700000000 {
				t.Errorf("lease %+v: want a continuation, caught-up time, RU, the newest _ts, and no owner (released at the end)", l)
			}
		}
		if items != 251 {
			t.Errorf("leases count %d items, want 251", items)
		}
	})
}

func TestRunResumesWithoutRewriting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src, dst := newSource(t), newTarget(t)
		for i := 0; i < 100; i++ {
			upsert(t, src, fmt.Sprintf("item-%d", i), "eu", "a", 1)
		}
		dir := t.TempDir()
		r := testRunner(t, src, dst, dir)
		if _, err := r.Run(context.Background(), RunConfig{PageSize: 30, UntilCaughtUp: true}); err != nil {
			t.Fatal(err)
		}
		r.Store.Close()
		r.DeadLetters.Close()
		creates := dst.Calls()["create"] + dst.Calls()["batch"]

		// Changes after the first run: one update, one new item.
		upsert(t, src, "item-7", "eu", "a", 2)
		upsert(t, src, "item-new", "eu", "a", 1)
		r2 := testRunner(t, src, dst, dir)
		sum, err := r2.Run(context.Background(), RunConfig{PageSize: 30, UntilCaughtUp: true})
		if err != nil {
			t.Fatal(err)
		}
		if sum.Stats.Read != 2 || sum.Stats.Updated != 1 || sum.Stats.Created != 1 {
			t.Fatalf("resume read %d changes (updated %d, created %d); want only the 2 new ones", sum.Stats.Read, sum.Stats.Updated, sum.Stats.Created)
		}
		// One batch of the two changes under key a-x, which falls back item by
		// item because item-7 exists: two creates, a read and a replace.
		if got := dst.Calls()["create"] + dst.Calls()["batch"] - creates; got != 3 || dst.Calls()["replace"] != 1 || len(dst.Items()) != 101 {
			t.Fatalf("resume made %d create calls (want 3), calls %v, target %d", got, dst.Calls(), len(dst.Items()))
		}
	})
}

func TestRunStopsOnCancelAndFailsOnPersistentErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src, dst := newSource(t), newTarget(t)
		for i := 0; i < 10; i++ {
			upsert(t, src, fmt.Sprintf("item-%d", i), "eu", "a", 1)
		}
		ctx, cancel := context.WithCancel(context.Background())
		r := testRunner(t, src, dst, t.TempDir())
		done := make(chan struct{})
		var sum Summary
		var err error
		go func() {
			sum, err = r.Run(ctx, RunConfig{PollInterval: time.Millisecond})
			close(done)
		}()
		for len(dst.Items()) < 10 {
			time.Sleep(time.Millisecond)
		}
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return after cancel")
		}
		if err != nil || !sum.Interrupted {
			t.Fatalf("after cancel: %+v %v", sum, err)
		}

		src.Intercept(func(op string, _ migrate.Key, _ string) error {
			if op == migratetest.OpFeed {
				return &migrate.RequestError{Status: http.StatusServiceUnavailable}
			}
			return nil
		})
		r2 := testRunner(t, src, dst, t.TempDir())
		r2.Writes = fixedWritePath(dst, 3)
		_, err = r2.Run(context.Background(), RunConfig{UntilCaughtUp: true})
		if !errors.Is(err, migrate.ErrTransient) {
			t.Fatalf("want the source's transient error, got %v", err)
		}
	})
}

// slowCreates is a target whose creates take an hour, unless their
// context ends first: a write far slower than any shutdown timeout.
type slowCreates struct{ *migratetest.Container }

func (s slowCreates) Create(ctx context.Context, key migrate.Key, body []byte) (migrate.WriteResult, error) {
	select {
	case <-time.After(time.Hour):
		return s.Container.Create(ctx, key, body)
	case <-ctx.Done():
		return migrate.WriteResult{}, ctx.Err()
	}
}

// A range whose change feed fails for good while the page it read before
// is still being written stops the run at once: the page in hand gets the
// shutdown timeout from the failure, and Run returns the read's error
// within that timeout and ExitGrace, not once the write is done. Before,
// the failure waited behind the page (found by the simulator, seed 29466:
// a replace that took 31 s held a run 26 s past its fatal error).
func TestRunStopsWithinTheShutdownTimeoutOfAReadFailureBehindASlowPage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := migratetest.MustNew(t, migrate.Definition{Paths: []string{"/region"}, Kind: "Hash", Version: 2})
		upsert(t, src, "item-1", "eu", "a", 1)
		reads := 0
		var failedAt time.Time
		src.Intercept(func(op string, _ migrate.Key, _ string) error {
			if op != migratetest.OpFeed {
				return nil
			}
			if reads++; reads == 1 {
				return nil // the page with item-1
			}
			failedAt = time.Now()
			return &migrate.RequestError{Op: "read change feed", Status: http.StatusServiceUnavailable}
		})
		dst := slowCreates{newTarget(t)}
		r := testRunner(t, src, dst.Container, t.TempDir())
		r.Writes = fixedWritePath(dst, 3)
		const shutdown = 2 * time.Second
		_, err := r.Run(context.Background(), RunConfig{ShutdownTimeout: shutdown, PollInterval: time.Millisecond})
		if !errors.Is(err, migrate.ErrTransient) {
			t.Fatalf("want the feed's transient error, got %v", err)
		}
		if took := time.Since(failedAt); took > shutdown+ExitGrace {
			t.Fatalf("Run returned %v after the read gave up, want within the shutdown timeout %v and ExitGrace %v", took, shutdown, ExitGrace)
		}
		if len(dst.Items()) != 0 {
			t.Fatal("the slow create was not abandoned")
		}
	})
}

// throttledCount is a dead-letter store whose Count is throttled the first
// throttles times, as a lease container's query may be.
type throttledCount struct {
	migrate.DeadLetterStore
	mu        sync.Mutex
	throttles int
}

func (d *throttledCount) Count() (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.throttles > 0 {
		d.throttles--
		return 0, &migrate.RequestError{Op: "count dead letters", Status: http.StatusTooManyRequests, RetryAfter: 100 * time.Millisecond}
	}
	return d.DeadLetterStore.Count()
}

// A run stopped by its context (SIGTERM) counts its dead letters for the
// summary under the retry policy, after the stop: a throttled count is
// retried, and the run still ends interrupted without an error (exit 130).
// Before, the count ran once, and a 429 made the run fail (exit 1).
func TestRunStoppedRetriesAThrottledDeadLetterCount(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src, dst := newSource(t), newTarget(t)
		upsert(t, src, "item-1", "eu", "a", 1)
		r := testRunner(t, src, dst, t.TempDir())
		r.DeadLetters = &throttledCount{DeadLetterStore: r.DeadLetters, throttles: 2}
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			for len(dst.Items()) < 1 {
				time.Sleep(time.Millisecond)
			}
			cancel()
		}()
		sum, err := r.Run(ctx, RunConfig{PollInterval: time.Millisecond})
		if err != nil || !sum.Interrupted || sum.DeadLetters != 0 {
			t.Fatalf("stopped run: %+v %v; want interrupted, no error", sum, err)
		}

		// Throttled for longer than the wrap-up may take: the count is
		// given up, and the stop is still no failure.
		r.DeadLetters = &throttledCount{DeadLetterStore: r.DeadLetters, throttles: 1000}
		stopped, stop := context.WithCancel(context.Background())
		time.AfterFunc(100*time.Millisecond, stop)
		begun := time.Now()
		sum, err = r.Run(stopped, RunConfig{PollInterval: time.Millisecond})
		if err != nil || !sum.Interrupted || sum.DeadLetters != -1 || time.Since(begun) > 100*time.Millisecond+ExitGrace {
			t.Fatalf("stopped run, count throttled for good: %+v %v after %v; want interrupted, no error, dead letters unknown, within %v",
				sum, err, time.Since(begun), ExitGrace)
		}
	})
}

// refusedUpdates is a lease store whose every update fails.
type refusedUpdates struct{ lease.Store }

func (refusedUpdates) Update(context.Context, lease.Lease) (lease.Lease, error) {
	return lease.Lease{}, errors.New("disk full")
}

// A lease that cannot be taken is named by its id and its feed range.
func TestTakeLeaseNamesTheLease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src, dst := newSource(t), newTarget(t)
		upsert(t, src, "item-1", "eu", "a", 1)
		r := testRunner(t, src, dst, t.TempDir())
		if _, err := r.Run(context.Background(), RunConfig{UntilCaughtUp: true}); err != nil {
			t.Fatal(err)
		}
		r.Store = refusedUpdates{r.Store}
		_, err := r.Run(context.Background(), RunConfig{UntilCaughtUp: true})
		if want := `take lease "-20000000000000000000000000000000" (feed range [, 20000000000000000000000000000000)): disk full`; err == nil || err.Error() != want {
			t.Fatalf("err %v, want %q", err, want)
		}
	})
}

// A run stopped by its context tells OnShutdown how many pages are in
// flight, and the call has returned by the time Run does: what it says
// (the command's "stopping" line) never comes after the run's summary.
func TestOnShutdownReturnsBeforeRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src, dst := newSource(t), newTarget(t)
		upsert(t, src, "item-1", "eu", "a", 1)
		r := testRunner(t, src, dst, t.TempDir())
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			for len(dst.Items()) < 1 {
				time.Sleep(time.Millisecond)
			}
			cancel()
		}()
		var mu sync.Mutex
		calls := 0
		announce := func(int) {
			time.Sleep(time.Second) // slower than the stop itself
			mu.Lock()
			calls++
			mu.Unlock()
		}
		sum, err := r.Run(ctx, RunConfig{PollInterval: time.Millisecond, OnShutdown: announce})
		mu.Lock()
		defer mu.Unlock()
		if err != nil || !sum.Interrupted || calls != 1 {
			t.Fatalf("stopped run: %+v %v, OnShutdown returned %d times before Run; want interrupted, once", sum, err, calls)
		}
	})
}
