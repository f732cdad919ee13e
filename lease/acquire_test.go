package lease_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/lease/leasetest"
)

const ttl = time.Minute

// eachStore runs f against a file store and a Cosmos store, both on clock.
func eachStore(t *testing.T, f func(t *testing.T, s lease.Store, clock *leasetest.Clock)) {
	t.Run("file", func(t *testing.T) {
		clock := leasetest.NewClock(leasetest.Epoch)
		s, err := lease.OpenFile(t.TempDir(), lease.WithClock(clock.Now))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		f(t, s, clock)
	})
	t.Run("cosmos", func(t *testing.T) {
		clock := leasetest.NewClock(leasetest.Epoch)
		s, err := lease.NewCosmos(leasetest.NewMemDocuments(), "app", lease.WithClock(clock.Now))
		if err != nil {
			t.Fatal(err)
		}
		f(t, s, clock)
	})
}

// createLeases creates n free leases splitting the EPK space.
func createLeases(t *testing.T, s lease.Store, n int) {
	t.Helper()
	for i := range n {
		r := lease.Range{Min: fmt.Sprintf("%02X", i*255/n), Max: fmt.Sprintf("%02X", (i+1)*255/n)}
		if i == 0 {
			r.Min = ""
		}
		if i == n-1 {
			r.Max = "FF"
		}
		if _, err := s.Create(context.Background(), lease.Lease{ID: lease.TokenFor(r), Range: r}); err != nil {
			t.Fatal(err)
		}
	}
}

func leaser(s lease.Store, clock *leasetest.Clock, owner string) lease.Leaser {
	return lease.Leaser{Store: s, Owner: owner, TTL: ttl, Now: clock.Now}
}

// owners counts the live leases of each owner.
func owners(t *testing.T, s lease.Store, clock *leasetest.Clock) map[string]int {
	t.Helper()
	list, err := s.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	n := map[string]int{}
	for _, l := range list {
		if !l.Expired(clock.Now(), ttl) {
			n[l.Owner]++
		}
	}
	return n
}

