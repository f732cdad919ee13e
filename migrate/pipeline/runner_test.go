package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/migrate/deadletter"
	"github.com/rekey-dev/rekey/migrate/internal/fake"
	"github.com/rekey-dev/rekey/migrate/pacing"
)

// memSource is an in-memory Source: items in two feed ranges (by the parity
// of their id's length, enough to spread them), a latest-version change feed
// per range ordered by a global LSN, continuations that are LSNs.
type memSource struct {
	mu    sync.Mutex
	lsn   int
	items map[string]memItem // by id
	fail  func() error
}

type memItem struct {
	body []byte
	lsn  int
	rng  int
}

var memRanges = []migrate.FeedRange{{Min: "", Max: "80"}, {Min: "80", Max: "FF"}}

func newMemSource() *memSource { return &memSource{items: map[string]memItem{}} }

func (s *memSource) upsert(id, region, tenant string, v int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lsn++
	s.items[id] = memItem{body: []byte(item(id, region, tenant, v)), lsn: s.lsn, rng: len(id) % 2}
}

func (s *memSource) Definition(context.Context) (migrate.Definition, error) {
	return migrate.Definition{Paths: []string{"/region"}, Kind: "Hash", Version: 2}, nil
}

func (s *memSource) FeedRanges(context.Context) ([]migrate.FeedRange, error) { return memRanges, nil }

func (s *memSource) ReadChanges(ctx context.Context, req migrate.ChangeRequest) (migrate.ChangePage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		if err := s.fail(); err != nil {
			return migrate.ChangePage{}, err
		}
	}
	rng := 0
	if req.Range.Min != "" {
		rng = 1
	}
	after, _ := strconv.Atoi(req.Continuation)
	var found []memItem
	for _, it := range s.items {
		if it.rng == rng && it.lsn > after {
			found = append(found, it)
		}
	}
	sort.Slice(found, func(i, j int) bool { return found[i].lsn < found[j].lsn })
	if len(found) > req.PageSize {
		found = found[:req.PageSize]
	}
	page := migrate.ChangePage{Continuation: req.Continuation, RU: 2}
	for _, it := range found {
		page.Items = append(page.Items, it.body)
		page.Continuation = strconv.Itoa(it.lsn)
	}
	return page, nil
}

func (s *memSource) ReadItem(ctx context.Context, key migrate.Key, id string) (migrate.Item, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	it, ok := s.items[id]
	if !ok {
		return migrate.Item{}, &migrate.RequestError{Status: http.StatusNotFound}
	}
	return migrate.Item{ID: id, Body: it.body}, nil
}

func (s *memSource) ItemCount(context.Context) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int64(len(s.items)), nil
}

// testRunner builds a Runner over a memSource and a fake target with a file
// lease store in a temporary directory, on the real clock: run it inside
// synctest.Test, where that clock is virtual. It writes with a fixed limit
// of 32 writes in flight and no RU caps.
func testRunner(t *testing.T, src *memSource, dst *fake.Target, dir string) *Runner {
	t.Helper()
	tr := fake.Transformer(t, "/pk={tenant}-x")
	store, err := lease.OpenFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	meta := migrate.NewMeta("src", "dst", tr, time.Time{})
	for _, r := range memRanges {
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
		src, dst := newMemSource(), fake.NewTarget()
		for i := 0; i < 250; i++ {
			src.upsert(fmt.Sprintf("item-%d", i), "eu", fmt.Sprintf("t%d", i%7), 1)
		}
		src.upsert("bad", "eu", "", 1) // an empty tenant still makes a key: "-x"
		dir := t.TempDir()
		r := testRunner(t, src, dst, dir)
		sum, err := r.Run(context.Background(), RunConfig{PageSize: 40, UntilCaughtUp: true})
		if err != nil {
			t.Fatal(err)
		}
		if !sum.CaughtUp || sum.Interrupted || sum.Ranges != 2 {
			t.Fatalf("summary %+v", sum)
		}
		if dst.Count() != 251 || sum.Stats.Written() != 251 || sum.Stats.Read != 251 {
			t.Fatalf("target has %d items, stats %+v", dst.Count(), sum.Stats)
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
		src, dst := newMemSource(), fake.NewTarget()
		for i := 0; i < 100; i++ {
			src.upsert(fmt.Sprintf("item-%d", i), "eu", "a", 1)
		}
		dir := t.TempDir()
		r := testRunner(t, src, dst, dir)
		if _, err := r.Run(context.Background(), RunConfig{PageSize: 30, UntilCaughtUp: true}); err != nil {
			t.Fatal(err)
		}
		r.Store.Close()
		r.DeadLetters.Close()
		creates := dst.Calls["create"] + dst.Calls["batch"]

		// Changes after the first run: one update, one new item.
		src.upsert("item-7", "eu", "a", 2)
		src.upsert("item-new", "eu", "a", 1)
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
		if got := dst.Calls["create"] + dst.Calls["batch"] - creates; got != 3 || dst.Calls["replace"] != 1 || dst.Count() != 101 {
			t.Fatalf("resume made %d create calls (want 3), calls %v, target %d", got, dst.Calls, dst.Count())
		}
	})
}

func TestRunStopsOnCancelAndFailsOnPersistentErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src, dst := newMemSource(), fake.NewTarget()
		for i := 0; i < 10; i++ {
			src.upsert(fmt.Sprintf("item-%d", i), "eu", "a", 1)
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
		for dst.Count() < 10 {
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

		src.fail = func() error { return &migrate.RequestError{Status: http.StatusServiceUnavailable} }
		r2 := testRunner(t, src, dst, t.TempDir())
		r2.Writes = fixedWritePath(dst, 3)
		_, err = r2.Run(context.Background(), RunConfig{UntilCaughtUp: true})
		if !errors.Is(err, migrate.ErrTransient) {
			t.Fatalf("want the source's transient error, got %v", err)
		}
	})
}

// failingUpdates is a lease store whose updates fail.
type failingUpdates struct{ lease.Store }

func (failingUpdates) Update(context.Context, lease.Lease) (lease.Lease, error) {
	return lease.Lease{}, errors.New("disk full")
}

// A lease that cannot be taken is named by its id and its feed range.
func TestTakeLeaseNamesTheLease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src, dst := newMemSource(), fake.NewTarget()
		src.upsert("item-1", "eu", "a", 1)
		r := testRunner(t, src, dst, t.TempDir())
		if _, err := r.Run(context.Background(), RunConfig{UntilCaughtUp: true}); err != nil {
			t.Fatal(err)
		}
		r.Store = failingUpdates{r.Store}
		_, err := r.Run(context.Background(), RunConfig{UntilCaughtUp: true})
		if want := `take lease "-80" (feed range [, 80)): disk full`; err == nil || err.Error() != want {
			t.Fatalf("err %v, want %q", err, want)
		}
	})
}
