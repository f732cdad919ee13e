package lease_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/lease/leasetest"
)

// holdOne creates one lease and returns a's hold on it.
func holdOne(t *testing.T, s lease.Store, clock *leasetest.Clock, a lease.Leaser) *lease.Hold {
	t.Helper()
	createLeases(t, s, 1)
	taken, err := a.Acquire(context.Background())
	if err != nil || len(taken) != 1 {
		t.Fatalf("Acquire = %v, %v", taken, err)
	}
	return a.Hold(taken[0], clock.Now())
}

// The fence lets writes start only within half a TTL of the last renewal,
// waits for the next renewal past it, and refuses once the hold is lost.
func TestHoldFence(t *testing.T) {
	eachStore(t, func(t *testing.T, s lease.Store, clock *leasetest.Clock) {
		ctx := context.Background()
		h := holdOne(t, s, clock, leaser(s, clock, "a"))
		if err := h.Fence(ctx); err != nil {
			t.Fatalf("fresh hold: fence = %v", err)
		}
		clock.Advance(ttl/2 + time.Second)
		short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		defer cancel()
		if err := h.Fence(short); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("past half the TTL without renewal: fence = %v, want it to wait", err)
		}
		waited := make(chan error, 1)
		go func() { waited <- h.Fence(ctx) }()
		if err := h.Renew(ctx); err != nil {
			t.Fatal(err)
		}
		if err := <-waited; err != nil {
			t.Fatalf("fence after the renewal = %v", err)
		}
		if !h.WritableUntil().Equal(clock.Now().Add(ttl / 2)) {
			t.Fatalf("writable until %v, want %v", h.WritableUntil(), clock.Now().Add(ttl/2))
		}
	})
}

// A write that finds the lease changed adopts a handoff request while the
// hold lasts; the same conflict after the hold expired loses it, even when
// the lease names this worker again (it may have had another owner between).
func TestHoldAdoptsRequestsAndLosesExpired(t *testing.T) {
	eachStore(t, func(t *testing.T, s lease.Store, clock *leasetest.Clock) {
		ctx := context.Background()
		a, b := leaser(s, clock, "a"), leaser(s, clock, "b")
		h := holdOne(t, s, clock, a)
		cur, err := s.Read(ctx, h.Lease().ID)
		if err != nil {
			t.Fatal(err)
		}
		cur.HandoffTo = "b"
		if _, err := s.Update(ctx, cur); err != nil {
			t.Fatal(err)
		}
		got, err := h.Write(ctx, func(l *lease.Lease) { l.Items = 7 })
		if err != nil || got.Items != 7 || got.Owner != "a" || h.HandoffRequested() != "b" {
			t.Fatalf("write after a request = %+v, %v (handoff %q)", got, err, h.HandoffRequested())
		}

		// Expired, taken by b, handed back to a: a's old hold is lost.
		clock.Advance(ttl + time.Second)
		if taken, err := b.Acquire(ctx); err != nil || len(taken) != 1 {
			t.Fatalf("b took %v, %v", taken, err)
		}
		if err := b.Hold(mustRead(t, s, h.Lease().ID), clock.Now()).Release(ctx); err != nil {
			t.Fatal(err)
		}
		if taken, err := a.Acquire(ctx); err != nil || len(taken) != 1 {
			t.Fatalf("a took back %v, %v", taken, err)
		}
		if err := h.Renew(ctx); !errors.Is(err, lease.ErrLeaseLost) {
			t.Fatalf("renewing the expired hold = %v, want ErrLeaseLost", err)
		}
		select {
		case <-h.Lost():
		default:
			t.Fatal("Lost is not closed")
		}
		if err := h.Fence(ctx); !errors.Is(err, lease.ErrLeaseLost) {
			t.Fatalf("fence of a lost hold = %v", err)
		}
	})
}

// Another owner's write loses the hold at once; releasing a lost hold writes
// nothing.
func TestHoldLostToAnotherOwner(t *testing.T) {
	eachStore(t, func(t *testing.T, s lease.Store, clock *leasetest.Clock) {
		ctx := context.Background()
		h := holdOne(t, s, clock, leaser(s, clock, "a"))
		cur := mustRead(t, s, h.Lease().ID)
		cur.Owner = "b"
		if _, err := s.Update(ctx, cur); err != nil {
			t.Fatal(err)
		}
		if err := h.Renew(ctx); !errors.Is(err, lease.ErrLeaseLost) || !errors.Is(h.Err(), lease.ErrLeaseLost) {
			t.Fatalf("renew = %v, Err = %v; want ErrLeaseLost", err, h.Err())
		}
		if err := h.Release(ctx); err != nil {
			t.Fatal(err)
		}
		if l := mustRead(t, s, h.Lease().ID); l.Owner != "b" {
			t.Fatalf("the lost hold's release wrote owner %q", l.Owner)
		}
	})
}