// A lease is taken over only once its owner has not written it for TTL.
// Before that a newcomer takes nothing at once: it asks the busiest owner
// for one lease, which the owner's hold sees at its next write and hands
// over by releasing it; the newcomer takes it on its next pass, and nobody
// else may take it meanwhile.
func TestAcquireTakesOverExpiredLeases(t *testing.T) {
	t.Run("owner expired: take all", func(t *testing.T) {
		eachStore(t, func(t *testing.T, s lease.Store, clock *leasetest.Clock) {
			ctx := context.Background()
			createLeases(t, s, 4)
			a, b := leaser(s, clock, "a"), leaser(s, clock, "b")
			held, err := a.Acquire(ctx)
			if err != nil || len(held) != 4 {
				t.Fatalf("a alone took %d leases, %v; want all 4", len(held), err)
			}
			clock.Advance(ttl + time.Second)
			taken, err := b.Acquire(ctx)
			if err != nil || len(taken) != 4 {
				t.Fatalf("b took %d leases, %v; want 4", len(taken), err)
			}
			for _, l := range held {
				h := a.Hold(l, clock.Now().Add(-ttl-time.Second))
				if err := h.Renew(ctx); !errors.Is(err, lease.ErrLeaseLost) {
					t.Fatalf("a renewing %s = %v, want ErrLeaseLost", l.ID, err)
				}
				if err := h.Fence(ctx); !errors.Is(err, lease.ErrLeaseLost) {
					t.Fatalf("a's fence on %s = %v, want ErrLeaseLost", l.ID, err)
				}
			}
		})
	})
	t.Run("owner alive: handoff at its next write", func(t *testing.T) {
		eachStore(t, func(t *testing.T, s lease.Store, clock *leasetest.Clock) {
			ctx := context.Background()
			createLeases(t, s, 4)
			a, b, c := leaser(s, clock, "a"), leaser(s, clock, "b"), leaser(s, clock, "c")
			held, err := a.Acquire(ctx)
			if err != nil || len(held) != 4 {
				t.Fatalf("a alone took %d leases, %v; want all 4", len(held), err)
			}
			holds := map[string]*lease.Hold{}
			for _, l := range held {
				holds[l.ID] = a.Hold(l, clock.Now())
			}
			clock.Advance(ttl / 4)
			if taken, err := b.Acquire(ctx); err != nil || len(taken) != 0 {
				t.Fatalf("b took %d of a's live leases, %v; want a request only", len(taken), err)
			}
			if taken, err := b.Acquire(ctx); err != nil || len(taken) != 0 {
				t.Fatalf("b's second pass took %d, %v; want none while its request is pending", len(taken), err)
			}
			asked := 0
			for id, h := range holds {
				if err := h.Renew(ctx); err != nil {
					t.Fatalf("a renewing %s after the request: %v", id, err)
				}
				if who := h.HandoffRequested(); who != "" {
					asked++
					if who != "b" {
						t.Fatalf("handoff of %s requested by %q, want b", id, who)
					}
					if err := h.Release(ctx); err != nil {
						t.Fatal(err)
					}
					if err := h.Fence(ctx); !errors.Is(err, lease.ErrLeaseLost) {
						t.Fatalf("fence after the handoff = %v, want ErrLeaseLost", err)
					}
				}
			}
			if asked != 1 {
				t.Fatalf("%d leases asked for, want 1", asked)
			}
			// The released lease is b's: a third worker may not take it.
			if taken, err := c.Acquire(ctx); err != nil || len(taken) != 0 {
				t.Fatalf("c took %+v, %v; the free lease is reserved for b", taken, err)
			}
			taken, err := b.Acquire(ctx)
			if err != nil || len(taken) != 1 || taken[0].Owner != "b" || taken[0].HandoffTo != "" {
				t.Fatalf("b after the handoff took %+v, %v; want the one lease", taken, err)
			}
		})
	})
	t.Run("owner died after the request", func(t *testing.T) {
		eachStore(t, func(t *testing.T, s lease.Store, clock *leasetest.Clock) {
			ctx := context.Background()
			createLeases(t, s, 4)
			a, b := leaser(s, clock, "a"), leaser(s, clock, "b")
			if _, err := a.Acquire(ctx); err != nil {
				t.Fatal(err)
			}
			if taken, err := b.Acquire(ctx); err != nil || len(taken) != 0 {
				t.Fatalf("b took %d, %v; want a request only", len(taken), err)
			}
			clock.Advance(ttl + time.Second) // a never answers
			if taken, err := b.Acquire(ctx); err != nil || len(taken) != 4 {
				t.Fatalf("b after a died took %d, %v; want all 4", len(taken), err)
			}
		})
	})
}

// worker simulates a pod: it runs a balancing pass, renews what it holds,
// hands over what was asked for, and forgets what it lost.
type worker struct {
	lease.Leaser
	clock *leasetest.Clock
	held  map[string]*lease.Hold
}

func (w *worker) pass(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	for id, h := range w.held {
		err := h.Renew(ctx)
		switch {
		case errors.Is(err, lease.ErrLeaseLost):
			delete(w.held, id)
		case err != nil:
			t.Fatal(err)
		case h.HandoffRequested() != "":
			if err := h.Release(ctx); err != nil {
				t.Fatal(err)
			}
			delete(w.held, id)
		}
	}
	taken, err := w.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range taken {
		w.held[l.ID] = w.Hold(l, w.clock.Now())
	}
}

// Workers joining one after another end with fair shares: 10 leases over 3
// workers is 4, 3, 3, and every lease has exactly one owner.
func TestAcquireBalances(t *testing.T) {
	eachStore(t, func(t *testing.T, s lease.Store, clock *leasetest.Clock) {
		createLeases(t, s, 10)
		var ws []*worker
		for _, name := range []string{"a", "b", "c"} {
			ws = append(ws, &worker{Leaser: leaser(s, clock, name), clock: clock, held: map[string]*lease.Hold{}})
			for range 8 {
				for _, w := range ws {
					w.pass(t)
				}
				clock.Advance(ttl / 4)
			}
		}
		got := owners(t, s, clock)
		total := 0
		for _, w := range ws {
			n := got[w.Owner]
			total += n
			if n < 3 || n > 4 || n != len(w.held) {
				t.Errorf("worker %s: %d leases in the store, %d held; want 3 or 4 and equal", w.Owner, n, len(w.held))
			}
		}
		if total != 10 {
			t.Errorf("%d leases owned, want 10 (%v)", total, got)
		}
	})
}

