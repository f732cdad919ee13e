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

// A lease is taken over only once its owner has not written it for TTL;
// before that a newcomer gets only the one lease it may steal.
func TestAcquireTakesOverExpiredLeases(t *testing.T) {
	cases := []struct {
		name      string
		idle      time.Duration
		wantTaken int
	}{
		{"owner alive: steal one", ttl - time.Second, 1},
		{"owner expired: take all", ttl + time.Second, 4},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			eachStore(t, func(t *testing.T, s lease.Store, clock *leasetest.Clock) {
				ctx := context.Background()
				createLeases(t, s, 4)
				a, b := leaser(s, clock, "a"), leaser(s, clock, "b")
				held, err := a.Acquire(ctx)
				if err != nil || len(held) != 4 {
					t.Fatalf("a alone took %d leases, %v; want all 4", len(held), err)
				}
				clock.Advance(tc.idle)
				taken, err := b.Acquire(ctx)
				if err != nil || len(taken) != tc.wantTaken {
					t.Fatalf("b took %d leases, %v; want %d", len(taken), err, tc.wantTaken)
				}
				// a's worker learns at its next write.
				lost := 0
				for _, l := range held {
					if _, err := a.Renew(ctx, l); errors.Is(err, lease.ErrLeaseLost) {
						lost++
					} else if err != nil {
						t.Fatal(err)
					}
				}
				if lost != tc.wantTaken {
					t.Fatalf("a lost %d leases on renewal, want %d", lost, tc.wantTaken)
				}
			})
		})
	}
}

// worker simulates a pod: it runs a balancing pass, renews what it holds
// and forgets what it lost.
type worker struct {
	lease.Leaser
	held map[string]lease.Lease
}

func (w *worker) pass(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	for id, l := range w.held {
		l, err := w.Renew(ctx, l)
		switch {
		case errors.Is(err, lease.ErrLeaseLost):
			delete(w.held, id)
		case err != nil:
			t.Fatal(err)
		default:
			w.held[id] = l
		}
	}
	taken, err := w.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range taken {
		w.held[l.ID] = l
	}
}

// Workers joining one after another end with fair shares: 10 leases over 3
// workers is 4, 3, 3, and every lease has exactly one owner.
func TestAcquireBalances(t *testing.T) {
	eachStore(t, func(t *testing.T, s lease.Store, clock *leasetest.Clock) {
		createLeases(t, s, 10)
		var ws []*worker
		for _, name := range []string{"a", "b", "c"} {
			ws = append(ws, &worker{Leaser: leaser(s, clock, name), held: map[string]lease.Lease{}})
			for range 6 {
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
// CAS, losing a race is not an error, and a worker whose lease was stolen in
// the race learns it at its next write.
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
				_, err := ws[i].Renew(ctx, l)
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
