package pipeline

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/migrate/migratetest"
)

// slowWrite is how long slowCreates takes to create its item.
const slowWrite = 10 * time.Minute

// slowCreates is a target whose create of item id takes slowWrite, unless
// its context ends first, as an HTTP request's does. (A sleep inside
// Intercept would hold the container's hook lock, which a synctest bubble
// cannot see through.)
type slowCreates struct {
	*migratetest.Container
	id string
}

func (s slowCreates) Create(ctx context.Context, key migrate.Key, body []byte) (migrate.WriteResult, error) {
	if idOf(body) == s.id {
		if err := sleep(ctx, slowWrite); err != nil {
			return migrate.WriteResult{}, err
		}
	}
	return s.Container.Create(ctx, key, body)
}

func (s slowCreates) CreateBatch(ctx context.Context, key migrate.Key, bodies [][]byte) (migrate.BatchResult, error) {
	for _, b := range bodies {
		if idOf(b) == s.id {
			if err := sleep(ctx, slowWrite); err != nil {
				return migrate.BatchResult{}, err
			}
		}
	}
	return s.Container.CreateBatch(ctx, key, bodies)
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// A range whose change feed fails for good stops the run at once, so that
// the page in hand gets the shutdown timeout, however long its write takes:
// the run returns within the shutdown timeout and its grace of the failure.
// Before, the run stopped only once the page's write returned (found by
// the simulator, seed 29466: a replace slowed by 37 s kept a run whose
// source answered 503 for good running 15 s past its bound).
func TestAReadFailureStopsTheRunWhileAPageIsSlowToWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := migratetest.MustNew(t, migrate.Definition{Paths: []string{"/region"}, Kind: "Hash", Version: 2},
			migratetest.WithPartitions(1), migratetest.WithClock(func() time.Time { return time.Unix(1_700_000_000, 0) }))
		dst := newTarget(t)
		upsert(t, src, "item-1", "eu", "a", 1)
		var mu sync.Mutex
		var feeds int
		var failedAt time.Time
		src.Intercept(func(op string, _ migrate.Key, _ string) error {
			if op != migratetest.OpFeed {
				return nil
			}
			mu.Lock()
			defer mu.Unlock()
			if feeds++; feeds == 1 {
				return nil // the page with the item
			}
			failedAt = time.Now()
			return &migrate.RequestError{Op: "feed", Status: http.StatusServiceUnavailable}
		})
		r := testRunner(t, src, dst, t.TempDir())
		r.Writes = fixedWritePath(slowCreates{dst, "item-1"}, 3)
		const shutdown = time.Second
		_, err := r.Run(context.Background(), RunConfig{UntilCaughtUp: true, ShutdownTimeout: shutdown, PollInterval: time.Millisecond})
		if !errors.Is(err, migrate.ErrTransient) {
			t.Fatalf("want the source's 503, got %v", err)
		}
		mu.Lock()
		took := time.Since(failedAt)
		mu.Unlock()
		if took > shutdown+ExitGrace {
			t.Fatalf("the run returned %v after its source failed for good; want at most its shutdown timeout and grace, %v", took, shutdown+ExitGrace)
		}
	})
}

// slowReleases is a lease store whose releases (an update that clears the
// owner) hang until their context ends, as against a lease container that
// throttles them.
type slowReleases struct{ lease.Store }

func (s slowReleases) Update(ctx context.Context, l lease.Lease) (lease.Lease, error) {
	if l.Owner == "" {
		<-ctx.Done()
		return lease.Lease{}, ctx.Err()
	}
	return s.Store.Update(ctx, l)
}

