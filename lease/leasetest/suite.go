package leasetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/rekey-dev/rekey/lease"
)

// Epoch is where the suites' clocks start.
var Epoch = time.Date(2025, 3, 14, 15, 9, 26, 535897900, time.UTC)

// OpenStore returns a fresh, empty store whose clock is clock.Now; the suite
// closes it.
type OpenStore func(t *testing.T, clock *Clock) lease.Store

// RunStore checks that a Store keeps the contract: Init is create-if-absent,
// leases round-trip with every field (through List and Read), List orders
// by Range.Min, writes are
// compare-and-swap (ErrLeaseExists, ErrLeaseLost), and of many concurrent
// updates from one read exactly one wins.
func RunStore(t *testing.T, open OpenStore) {
	t.Helper()
	fresh := func(t *testing.T) (lease.Store, *Clock) {
		clock := NewClock(Epoch)
		s := open(t, clock)
		t.Cleanup(func() { s.Close() })
		return s, clock
	}
	ctx := context.Background()

	t.Run("InitIsCreateIfAbsent", func(t *testing.T) {
		s, _ := fresh(t)
		first := sampleMeta("/tenantId")
		got, err := s.Init(ctx, first)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, first) {
			t.Fatalf("Init on a fresh store = %+v, want %+v", got, first)
		}
		got, err = s.Init(ctx, sampleMeta("/other"))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, first) {
			t.Fatalf("second Init = %+v, want the recorded %+v", got, first)
		}
	})

	t.Run("UpdateMeta", func(t *testing.T) {
		s, _ := fresh(t)
		m := sampleMeta("/tenantId")
		if _, err := s.Init(ctx, m); err != nil {
			t.Fatal(err)
		}
		m.StartFrom = "2025-03-14T15:00:00Z"
		if err := s.UpdateMeta(ctx, m); err != nil {
			t.Fatal(err)
		}
		got, err := s.Init(ctx, sampleMeta("/x"))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("after UpdateMeta, Init = %+v, want %+v", got, m)
		}
	})

	t.Run("SwapMetaSetsThePhaseUpdateMetaKeepsIt", func(t *testing.T) {
		s, _ := fresh(t)
		if _, err := s.SwapMeta(ctx, func(*lease.Meta) error { return nil }); !errors.Is(err, lease.ErrNoMeta) {
			t.Fatalf("SwapMeta on a fresh store = %v, want ErrNoMeta", err)
		}
		stale, err := s.Init(ctx, sampleMeta("/tenantId"))
		if err != nil {
			t.Fatal(err)
		}
		req := &lease.CutoverRequest{Owner: "cutover-1", At: Epoch, RenewedAt: Epoch, TTL: time.Minute}
		cut := &lease.Cutover{At: Epoch.Add(time.Hour), Items: 42, VerifyDigest: "sha256:ab",
			Application:   &lease.ApplicationWrites{KeyPaths: []string{"/pk"}, Synthetic: []lease.SyntheticKey{{Path: "/pk", Template: "{a}-{b}"}}, Before: []byte(`{"id":"1"}`), After: []byte(`{"id":"1","pk":"x-y"}`)},
			Follow:        []lease.FeedPosition{{Range: lease.Range{Max: "FF"}, Continuation: "c1"}},
			SourceHorizon: 1700000000}
		got, err := s.SwapMeta(ctx, func(m *lease.Meta) error {
			m.CutoverRequest, m.Cutover, m.RolledBack = req, cut, cut
			return nil
		})
		if err != nil || !reflect.DeepEqual(got.Cutover, cut) || !reflect.DeepEqual(got.CutoverRequest, req) {
			t.Fatalf("SwapMeta = %+v, %v", got, err)
		}
		stale.StartFrom = "2025-03-14T15:00:00Z"
		if err := s.UpdateMeta(ctx, stale); err != nil {
			t.Fatal(err)
		}
		read, err := s.ReadMeta(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if read.StartFrom != stale.StartFrom || !reflect.DeepEqual(read.Cutover, cut) || !reflect.DeepEqual(read.RolledBack, cut) || !reflect.DeepEqual(read.CutoverRequest, req) {
			t.Fatalf("after a stale UpdateMeta: %+v", read)
		}
		refused := errors.New("refused")
		if _, err := s.SwapMeta(ctx, func(m *lease.Meta) error { m.Source = "changed"; return refused }); err != refused {
			t.Fatalf("SwapMeta whose change refuses = %v, want its error", err)
		}
		if read, _ := s.ReadMeta(ctx); read.Source == "changed" {
			t.Fatal("a refused SwapMeta wrote the meta")
		}
	})

	t.Run("ConcurrentSwapMetaOneWins", func(t *testing.T) {
		s, _ := fresh(t)
		if _, err := s.Init(ctx, sampleMeta("/tenantId")); err != nil {
			t.Fatal(err)
		}
		const n = 8
		var wg sync.WaitGroup
		var mu sync.Mutex
		won := 0
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := s.SwapMeta(ctx, func(m *lease.Meta) error {
					if m.CutoverRequest != nil {
						return errors.New("taken")
					}
					m.CutoverRequest = &lease.CutoverRequest{Owner: fmt.Sprint("c", i), TTL: time.Minute}
					return nil
				})
				if err == nil {
					mu.Lock()
					won++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if won != 1 {
			t.Fatalf("%d of %d concurrent swaps that each require no request won, want 1", won, n)
		}
	})

	t.Run("CreateListRoundTrip", func(t *testing.T) {
		s, clock := fresh(t)
		in := []lease.Lease{
			{ID: "05C1E0-0AAAAA", Range: lease.Range{Min: "05C1E0", Max: "0AAAAA"}},
			FullLease("-05C1E0", lease.Range{Min: "", Max: "05C1E0"}),
			{ID: "0AAAAA-FF", Range: lease.Range{Min: "0AAAAA", Max: "FF"}, Owner: "pod-1"},
		}
		created := map[string]lease.Lease{}
		for _, l := range in {
			got, err := s.Create(ctx, l)
			if err != nil {
				t.Fatalf("Create(%s): %v", l.ID, err)
			}
			if got.ETag == "" || !got.Timestamp.Equal(clock.Now()) {
				t.Fatalf("Create(%s) = ETag %q Timestamp %v, want an ETag and %v", l.ID, got.ETag, got.Timestamp, clock.Now())
			}
			want := l
			want.Timestamp, want.ETag = got.Timestamp, got.ETag
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("Create returned\n%+v\nwant\n%+v", got, want)
			}
			created[l.ID] = got
		}
		list, err := s.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, l := range list {
			ids = append(ids, l.ID)
			if !reflect.DeepEqual(l, created[l.ID]) {
				t.Errorf("List has\n%+v\nCreate returned\n%+v", l, created[l.ID])
			}
		}
		if want := []string{"-05C1E0", "05C1E0-0AAAAA", "0AAAAA-FF"}; !reflect.DeepEqual(ids, want) {
			t.Fatalf("List order = %q, want %q", ids, want)
		}
		for id, want := range created {
			got, err := s.Read(ctx, id)
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("Read(%s) = %+v, %v; want\n%+v", id, got, err, want)
			}
		}
		if _, err := s.Read(ctx, "absent"); !errors.Is(err, lease.ErrLeaseNotFound) {
			t.Errorf("Read(absent) = %v, want ErrLeaseNotFound", err)
		}
	})

	t.Run("CreateTakenID", func(t *testing.T) {
		s, _ := fresh(t)
		l := lease.Lease{ID: "a", Range: lease.Range{Max: "FF"}}
		if _, err := s.Create(ctx, l); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Create(ctx, l); !errors.Is(err, lease.ErrLeaseExists) {
			t.Fatalf("second Create = %v, want ErrLeaseExists", err)
		}
	})

	t.Run("InvalidID", func(t *testing.T) {
		s, _ := fresh(t)
		for _, id := range []string{"", "a/b", `a\b`, ".hidden", "a?b", "a#b", "a\nb"} {
			_, err := s.Create(ctx, lease.Lease{ID: id})
			if err == nil || errors.Is(err, lease.ErrLeaseExists) {
				t.Errorf("Create(%q) = %v, want an invalid-id error", id, err)
			}
		}
	})

	t.Run("UpdateIsCAS", func(t *testing.T) {
		cases := []struct {
			name   string
			mutate func(t *testing.T, s lease.Store, l lease.Lease) lease.Lease
			lost   bool
		}{
			{"current ETag wins", func(t *testing.T, s lease.Store, l lease.Lease) lease.Lease { return l }, false},
			{"stale ETag loses", func(t *testing.T, s lease.Store, l lease.Lease) lease.Lease {
				if _, err := s.Update(ctx, l); err != nil {
					t.Fatal(err)
				}
				return l
			}, true},
			{"empty ETag loses", func(t *testing.T, s lease.Store, l lease.Lease) lease.Lease {
				l.ETag = ""
				return l
			}, true},
			{"deleted lease loses", func(t *testing.T, s lease.Store, l lease.Lease) lease.Lease {
				if err := s.Delete(ctx, l); err != nil {
					t.Fatal(err)
				}
				return l
			}, true},
			{"recreated lease loses", func(t *testing.T, s lease.Store, l lease.Lease) lease.Lease {
				if err := s.Delete(ctx, l); err != nil {
					t.Fatal(err)
				}
				if _, err := s.Create(ctx, l); err != nil {
					t.Fatal(err)
				}
				return l
			}, true},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				s, clock := fresh(t)
				l, err := s.Create(ctx, lease.Lease{ID: "r", Range: lease.Range{Max: "FF"}})
				if err != nil {
					t.Fatal(err)
				}
				l = tc.mutate(t, s, l)
				clock.Advance(time.Second)
				l.Continuation, l.Owner, l.Items = `"42"`, "me", 7
				got, err := s.Update(ctx, l)
				if tc.lost {
					if !errors.Is(err, lease.ErrLeaseLost) {
						t.Fatalf("Update = %v, want ErrLeaseLost", err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if got.ETag == l.ETag || !got.Timestamp.Equal(clock.Now()) || got.Continuation != `"42"` || got.Items != 7 {
					t.Fatalf("Update returned %+v: want a new ETag, timestamp %v, the new fields", got, clock.Now())
				}
				list, err := s.List(ctx)
				if err != nil || len(list) != 1 || !reflect.DeepEqual(list[0], got) {
					t.Fatalf("List after Update = %+v, %v; want [%+v]", list, err, got)
				}
			})
		}
	})

	t.Run("DeleteIsCAS", func(t *testing.T) {
		s, _ := fresh(t)
		l, err := s.Create(ctx, lease.Lease{ID: "r", Range: lease.Range{Max: "FF"}})
		if err != nil {
			t.Fatal(err)
		}
		l2, err := s.Update(ctx, l)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, l); !errors.Is(err, lease.ErrLeaseLost) {
			t.Fatalf("Delete with a stale ETag = %v, want ErrLeaseLost", err)
		}
		if err := s.Delete(ctx, l2); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, l2); !errors.Is(err, lease.ErrLeaseLost) {
			t.Fatalf("Delete of a deleted lease = %v, want ErrLeaseLost", err)
		}
		if list, err := s.List(ctx); err != nil || len(list) != 0 {
			t.Fatalf("List after Delete = %v, %v; want none", list, err)
		}
	})

	t.Run("ConcurrentUpdatesOneWins", func(t *testing.T) {
		s, _ := fresh(t)
		l, err := s.Create(ctx, lease.Lease{ID: "r", Range: lease.Range{Max: "FF"}})
		if err != nil {
			t.Fatal(err)
		}
		const n = 16
		var wg sync.WaitGroup
		errs := make([]error, n)
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				mine := l
				mine.Owner = fmt.Sprintf("w%d", i)
				<-start
				_, errs[i] = s.Update(ctx, mine)
			}()
		}
		close(start)
		wg.Wait()
		winner := ""
		for i, err := range errs {
			switch {
			case err == nil:
				if winner != "" {
					t.Fatalf("both %s and w%d won", winner, i)
				}
				winner = fmt.Sprintf("w%d", i)
			case !errors.Is(err, lease.ErrLeaseLost):
				t.Fatalf("w%d: %v, want ErrLeaseLost", i, err)
			}
		}
		list, err := s.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if winner == "" || list[0].Owner != winner {
			t.Fatalf("winner %q, stored owner %q", winner, list[0].Owner)
		}
	})
}

// FullLease returns a lease with every field set (but ETag and Timestamp,
// which stores set), for round-trip tests.
func FullLease(id string, r lease.Range) lease.Lease {
	return lease.Lease{
		ID:             id,
		Range:          r,
		Continuation:   `"1234"`,
		Owner:          "rekey-7d9f-0/1",
		Items:          123456789,
		RU:             98765.4321,
		CheckpointedAt: Epoch.Add(-time.Minute).Truncate(100 * time.Nanosecond),
		CaughtUpAt:     Epoch.Add(-time.Second).Truncate(100 * time.Nanosecond),
		LastChangeTS:   1741964966,
		HandoffTo:      "rekey-7d9f-1/1",
		Fence:          "cutover-host/42",
		TTL:            90 * time.Second,
	}
}

func sampleMeta(key string) lease.Meta {
	return lease.Meta{
		Version:        1,
		Source:         "acct.documents.azure.com/shop/orders",
		Target:         "acct.documents.azure.com/shop/orders-by-tenant",
		KeySpec:        []string{key},
		SourceKeyPaths: []string{"/region"},
		CreatedAt:      Epoch,
	}
}
