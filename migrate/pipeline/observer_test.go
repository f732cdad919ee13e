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

	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/migrate/migratetest"
)

// recordingObserver records the pages a Runner applies and flags a page
// of a lease begun while another of that lease is still being applied.
type recordingObserver struct {
	mu       sync.Mutex
	open     map[string]int // lease id -> pages being applied
	begun    int
	ended    int
	overlaps []string
	workers  map[string]bool
}

func newRecordingObserver() *recordingObserver {
	return &recordingObserver{open: map[string]int{}, workers: map[string]bool{}}
}

func (o *recordingObserver) PageApplying(worker, leaseID string, r migrate.FeedRange) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.begun++
	o.workers[worker] = true
	if o.open[leaseID] > 0 {
		o.overlaps = append(o.overlaps, fmt.Sprintf("%s [%s, %s)", leaseID, r.Min, r.Max))
	}
	o.open[leaseID]++
}

func (o *recordingObserver) PageApplied(_, leaseID string, _ migrate.FeedRange) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.ended++
	o.open[leaseID]--
}

// counts returns the pages begun and ended, and the leases with a page
// still open.
func (o *recordingObserver) counts() (begun, ended int, open []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for id, n := range o.open {
		if n != 0 {
			open = append(open, id)
		}
	}
	return o.begun, o.ended, open
}

// The Runner tells its Observer of every page it applies, one page of a
// range at a time, each begun page ended.
func TestRunTellsTheObserverOfEveryPage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src, dst := newSource(t), newTarget(t)
		for i := range 60 {
			upsert(t, src, fmt.Sprintf("item-%d", i), []string{"eu", "in"}[i%2], "a", 1)
		}
		r := testRunner(t, src, dst, t.TempDir())
		obs := newRecordingObserver()
		r.Observer = obs
		if _, err := r.Run(context.Background(), RunConfig{PageSize: 7, UntilCaughtUp: true, Owner: "w1"}); err != nil {
			t.Fatal(err)
		}
		begun, ended, open := obs.counts()
		// 30 items a range in pages of 7: 5 pages each.
		if begun != 10 || ended != begun || len(open) != 0 || len(obs.overlaps) != 0 || !obs.workers["w1"] || len(obs.workers) != 1 {
			t.Fatalf("begun %d, ended %d, open %v, overlaps %v, workers %v; want 10 pages told as w1, each ended, none at once",
				begun, ended, open, obs.overlaps, obs.workers)
		}
	})
}

// A page whose hold is lost while it is written (another worker took the
// lease; the hold learns it at its next renewal) is abandoned, and the
// Observer hears that it ended: its loop writes nothing more.
func TestRunTellsTheObserverOfAPageAbandonedWithItsHold(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src, dst := newSource(t), newTarget(t)
		upsert(t, src, "item-1", "eu", "a", 1)
		r := testRunner(t, src, dst, t.TempDir())
		obs := newRecordingObserver()
		r.Observer = obs
		stolen := false
		dst.Intercept(func(op string, _ migrate.Key, _ string) error {
			if op != migratetest.OpCreate {
				return nil
			}
			if !stolen { // another worker takes the lease while the page is written
				stolen = true
				ls, err := r.Store.List(context.Background())
				if err != nil {
					t.Error(err)
				}
				for _, l := range ls {
					if l.Range.Min == "" {
						continue // item-1 ("eu") is in the upper range
					}
					l.Owner = "thief"
					if _, err := r.Store.Update(context.Background(), l); err != nil {
						t.Error(err)
					}
				}
			}
			return &migrate.RequestError{Op: op, Status: http.StatusServiceUnavailable}
		})
		_, err := r.Run(context.Background(), RunConfig{UntilCaughtUp: true, LeaseTTL: time.Second, Owner: "w1"})
		if !errors.Is(err, ErrStopped) {
			t.Fatalf("run: %v, want ErrStopped (the lease was lost)", err)
		}
		begun, ended, open := obs.counts()
		if begun != 1 || ended != 1 || len(open) != 0 || len(dst.Items()) != 0 {
			t.Fatalf("begun %d, ended %d, open %v, target %d items; want the page begun and ended, nothing written", begun, ended, open, len(dst.Items()))
		}
	})
}

// A page abandoned at the shutdown timeout while a write of it is still
// with the service leaves that write unanswered: the lease, released,
// records when (Lease.UnansweredAt), so that a cutover waits for the write
// to land or lapse. A stop whose writes were all answered records nothing.
func TestAbandonedPageMarksItsLeaseUnanswered(t *testing.T) {
	for _, slow := range []bool{false, true} {
		t.Run(map[bool]string{false: "answered", true: "abandoned"}[slow], func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				src, dst := newSource(t), newTarget(t)
				upsert(t, src, "item-1", "eu", "a", 1)
				r := testRunner(t, src, dst, t.TempDir())
				ctx, stop := context.WithCancel(context.Background())
				sending := make(chan struct{})
				dst.Intercept(func(op string, _ migrate.Key, _ string) error {
					if op == migratetest.OpCreate {
						close(sending)
						if slow {
							time.Sleep(20 * time.Second) // past the shutdown timeout, within the TTL
						}
					}
					return nil
				})
				done := make(chan error, 1)
				go func() {
					_, err := r.Run(ctx, RunConfig{ShutdownTimeout: time.Second, Owner: "w1"})
					done <- err
				}()
				<-sending
				stop()
				<-done
				// Run returns at its shutdown timeout and its grace; the
				// range's loop, still waiting for the write, releases its
				// lease once the write returns. (A process that exits
				// first leaves the lease to expire: a cutover then waits
				// from its last renewal.)
				time.Sleep(2 * time.Minute)
				ls, err := r.Store.List(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				var marked int
				for _, l := range ls {
					if l.Owner != "" {
						t.Fatalf("lease %s still owned by %q after the stop", l.ID, l.Owner)
					}
					if !l.UnansweredAt.IsZero() {
						marked++
					}
				}
				if want := map[bool]int{false: 0, true: 1}[slow]; marked != want {
					t.Fatalf("%d leases record unanswered writes, want %d: %+v", marked, want, ls)
				}
			})
		})
	}
}
