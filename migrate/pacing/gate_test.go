package pacing

import (
	"context"
	"testing"
	"time"
)

func TestGateIsFIFOAndResizable(t *testing.T) {
	g := newGate(1)
	ctx := context.Background()
	if err := g.acquire(ctx); err != nil {
		t.Fatal(err)
	}
	order := make(chan int, 3)
	for i := range 3 {
		go func() {
			if err := g.acquire(ctx); err == nil {
				order <- i
			}
		}()
		for _, _, w := g.state(); w != i+1; _, _, w = g.state() {
			time.Sleep(time.Millisecond)
		}
	}
	g.setLimit(3) // the first two waiters go at once
	if a, b := <-order, <-order; a+b != 1 {
		t.Fatalf("waiters served %d, %d; want 0 and 1", a, b)
	}
	g.setLimit(1)
	g.release()
	g.release()
	select {
	case i := <-order:
		t.Fatalf("waiter %d went out with 2 of 1 slots in use", i)
	case <-time.After(10 * time.Millisecond):
	}
	g.release()
	if i := <-order; i != 2 {
		t.Fatalf("last waiter %d", i)
	}
	// A cancelled waiter leaves the queue.
	short, cancel := context.WithTimeout(ctx, 5*time.Millisecond)
	defer cancel()
	if err := g.acquire(short); err == nil {
		t.Fatal("acquire on a full gate succeeded")
	}
	if used, limit, waiting := g.state(); used != 1 || limit != 1 || waiting != 0 {
		t.Fatalf("state %d/%d, %d waiting", used, limit, waiting)
	}
}
