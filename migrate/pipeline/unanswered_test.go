package pipeline

import (
	"context"
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

// A shared run stopped while a write of its page is unanswered leaves a
// cutover a way to wait for that write: its lease records UnansweredAt, or
// stays in the worker's name and expires (the cutover then waits from its
// last renewal). Here the range loop's own release (the one carrying
// UnansweredAt) times out against a throttled lease store, and the run's
// wrap-up releases the lease. Before, that release recorded nothing, and a
// cutover saw a cleanly released lease and did not wait --max-request-time
// for the write still in flight.
func TestTheWrapUpsReleaseRecordsAWriteItsLoopLeftUnanswered(t *testing.T) {
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

// A cutover waits --max-request-time past the last write a worker may
// have sent: for a lease in the name of a worker that died, half its TTL
// past its last renewal. A worker that takes such a lease over records
// that moment in it (lease.Lease.TakenBy), so that the lease still says so
// once that worker released it. Before, the released lease recorded no
// unanswered write, and a cutover waited for nothing while the dead
// worker's last write (sent up to TTL/2 after its last renewal) could
// land up to --max-request-time after it was sent.
func TestATakenOverLeaseKeepsWhenTheDeadWorkersLastWriteMayHaveBeenSent(t *testing.T) {
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
