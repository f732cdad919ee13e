package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/migrate"
)

// A shared --until-caught-up run counts a lease as caught up only when it
// reached the end of its feed after the run started. Here the lease of the
// lower range belongs to a worker that is gone: it marked the range caught
// up long ago, and items were written to it since. The run takes the
// lease over once it expires and follows it to the end before it exits.
// Before, it judged the range by the stale mark, in the very pass that took
// it over, and exited without copying them.
func TestSharedRunFollowsALeaseWithAStaleCaughtUpMark(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		src, dst := newSource(t), newTarget(t)
		upsert(t, src, "first", "in", "a", 1)
		dir := t.TempDir()
		r := testRunner(t, src, dst, dir)
		if _, err := r.Run(ctx, RunConfig{UntilCaughtUp: true}); err != nil {
			t.Fatal(err)
		}
		for i := range 5 { // "in" is in the lower range
			upsert(t, src, fmt.Sprintf("later-%d", i), "in", "a", 1)
		}
		ls, err := r.Store.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range ls {
			if l.Range.Min == "" { // a worker that is gone holds it, caught up before the items
				l.Owner = "gone"
				if _, err := r.Store.Update(ctx, l); err != nil {
					t.Fatal(err)
				}
			}
		}
		time.Sleep(time.Second)
		sum, err := r.Run(ctx, RunConfig{UntilCaughtUp: true, Shared: true, LeaseTTL: 4 * time.Second, Owner: "w2"})
		if err != nil || !sum.CaughtUp {
			t.Fatalf("shared run: %+v %v", sum, err)
		}
		if n := len(dst.Items()); n != 6 {
			t.Fatalf("target holds %d items, want 6: the gone worker's range was not followed to its end", n)
		}
		if ls, _ := r.Store.List(ctx); len(ls) != 2 || ls[0].Owner != "" || ls[1].Owner != "" {
			t.Fatalf("leases %+v: want both released", ls)
		}
	})
}

// failingUpdates fails the lease updates whose numbers (counting from 1)
// are in fail with a transient error, as a lease container may.
type failingUpdates struct {
	lease.Store
	mu   sync.Mutex
	n    int
	fail map[int]bool
}

func (s *failingUpdates) Update(ctx context.Context, l lease.Lease) (lease.Lease, error) {
	s.mu.Lock()
	s.n++
	fail := s.fail[s.n]
	s.mu.Unlock()
	if fail {
		return lease.Lease{}, &migrate.RequestError{Op: "update lease", Status: http.StatusServiceUnavailable}
	}
	return s.Store.Update(ctx, l)
}

// copyOnce copies the source with a plain run, which leaves one lease per
// partition, released.
func copyOnce(t *testing.T, r *Runner) {
	t.Helper()
	if _, err := r.Run(context.Background(), RunConfig{UntilCaughtUp: true}); err != nil {
		t.Fatal(err)
	}
}

// A shared run whose first balancing pass fails after it took a lease
// gives that lease back before it returns the error: no lease stays owned,
// unworked, for a TTL. Before, it was left owned by the worker.
func TestSharedRunReleasesTheLeasesItTookBeforeAFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		src, dst := newSource(t), newTarget(t)
		upsert(t, src, "a", "in", "a", 1)
		r := testRunner(t, src, dst, t.TempDir())
		copyOnce(t, r)
		store := r.Store
		r.Store = &failingUpdates{Store: store, fail: map[int]bool{2: true}} // the pass's second take
		_, err := r.Run(ctx, RunConfig{UntilCaughtUp: true, Shared: true, LeaseTTL: 4 * time.Second, Owner: "w2"})
		if !errors.Is(err, migrate.ErrTransient) {
			t.Fatalf("run: %v, want the lease container's transient failure", err)
		}
		ls, err := store.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range ls {
			if l.Owner != "" {
				t.Fatalf("lease %s is still owned by %q after the run failed", l.ID, l.Owner)
			}
		}
	})
}

// A balancing pass that fails after it took a lease starts working on it
// at once. Before, the lease stayed owned and unworked until it expired a
// TTL later, when a pass took it again.
func TestSharedRunWorksOnTheLeasesABalancingPassTookBeforeAFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		src, dst := newSource(t), newTarget(t)
		upsert(t, src, "first-in", "in", "a", 1)
		upsert(t, src, "first-eu", "eu", "a", 1)
		r := testRunner(t, src, dst, t.TempDir())
		copyOnce(t, r)
		time.Sleep(time.Second)
		upsert(t, src, "later-in", "in", "a", 1) // one change in each range
		upsert(t, src, "later-eu", "eu", "a", 1)
		ls, err := r.Store.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		const ttl = 8 * time.Second
		for _, l := range ls { // a worker that is about to die holds both, with the run's TTL
			l.Owner, l.TTL = "gone", ttl
			if _, err := r.Store.Update(ctx, l); err != nil {
				t.Fatal(err)
			}
		}
		// Updates: the run asks the gone worker for a lease (1); once both
		// expired, a pass takes the first (2) and fails on the second (3).
		r.Store = &failingUpdates{Store: r.Store, fail: map[int]bool{3: true}}
		start := time.Now()
		sum, err := r.Run(ctx, RunConfig{UntilCaughtUp: true, Shared: true, LeaseTTL: ttl, Owner: "w2", PollInterval: 100 * time.Millisecond})
		if err != nil || !sum.CaughtUp || len(dst.Items()) != 4 {
			t.Fatalf("run: %+v %v, target %d items", sum, err, len(dst.Items()))
		}
		// The leases expire a TTL after they were written; the first pass
		// after that takes one, the next (a quarter TTL on) the other.
		if took := time.Since(start); took > ttl+ttl/2+ttl/4 {
			t.Fatalf("the run took %v: the lease taken before the failure waited to expire again", took)
		}
	})
}

