package pacing

import (
	"context"
	"sort"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/migrate/migratetest"
)

// spend runs requests of the given charges through b one after another on
// the fake clock, each expected to cost what it costs and taking latency,
// and returns the RU/s spent.
func spend(t *testing.T, b *RUCap, clk *migratetest.Clock, charges []float64, latency time.Duration) float64 {
	t.Helper()
	start := clk.Now()
	total := 0.0
	for _, ru := range charges {
		r, err := b.Acquire(context.Background(), ru)
		if err != nil {
			t.Fatal(err)
		}
		clk.Advance(latency)
		b.Settle(r, ru)
		total += ru
	}
	return total / clk.Now().Sub(start).Seconds()
}

func TestRUCapKeepsWithinTheCap(t *testing.T) {
	mixed := make([]float64, 0, 3000)
	for i := range 3000 {
		switch {
		case i%50 == 0:
			mixed = append(mixed, 550) // a bulk request of 100 creates
		case i%7 == 0:
			mixed = append(mixed, 11) // a replace
		default:
			mixed = append(mixed, 5.5)
		}
	}
	for _, tc := range []struct {
		name    string
		cap     float64
		charges []float64
	}{
		{"creates", 1000, repeat(5.5, 2000)},
		{"mixed charges", 5000, mixed},
		{"charges above a burst", 100, repeat(550, 20)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := &migratetest.Clock{}
			b := NewRUCap(tc.cap, clk)
			got := spend(t, b, clk, tc.charges, time.Millisecond)
			if got > tc.cap*1.06 || got < tc.cap*0.9 {
				t.Fatalf("spent %.0f RU/s under a cap of %.0f", got, tc.cap)
			}
		})
	}
}

func TestRUCapAdjustsWhileRunning(t *testing.T) {
	clk := &migratetest.Clock{}
	b := NewRUCap(0, clk)
	if got := spend(t, b, clk, repeat(5.5, 100), time.Millisecond); got < 5000 {
		t.Fatalf("an unlimited cap held requests back: %.0f RU/s", got)
	}
	b.SetLimit(2000)
	if got := spend(t, b, clk, repeat(5.5, 2000), time.Millisecond); got > 2150 || got < 1800 {
		t.Fatalf("after SetLimit(2000): %.0f RU/s", got)
	}
	b.SetLimit(500)
	if got := spend(t, b, clk, repeat(5.5, 500), time.Millisecond); got > 525 || got < 450 {
		t.Fatalf("after SetLimit(500): %.0f RU/s", got)
	}
	if b.Limit() != 500 || b.RequestLimit() != 6.25 {
		t.Fatalf("Limit %v, RequestLimit %v", b.Limit(), b.RequestLimit())
	}
	if src := NewSourceRUCap(500, clk); src.RequestLimit() != 12.5 {
		t.Fatalf("a source cap of 500 RU/s: RequestLimit %v, want a fortieth", src.RequestLimit())
	}
	b.SetLimit(0)
	if got := spend(t, b, clk, repeat(5.5, 100), time.Millisecond); got < 5000 {
		t.Fatalf("an uncapped RU cap held requests back: %.0f RU/s", got)
	}
	var none *RUCap
	if r, err := none.Acquire(context.Background(), 5); err != nil || r.Reserved != 0 || none.RequestLimit() != 0 {
		t.Fatal("a nil RU cap is unlimited")
	}
	none.Settle(migrate.Reservation{}, 5)
}

func TestRUCapGivesBackCancelledReservations(t *testing.T) {
	clk := &migratetest.Clock{}
	b := NewRUCap(1000, clk)
	spend(t, b, clk, repeat(5.5, 200), 0) // spend the burst
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for range 100 {
		if _, err := b.Acquire(ctx, 5.5); err == nil {
			t.Fatal("acquire with a cancelled context succeeded")
		}
	}
	// The cancelled reservations are credited: the next requests flow at
	// the cap, not behind 100 phantom ones.
	if got := spend(t, b, clk, repeat(5.5, 400), 0); got < 900 {
		t.Fatalf("after cancelled waits: %.0f RU/s under a cap of 1000", got)
	}
}

// TestRUCapLearnsTheCostModelsError: requests that cost twice what the
// model expected make the cap reserve twice the model.
func TestRUCapLearnsTheCostModelsError(t *testing.T) {
	clk := &migratetest.Clock{}
	b := NewRUCap(1000, clk)
	for range 50 {
		r, err := b.Acquire(context.Background(), 5.5)
		if err != nil {
			t.Fatal(err)
		}
		b.Settle(r, 11)
	}
	if c := b.Correction(); c < 1.95 || c > 2.05 {
		t.Fatalf("correction %.2f after requests at twice the model, want 2", c)
	}
	r, _ := b.Acquire(context.Background(), 5.5)
	if r.Reserved < 10.5 || r.Expected != 5.5 {
		t.Fatalf("reservation %+v, want 11 RU for a 5.5 RU model", r)
	}
}