func mustRead(t *testing.T, s lease.Store, id string) lease.Lease {
	t.Helper()
	l, err := s.Read(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// stallingStore holds every lease update until release is closed, telling
// entered when one is waiting.
type stallingStore struct {
	lease.Store
	entered chan struct{}
	release chan struct{}
}

func (s *stallingStore) Update(ctx context.Context, l lease.Lease) (lease.Lease, error) {
	s.entered <- struct{}{}
	<-s.release
	return s.Store.Update(ctx, l)
}

// A write of the lease waits for the one under way, and gives up when its
// context ends: no lock is held across a request. Before, a sync.Mutex
// made it wait out the slow request whatever its context said (and a
// simulated clock could not see the wait).
func TestHoldWriteWaitingForAnotherGivesUpWithItsContext(t *testing.T) {
	eachStore(t, func(t *testing.T, s lease.Store, clock *leasetest.Clock) {
		ctx := context.Background()
		h0 := holdOne(t, s, clock, leaser(s, clock, "a"))
		stall := &stallingStore{Store: s, entered: make(chan struct{}), release: make(chan struct{})}
		h := leaser(stall, clock, "a").Hold(h0.Lease(), clock.Now())
		first := make(chan error, 1)
		go func() { _, err := h.Write(ctx, nil); first <- err }()
		<-stall.entered // the first write is with the store
		short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		defer cancel()
		second := make(chan error, 1)
		go func() { _, err := h.Write(short, func(l *lease.Lease) { l.Items = 9 }); second <- err }()
		select {
		case err := <-second:
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("the waiting write: %v, want its context's end", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the waiting write did not give up when its context ended")
		}
		close(stall.release)
		if err := <-first; err != nil {
			t.Fatalf("the first write: %v", err)
		}
		if got := mustRead(t, s, h.Lease().ID); got.Items != 0 || got.Owner != "a" {
			t.Fatalf("lease %+v: the abandoned write must not have happened", got)
		}
	})
}

// throttledStore answers every update of a lease with updateErr and every
// read with a throttling error, counting the updates sent.
type throttledStore struct {
	lease.Store
	updateErr error
	updates   int
	// slow, when set, is run while an update travels.
	slow func()
}

var errThrottled = errors.New("429: request rate is large")

func (s *throttledStore) Update(context.Context, lease.Lease) (lease.Lease, error) {
	s.updates++
	if s.slow != nil {
		s.slow()
	}
	return lease.Lease{}, s.updateErr
}

func (s *throttledStore) Read(context.Context, string) (lease.Lease, error) {
	return lease.Lease{}, errThrottled
}

// A hold the lease store keeps from renewing expires a TTL after its last
// renewal: Expire loses it then (not before), the fence refuses, and no
// later write is sent. Before, a hold whose renewals were throttled stayed
// unlost until a re-read got through, so its loop sat in its page past the
// time another worker could take the lease over (simulator seed 3405).
func TestHoldExpiresWhileItCannotBeRenewed(t *testing.T) {
	eachStore(t, func(t *testing.T, s lease.Store, clock *leasetest.Clock) {
		ctx := context.Background()
		h0 := holdOne(t, s, clock, leaser(s, clock, "a"))
		ts := &throttledStore{Store: s, updateErr: errThrottled}
		h := leaser(ts, clock, "a").Hold(h0.Lease(), clock.Now())
		if !h.ExpiresAt().Equal(clock.Now().Add(ttl)) {
			t.Fatalf("expires at %v, want %v", h.ExpiresAt(), clock.Now().Add(ttl))
		}
		clock.Advance(ttl - time.Second)
		if err := h.Renew(ctx); !errors.Is(err, errThrottled) || h.Err() != nil {
			t.Fatalf("throttled renewal within the TTL = %v (Err %v), want the throttling and the hold kept", err, h.Err())
		}
		if h.Expire() {
			t.Fatal("Expire lost the hold before its expiry")
		}
		clock.Advance(time.Second)
		if !h.Expire() || !errors.Is(h.Err(), lease.ErrLeaseLost) {
			t.Fatalf("Expire at the expiry: Err = %v, want ErrLeaseLost", h.Err())
		}
		select {
		case <-h.Lost():
		default:
			t.Fatal("Lost is not closed at the expiry")
		}
		if err := h.Fence(ctx); !errors.Is(err, lease.ErrLeaseLost) {
			t.Fatalf("fence of the expired hold = %v", err)
		}
		sent := ts.updates
		if err := h.Renew(ctx); !errors.Is(err, lease.ErrLeaseLost) || ts.updates != sent {
			t.Fatalf("renewal of the expired hold = %v after %d more updates sent, want ErrLeaseLost and none", err, ts.updates-sent)
		}
	})
}

// A conflict once the hold expired loses it without the re-read that the
// store throttles: whoever changed the lease may own it.
func TestHoldChangedAfterExpiryIsLostWithoutARead(t *testing.T) {
	eachStore(t, func(t *testing.T, s lease.Store, clock *leasetest.Clock) {
		ctx := context.Background()
		h0 := holdOne(t, s, clock, leaser(s, clock, "a"))
		ts := &throttledStore{Store: s, updateErr: lease.ErrLeaseLost}
		h := leaser(ts, clock, "a").Hold(h0.Lease(), clock.Now())
		if err := h.Renew(ctx); !errors.Is(err, errThrottled) || h.Err() != nil {
			t.Fatalf("conflict within the TTL, re-read throttled = %v (Err %v), want the throttling and the hold kept", err, h.Err())
		}
		// The write is sent just before the expiry and answered after it.
		clock.Advance(ttl - time.Millisecond)
		ts.slow = func() { clock.Advance(time.Second) }
		if err := h.Renew(ctx); !errors.Is(err, lease.ErrLeaseLost) || !errors.Is(h.Err(), lease.ErrLeaseLost) {
			t.Fatalf("conflict answered after the expiry = %v (Err %v), want ErrLeaseLost", err, h.Err())
		}
	})
}
