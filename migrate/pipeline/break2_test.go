package pipeline

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/migrate/migratetest"
)

// firstMarkedReleaseStalls is a lease store whose first release that
// records an unanswered write (a range loop's, after its page was cut
// short) hangs until its context ends, as a throttled lease container's
// answer does for the loop's releaseTimeout; every later request goes
// through (the 429 storm is over by the wrap-up).
type firstMarkedReleaseStalls struct {
	lease.Store
	mu      sync.Mutex
	stalled bool
}

func (s *firstMarkedReleaseStalls) Update(ctx context.Context, l lease.Lease) (lease.Lease, error) {
	s.mu.Lock()
	stall := !s.stalled && l.Owner == "" && !l.UnansweredAt.IsZero()
	s.stalled = s.stalled || stall
	s.mu.Unlock()
	if stall {
		<-ctx.Done()
		return lease.Lease{}, ctx.Err()
	}
	return s.Store.Update(ctx, l)
}

// BREAK2: a shared run stopped while a write of its page is unanswered
// must leave a cutover a way to wait for that write: either its lease
// records UnansweredAt, or it stays in the worker's name and expires (the
// cutover then waits from its last renewal). Here the range loop's own
// release (the one carrying UnansweredAt) times out against a throttled
// lease store, and the run's wrap-up (wrapUpLeases) then releases the lease
// with a plain lease.Leaser.Release, which clears the owner and records no
// unanswered write: the cutover sees a cleanly released lease and does not
// wait --max-request-time for the write still in flight.
func TestBreak2WrapUpReleaseForgetsAnUnansweredWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src, dst := newSource(t), newTarget(t)
		upsert(t, src, "item-1", "eu", "a", 1)
		r := testRunner(t, src, dst, t.TempDir())
		store := &firstMarkedReleaseStalls{Store: r.Store}
		r.Store = store
		ctx, stop := context.WithCancel(context.Background())
		sending := make(chan struct{})
		var once sync.Once
		dst.Intercept(func(op string, _ migrate.Key, _ string) error {
			if op == migratetest.OpCreate {
				once.Do(func() { close(sending) })
				time.Sleep(20 * time.Second) // past the shutdown timeout, within the TTL's half
			}
			return nil
		})
		done := make(chan error, 1)
		go func() {
			_, err := r.Run(ctx, RunConfig{Shared: true, Owner: "w1", LeaseTTL: time.Minute, ShutdownTimeout: time.Second})
			done <- err
		}()
		<-sending
		stop() // SIGTERM while the write is with the service
		if err := <-done; err != nil {
			t.Fatalf("run: %v", err)
		}
		if !store.stalled {
			t.Fatal("the range loop never released its lease with an unanswered write: the test saw nothing")
		}
		ls, err := store.Store.List(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range ls {
			if l.Owner == "w1" || !l.UnansweredAt.IsZero() {
				return // a cutover waits for the write
			}
		}
		t.Fatalf("every lease is released and none records the unanswered write: a cutover would not wait for it: %+v", ls)
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

// BREAK2: a run returns within its shutdown timeout (or a fatal error's
// retries) plus ExitGrace. A shared run whose first balancing pass fails
// after it took some leases gives each back one after another
// (leases.go: run.release in a loop, releaseTimeout each), then wraps up
// (wrapUpTimeout): with three leases taken and a lease store that does not
// answer releases, it returns after 3×2s+3s = 9s, past ExitGrace (5s).
// The same path runs when SIGTERM cuts that first pass off.
func TestBreak2AFailedFirstBalancingPassOverrunsExitGrace(t *testing.T) {
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

// BREAK2: a worker writes a range only within half a TTL of its lease's
// last renewal (lease.Hold.Fence). A bulk request carries the items of
// pages of several ranges, and its fence (fenceOf) asks each page's fence
// one after another: page B's passes, then page A's waits for A's next
// renewal, and the request leaves when A is renewed, however long after B's
// fence passed. Here B's fence passes at 1.95s (writable until 2s) and A is
// renewed at 3.85s: B's items leave 1.85s past B's fence, 150ms before B's
// lease expires and another worker may take it (the fence promises
// TTL/2 = 2s of margin).
func TestBreak2ABulkRequestLeavesPastTheFenceOfOneOfItsPages(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		w, dst, _ := testBulkWriter(t)
		store, err := lease.OpenFile(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		const ttl = 4 * time.Second
		lr := lease.Leaser{Store: store, Owner: "w1", TTL: ttl}
		begun := time.Now()
		hold := func(id, min, max string, sent time.Time) *lease.Hold {
			l, err := store.Create(ctx, lease.Lease{ID: id, Range: lease.Range{Min: min, Max: max}, Owner: "w1", TTL: ttl})
			if err != nil {
				t.Fatal(err)
			}
			return lr.Hold(l, sent)
		}
		holdB := hold("b", "", "80", begun)                              // writable until 2s, expires at 4s
		holdA := hold("a", "80", "FF", begun.Add(-100*time.Millisecond)) // writable until 1.9s, expires at 3.9s
		go func() {
			time.Sleep(3850 * time.Millisecond)
			if err := holdA.Renew(ctx); err != nil { // the lease store answers A's renewal just in time
				t.Error(err)
			}
		}()

		release := make(chan struct{})
		var mu sync.Mutex
		first := true
		sentAt := map[string]time.Time{}
		dst.BulkFail = func(_ string, ops []migrate.BulkOp) error {
			mu.Lock()
			block := first
			first = false
			for _, op := range ops {
				sentAt[string(op.Body)] = time.Now() // its last send
			}
			mu.Unlock()
			if block {
				<-release // the partition's request in flight, while B's and A's pages queue behind it
			}
			return nil
		}
		errs := make(chan error, 3)
		go func() {
			_, err := w.writePage(ctx, changes(t, w, item("x", "eu", "x", 1)), nil)
			errs <- err
		}()
		synctest.Wait()
		go func() {
			_, err := w.writePage(ctx, changes(t, w, item("b1", "eu", "a", 1)), holdB.Fence)
			errs <- err
		}()
		synctest.Wait()
		go func() {
			_, err := w.writePage(ctx, changes(t, w, item("a1", "us", "a", 1)), holdA.Fence)
			errs <- err
		}()
		synctest.Wait()
		time.Sleep(1950*time.Millisecond - time.Since(begun))
		close(release)
		for range 3 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		until := holdB.WritableUntil()
		for body, at := range sentAt {
			if strings.Contains(body, `"b1"`) && !at.Before(until) {
				t.Fatalf("B's item left at %v, past B's fence at %v (its lease expires at %v): requests %v",
					at.Sub(begun), until.Sub(begun), holdB.ExpiresAt().Sub(begun), len(dst.Requests()))
			}
		}
		if len(sentAt) == 0 {
			t.Fatal("nothing was sent")
		}
	})
}

// BREAK2: a cutover waits --max-request-time past the last write a worker
// may have sent: for a lease in the name of a worker that died, half its
// TTL past its last renewal (cutover's fence). Once another worker took
// such a lease over and released it (a cutover stops it), the lease no
// longer says so: it is released, with no UnansweredAt, and the cutover
// waits for nothing, while the dead worker's last write (sent up to TTL/2
// after its last renewal, 30s with the default TTL) may land up to 65s
// after it was sent.
func TestBreak2ATakenOverLeaseForgetsTheDeadWorkersLastWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		src, dst := newSource(t), newTarget(t)
		upsert(t, src, "a", "in", "a", 1)
		r := testRunner(t, src, dst, t.TempDir())
		copyOnce(t, r)
		const ttl = 4 * time.Second
		ls, err := r.Store.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var dead lease.Lease
		for _, l := range ls {
			if l.Range.Min == "" { // held by a worker that died with a write in flight
				l.Owner, l.TTL = "gone", ttl
				if dead, err = r.Store.Update(ctx, l); err != nil {
					t.Fatal(err)
				}
			}
		}
		runCtx, stop := context.WithCancel(ctx)
		time.AfterFunc(3*ttl, stop) // w2 takes the lease once it expires; then it stops (for a cutover, say)
		if _, err := r.Run(runCtx, RunConfig{Shared: true, LeaseTTL: ttl, Owner: "w2"}); err != nil {
			t.Fatalf("run: %v", err)
		}
		got, err := r.Store.Read(ctx, dead.ID)
		if err != nil {
			t.Fatal(err)
		}
		lastSent := dead.Timestamp.Add(ttl / 2) // when the dead worker may have sent its last write
		if got.Owner == "" && got.UnansweredAt.Before(lastSent) {
			t.Fatalf("lease %s released by w2 records no write unanswered since %v (UnansweredAt %v): a cutover would not wait for the dead worker's last write",
				got.ID, lastSent, got.UnansweredAt)
		}
	})
}