// send is one request an RU cap let out: when, and what it was charged.
type send struct {
	at time.Time
	ru float64
}

// worstSecond is the most request units charged within any one second of
// sends, each charged when it was sent.
func worstSecond(sends []send) float64 {
	sort.Slice(sends, func(i, j int) bool { return sends[i].at.Before(sends[j].at) })
	worst, sum, lo := 0.0, 0.0, 0
	for _, s := range sends {
		sum += s.ru
		for s.at.Sub(sends[lo].at) >= time.Second {
			sum -= sends[lo].ru
			lo++
		}
		worst = max(worst, sum)
	}
	return worst
}

// capLoad runs workers that each send requests through b until stop:
// acquire with the expected charge, latency, settle with the charge times
// misjudged. It returns the sends.
func capLoad(b *RUCap, workers int, expected func(i int) float64, misjudged float64, latency time.Duration, stop <-chan struct{}) []send {
	var mu sync.Mutex
	var sends []send
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; ; i += workers {
				select {
				case <-stop:
					return
				default:
				}
				r, err := b.Acquire(context.Background(), expected(i))
				if err != nil {
					return
				}
				actual := expected(i) * misjudged
				mu.Lock()
				sends = append(sends, send{at: time.Now(), ru: actual})
				mu.Unlock()
				time.Sleep(latency)
				b.Settle(r, actual)
			}
		})
	}
	wg.Wait()
	return sends
}

// TestRUCapHoldsEverySecondFromTheFirst: many requests at once, the first
// ones included, never spend more than 1.1 times the cap in any second,
// whether the cost model is right or the requests cost a third more than
// it says, for single writes and for bulk requests sized to the cap's
// RequestLimit. Time is synctest's.
func TestRUCapHoldsEverySecondFromTheFirst(t *testing.T) {
	for _, tc := range []struct {
		name      string
		cap       float64
		expected  func(i int) float64
		misjudged float64
	}{
		{"single creates", 1000, func(int) float64 { return 5.5 }, 1},
		{"single creates costing a third more", 1000, func(int) float64 { return 5.5 }, 1.33},
		{"bulk requests at the request limit", 10_000, func(int) float64 { return 5.5 * 45 }, 1},
		{"mixed sizes costing a third less", 5000, func(i int) float64 { return []float64{5.5, 11, 55, 125}[i%4] }, 0.67},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := NewRUCap(tc.cap, nil)
				stop := make(chan struct{})
				time.AfterFunc(5*time.Second, func() { close(stop) })
				sends := capLoad(b, 64, tc.expected, tc.misjudged, 40*time.Millisecond, stop)
				if len(sends) == 0 {
					t.Fatal("nothing was sent")
				}
				first := 0.0
				for _, s := range sends {
					if s.at.Sub(sends[0].at) < time.Second {
						first += s.ru
					}
				}
				if worst := worstSecond(sends); worst > 1.1*tc.cap || first > 1.1*tc.cap {
					t.Fatalf("worst second %.0f RU, first second %.0f RU, under a cap of %.0f", worst, first, tc.cap)
				}
				total := 0.0
				for _, s := range sends {
					total += s.ru
				}
				if rate := total / 5; rate < 0.85*tc.cap {
					t.Fatalf("spent %.0f RU/s under a cap of %.0f: the cap held the requests back too far", rate, tc.cap)
				}
			})
		})
	}
}

// TestRUCapChangeReachesWaitingRequests: a cap lowered to almost nothing
// holds the requests back; when it is raised again (or removed), the
// requests already waiting go at the new cap at once instead of sleeping
// out the wait the old cap gave them.
func TestRUCapChangeReachesWaitingRequests(t *testing.T) {
	for _, restore := range []float64{0, 2000} {
		synctest.Test(t, func(t *testing.T) {
			b := NewRUCap(2000, nil)
			stop := make(chan struct{})
			var sends []send
			done := make(chan struct{})
			go func() {
				sends = capLoad(b, 32, func(int) float64 { return 55 }, 1, 10*time.Millisecond, stop)
				close(done)
			}()
			time.Sleep(time.Second)
			b.SetLimit(0.01) // the control file's {"maxRU": 0.01}
			time.Sleep(2 * time.Second)
			b.SetLimit(restore)
			restored := time.Now()
			time.Sleep(2 * time.Second)
			close(stop)
			<-done
			after := 0.0
			var firstAfter time.Time
			for _, s := range sends {
				if !s.at.Before(restored) {
					after += s.ru
					if firstAfter.IsZero() || s.at.Before(firstAfter) {
						firstAfter = s.at
					}
				}
			}
			if firstAfter.IsZero() || firstAfter.Sub(restored) > 50*time.Millisecond {
				t.Fatalf("restore to %v: the first request after it went %v later", restore, firstAfter.Sub(restored))
			}
			if restore > 0 && after/2 < 0.85*restore {
				t.Fatalf("restore to %v: %.0f RU/s spent after it", restore, after/2)
			}
		})
	}
}

func repeat(v float64, n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = v
	}
	return out
}