// A range that fails stops the others before it releases its lease: the
// release may take its whole timeout, and the others' shutdown timeout
// runs meanwhile, so the run returns within its shutdown timeout and grace
// of the failure. Before, the failing range released first, and the
// run's bound was overrun by that release (the simulator, seed 80193).
func TestAFailingRangeStopsTheOthersBeforeItReleasesItsLease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src, dst := newSource(t), newTarget(t)
		ranges := src.Partitions()
		if len(ranges) != 2 {
			t.Fatalf("want a source of two partitions, got %d", len(ranges))
		}
		// One item in each partition: region values land in either.
		byRange := map[int]string{}
		for i := 0; len(byRange) < 2 && i < 100; i++ {
			region := "r" + string(rune('a'+i%26)) + string(rune('a'+i/26))
			e, err := src.EPK(keyOf(region))
			if err != nil {
				t.Fatal(err)
			}
			for j, fr := range ranges {
				if _, ok := byRange[j]; !ok && fr.EPKRange().Contains(e) {
					byRange[j] = region
					upsert(t, src, "item-"+region, region, "t"+region, 1)
				}
			}
		}
		failing, slow := "item-"+byRange[0], "item-"+byRange[1]
		var mu sync.Mutex
		var failedAt time.Time
		dst.Intercept(func(op string, _ migrate.Key, id string) error {
			if id == failing {
				mu.Lock()
				failedAt = time.Now()
				mu.Unlock()
				return &migrate.RequestError{Op: op, Status: http.StatusServiceUnavailable}
			}
			return nil
		})
		r := testRunner(t, src, dst, t.TempDir())
		r.Writes = fixedWritePath(slowCreates{dst, slow}, 1)
		r.Store = slowReleases{r.Store}
		r.DeadLetters = &throttledCount{DeadLetterStore: r.DeadLetters, throttles: 1000} // the wrap-up takes its whole bound too
		const shutdown = time.Second
		_, err := r.Run(context.Background(), RunConfig{UntilCaughtUp: true, ShutdownTimeout: shutdown, PollInterval: time.Millisecond})
		if !errors.Is(err, migrate.ErrTransient) {
			t.Fatalf("want the target's 503, got %v", err)
		}
		mu.Lock()
		took := time.Since(failedAt)
		mu.Unlock()
		if took > shutdown+ExitGrace {
			t.Fatalf("the run returned %v after a range failed; want at most its shutdown timeout and grace, %v", took, shutdown+ExitGrace)
		}
	})
}

// takesFailAfter is a lease store whose takes by w1 succeed n times and
// then fail with a 503, and whose releases hang until their context ends
// (a lease container that throttles every release past its bound).
type takesFailAfter struct {
	lease.Store
	mu    sync.Mutex
	takes int
	n     int
}

func (s *takesFailAfter) Update(ctx context.Context, l lease.Lease) (lease.Lease, error) {
	if l.Owner == "" {
		<-ctx.Done()
		return lease.Lease{}, ctx.Err()
	}
	s.mu.Lock()
	s.takes++
	fail := l.Owner == "w1" && s.takes > s.n
	s.mu.Unlock()
	if fail {
		return lease.Lease{}, &migrate.RequestError{Op: "take lease", Status: http.StatusServiceUnavailable}
	}
	return s.Store.Update(ctx, l)
}

// A run returns within its shutdown timeout (or a fatal error's retries)
// plus ExitGrace. A shared run whose first balancing pass fails after it
// took some leases gives them back all at once, then wraps up. Before, it
// gave them back one after another: with three leases taken and a lease
// store that does not answer releases, it returned after 3×2s+3s = 9s,
// past ExitGrace (5s). The same path runs when SIGTERM cuts that first
// pass off.
func TestAFailedFirstBalancingPassReturnsWithinExitGrace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := migratetest.MustNew(t, migrate.Definition{Paths: []string{"/region"}, Kind: "Hash", Version: 2},
			migratetest.WithPartitions(4), migratetest.WithClock(func() time.Time { return time.Unix(1_700_000_000, 0) }))
		dst := newTarget(t)
		r := testRunner(t, src, dst, t.TempDir())
		r.Store = &takesFailAfter{Store: r.Store, n: 3}
		begun := time.Now()
		_, err := r.Run(context.Background(), RunConfig{Shared: true, Owner: "w1", LeaseTTL: time.Minute, ShutdownTimeout: time.Second})
		took := time.Since(begun)
		if err == nil {
			t.Fatal("run: no error, want the failed take")
		}
		if took > ExitGrace {
			t.Fatalf("run failed (%v) after %v, past ExitGrace (%v) from the failure at its start", err, took, ExitGrace)
		}
	})
}
