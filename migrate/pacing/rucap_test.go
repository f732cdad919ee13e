package pacing

import (
	"context"
	"testing"
	"time"

	"github.com/rekey-dev/rekey/migrate/migratetest"
)

// spend runs requests of the given charges through b one after another on
// the fake clock, each taking latency, and returns the RU/s spent.
func spend(t *testing.T, b *RUCap, clk *migratetest.Clock, charges []float64, latency time.Duration) float64 {
	t.Helper()
	start := clk.Now()
	total := 0.0
	for _, ru := range charges {
		reserved, err := b.Acquire(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		clk.Advance(latency)
		b.Settle(reserved, ru)
		total += ru
	}
	return total / clk.Now().Sub(start).Seconds()
}

func TestRUCapKeepsWithinTheCap(t *testing.T) {
	mixed := make([]float64, 0, 3000)
	for i := range 3000 {
		switch {
		case i%50 == 0:
			mixed = append(mixed, 550) // a batch of 100
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
			if got > tc.cap*1.05 || got < tc.cap*0.9 {
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
	if got := spend(t, b, clk, repeat(5.5, 2000), time.Millisecond); got > 2100 || got < 1800 {
		t.Fatalf("after SetLimit(2000): %.0f RU/s", got)
	}
	b.SetLimit(500)
	if got := spend(t, b, clk, repeat(5.5, 500), time.Millisecond); got > 525 || got < 450 {
		t.Fatalf("after SetLimit(500): %.0f RU/s", got)
	}
	if b.Limit() != 500 {
		t.Fatalf("Limit %v", b.Limit())
	}
	b.SetLimit(0)
	if got := spend(t, b, clk, repeat(5.5, 100), time.Millisecond); got < 5000 {
		t.Fatalf("an uncapped RU cap held requests back: %.0f RU/s", got)
	}
	var none *RUCap
	if r, err := none.Acquire(context.Background()); err != nil || r != 0 {
		t.Fatal("a nil RU cap is unlimited")
	}
	none.Settle(0, 5)
}

func TestRUCapGivesBackCancelledReservations(t *testing.T) {
	clk := &migratetest.Clock{}
	b := NewRUCap(1000, clk)
	spend(t, b, clk, repeat(5.5, 200), 0) // spend the burst, learn the charge
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for range 100 {
		if _, err := b.Acquire(ctx); err == nil {
			t.Fatal("acquire with a cancelled context succeeded")
		}
	}
	// The cancelled reservations are credited: the next requests flow at
	// the cap, not behind 100 phantom ones.
	if got := spend(t, b, clk, repeat(5.5, 400), 0); got < 900 {
		t.Fatalf("after cancelled waits: %.0f RU/s under a cap of 1000", got)
	}
}

func repeat(v float64, n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = v
	}
	return out
}