// lateTakes lets every lease update land, but the first one answers only
// once its caller gave up (ctx ended): the answer is lost, the write is not.
type lateTakes struct {
	lease.Store
	mu    sync.Mutex
	first bool
}

func (s *lateTakes) Update(ctx context.Context, l lease.Lease) (lease.Lease, error) {
	s.mu.Lock()
	late := !s.first
	s.first = true
	s.mu.Unlock()
	if !late {
		return s.Store.Update(ctx, l)
	}
	<-ctx.Done()
	if _, err := s.Store.Update(context.Background(), l); err != nil {
		return lease.Lease{}, err
	}
	return lease.Lease{}, ctx.Err()
}

// A shared run stopped while it takes a lease, whose take lands although
// its answer is lost, releases that lease as it ends. Before, the lease
// stayed in the stopped worker's name for a TTL.
func TestSharedRunReleasesALeaseWhoseTakeLandedAfterTheStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src, dst := newSource(t), newTarget(t)
		upsert(t, src, "a", "in", "a", 1)
		r := testRunner(t, src, dst, t.TempDir())
		copyOnce(t, r)
		store := r.Store
		r.Store = &lateTakes{Store: store}
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			time.Sleep(time.Second)
			cancel() // SIGTERM, while the first take is in flight
		}()
		if _, err := r.Run(ctx, RunConfig{Shared: true, LeaseTTL: 8 * time.Second, Owner: "w2"}); err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("run: %v", err)
		}
		ls, err := store.List(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range ls {
			if l.Owner != "" {
				t.Fatalf("lease %s is still in %q's name after it stopped", l.ID, l.Owner)
			}
		}
	})
}

// landsAfterTheNextList holds back the first take of the lower range by
// w2 until the run stops, then lands it just after the next listing of the
// leases is read, as a take whose answer the stop cut off may land late.
// It keeps the last listing the run read.
type landsAfterTheNextList struct {
	lease.Store
	mu      sync.Mutex
	held    bool
	pending *lease.Lease
	last    []lease.Lease
}

func (s *landsAfterTheNextList) Update(ctx context.Context, l lease.Lease) (lease.Lease, error) {
	s.mu.Lock()
	hold := !s.held && l.Owner == "w2" && l.Range.Min == ""
	s.held = s.held || hold
	s.mu.Unlock()
	if !hold {
		return s.Store.Update(ctx, l)
	}
	<-ctx.Done()
	s.mu.Lock()
	s.pending = &l
	s.mu.Unlock()
	return lease.Lease{}, ctx.Err()
}

func (s *landsAfterTheNextList) List(ctx context.Context) ([]lease.Lease, error) {
	ls, err := s.Store.List(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last = ls
	if s.pending != nil {
		if _, err := s.Store.Update(context.Background(), *s.pending); err != nil {
			return nil, err
		}
		s.pending = nil
	}
	return ls, err
}

// A shared run releases every lease in its name that its last look at the
// leases shows, whatever landed before it. Before, the run looked for such
// leases and then listed them once more for its summary: a take that
// landed between the two stayed in the stopped worker's name for a TTL
// (simulator seed 66277).
func TestSharedRunReleasesWhatItsLastLookAtTheLeasesShows(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		src, dst := newSource(t), newTarget(t)
		upsert(t, src, "a", "in", "a", 1)
		r := testRunner(t, src, dst, t.TempDir())
		copyOnce(t, r)
		ls, err := r.Store.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range ls {
			if l.Range.Min == "" { // held by a worker that is gone: w2 takes it once it expires
				l.Owner, l.TTL = "gone", 4*time.Second
				if _, err := r.Store.Update(ctx, l); err != nil {
					t.Fatal(err)
				}
			}
		}
		store := &landsAfterTheNextList{Store: r.Store}
		r.Store = store
		runCtx, cancel := context.WithCancel(ctx)
		go func() {
			time.Sleep(7 * time.Second)
			cancel() // SIGTERM, while the take of the expired lease is in flight
		}()
		if _, err := r.Run(runCtx, RunConfig{Shared: true, LeaseTTL: 4 * time.Second, Owner: "w2"}); err != nil {
			t.Fatalf("run: %v", err)
		}
		if !store.held {
			t.Fatal("the run never took the expired lease: the test saw nothing")
		}
		now, err := store.Store.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, seen := range store.last {
			for _, l := range now {
				if l.ID == seen.ID && seen.Owner == "w2" && l.Owner == "w2" {
					t.Fatalf("lease %s is still in w2's name after the run stopped, though its last look at the leases showed it", l.ID)
				}
			}
		}
	})
}