// Workers racing for the same free leases never both hold one: a take is a
// CAS, losing a race is not an error, and a worker whose lease was taken in
// the race learns it at its next write (a handoff request does not take a
// lease: its hold adopts the request).
func TestAcquireRace(t *testing.T) {
	eachStore(t, func(t *testing.T, s lease.Store, clock *leasetest.Clock) {
		ctx := context.Background()
		createLeases(t, s, 8)
		const n = 4
		ws := make([]lease.Leaser, n)
		taken := make([][]lease.Lease, n)
		var wg sync.WaitGroup
		for i := range n {
			ws[i] = leaser(s, clock, fmt.Sprintf("w%d", i))
			wg.Add(1)
			go func() {
				defer wg.Done()
				var err error
				if taken[i], err = ws[i].Acquire(ctx); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		list, err := s.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		stored := map[string]string{}
		for _, l := range list {
			stored[l.ID] = l.Owner
		}
		reports := 0
		for i, ls := range taken {
			for _, l := range ls {
				reports++
				err := ws[i].Hold(l, clock.Now()).Renew(ctx)
				switch {
				case stored[l.ID] == ws[i].Owner && err != nil:
					t.Errorf("%s holds %s but cannot renew it: %v", ws[i].Owner, l.ID, err)
				case stored[l.ID] != ws[i].Owner && !errors.Is(err, lease.ErrLeaseLost):
					t.Errorf("%s lost %s to %s but its renewal = %v, want ErrLeaseLost", ws[i].Owner, l.ID, stored[l.ID], err)
				}
			}
		}
		// Each lease is taken once, plus at most one steal per worker.
		if reports < len(list) || reports > len(list)+n {
			t.Errorf("%d takes reported for %d leases and %d workers", reports, len(list), n)
		}
		for id, owner := range stored {
			if owner == "" {
				t.Errorf("lease %s is still free", id)
			}
		}
	})
}

func TestRenewAndRelease(t *testing.T) {
	eachStore(t, func(t *testing.T, s lease.Store, clock *leasetest.Clock) {
		ctx := context.Background()
		createLeases(t, s, 1)
		a, b := leaser(s, clock, "a"), leaser(s, clock, "b")
		held, err := a.Acquire(ctx)
		if err != nil || len(held) != 1 {
			t.Fatalf("Acquire = %v, %v", held, err)
		}
		l := held[0]

		// Renewing keeps the lease alive past the first TTL.
		for range 3 {
			clock.Advance(ttl / 2)
			if l, err = a.Renew(ctx, l); err != nil {
				t.Fatal(err)
			}
			if !l.Timestamp.Equal(clock.Now()) {
				t.Fatalf("Renew stamped %v, want %v", l.Timestamp, clock.Now())
			}
		}
		if taken, err := b.Acquire(ctx); err != nil || len(taken) != 0 {
			t.Fatalf("b took %d of a's renewed lease (%v); a holds its fair share", len(taken), err)
		}
		if _, err := b.Renew(ctx, l); !errors.Is(err, lease.ErrLeaseLost) {
			t.Fatalf("b renewing a's lease = %v, want ErrLeaseLost", err)
		}

		// Released, it is free at once.
		if _, err := a.Release(ctx, l); err != nil {
			t.Fatal(err)
		}
		if taken, err := b.Acquire(ctx); err != nil || len(taken) != 1 || taken[0].Owner != "b" {
			t.Fatalf("b after release took %+v, %v", taken, err)
		}
		if _, err := a.Release(ctx, l); !errors.Is(err, lease.ErrLeaseLost) {
			t.Fatalf("releasing a lease taken since = %v, want ErrLeaseLost", err)
		}
	})
}

func TestLeaserValidates(t *testing.T) {
	s, err := lease.NewCosmos(leasetest.NewMemDocuments(), "app")
	if err != nil {
		t.Fatal(err)
	}
	for _, lr := range []lease.Leaser{{Owner: "a", TTL: ttl}, {Store: s, TTL: ttl}, {Store: s, Owner: "a"}} {
		if _, err := lr.Acquire(context.Background()); err == nil {
			t.Errorf("Acquire with %+v succeeded", lr)
		}
	}
}

// A lease fenced by a cutover is neither taken nor asked for by a worker,
// free, expired or owned; the fence's owner takes it. A lease is expired
// only after the longer of the judge's TTL and the TTL its writer recorded.
func TestAcquireLeavesFencedLeasesAlone(t *testing.T) {
	eachStore(t, func(t *testing.T, s lease.Store, clock *leasetest.Clock) {
		ctx := context.Background()
		createLeases(t, s, 4)
		a := leaser(s, clock, "a")
		if got, err := a.Acquire(ctx); err != nil || len(got) != 4 {
			t.Fatalf("a took %d leases (%v), want 4", len(got), err)
		}
		// The cutover fences the first two once a lets them go.
		list, _ := s.List(ctx)
		for _, l := range list[:2] {
			l.Owner, l.Fence = "", "cutover"
			if _, err := s.Update(ctx, l); err != nil {
				t.Fatal(err)
			}
		}
		b := leaser(s, clock, "b")
		got, err := b.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range got {
			if l.Fence != "" {
				t.Fatalf("worker b took the fenced lease %s", l.ID)
			}
		}
		list, _ = s.List(ctx)
		for _, l := range list {
			if l.Fence != "" && (l.Owner != "" || l.HandoffTo != "") {
				t.Fatalf("a fenced lease was taken or asked for: %+v", l)
			}
		}
		clock.Advance(2 * ttl)
		if got, _ := b.Acquire(ctx); len(got) != 2 {
			t.Fatalf("after a's leases expired, b took %d, want the 2 unfenced", len(got))
		}
		if got, _ := leaser(s, clock, "cutover").Acquire(ctx); len(got) == 0 {
			t.Fatal("the fence's owner could not take its fenced leases")
		}
	})
}

func TestExpiredHonoursTheRecordedTTL(t *testing.T) {
	l := lease.Lease{Owner: "w", Timestamp: leasetest.Epoch, TTL: 3 * time.Minute}
	if l.Expired(leasetest.Epoch.Add(2*time.Minute), time.Minute) {
		t.Fatal("a lease written with a 3-minute TTL expired after 2 minutes for a judge with 1")
	}
	if !l.Expired(leasetest.Epoch.Add(4*time.Minute), time.Minute) {
		t.Fatal("a lease not written for 4 minutes with a 3-minute TTL is not expired")
	}
}

// A lease taken from a holder that let it expire keeps the last moment
// that holder may have sent a write (half its TTL past its last renewal),
// or a later unanswered write already recorded; a free lease keeps what it
// had.
func TestTakenByKeepsWhenTheLastHolderMayHaveWritten(t *testing.T) {
	renewed := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name string
		l    lease.Lease
		want time.Time
	}{
		{"free", lease.Lease{Timestamp: renewed}, time.Time{}},
		{"expired, its holder's TTL", lease.Lease{Owner: "gone", Timestamp: renewed, TTL: time.Minute}, renewed.Add(30 * time.Second)},
		{"expired, the taker's longer TTL", lease.Lease{Owner: "gone", Timestamp: renewed, TTL: 10 * time.Second}, renewed.Add(20 * time.Second)},
		{"a later unanswered write", lease.Lease{Owner: "gone", Timestamp: renewed, UnansweredAt: renewed.Add(time.Hour)}, renewed.Add(time.Hour)},
		{"released with one", lease.Lease{Timestamp: renewed, UnansweredAt: renewed.Add(-time.Second)}, renewed.Add(-time.Second)},
	}
	for _, c := range cases {
		got := c.l.TakenBy("w2", 40*time.Second)
		if got.Owner != "w2" || got.TTL != 40*time.Second || got.HandoffTo != "" || !got.UnansweredAt.Equal(c.want) {
			t.Errorf("%s: TakenBy gave owner %q TTL %v UnansweredAt %v, want w2, 40s, %v", c.name, got.Owner, got.TTL, got.UnansweredAt, c.want)
		}
	}
}
