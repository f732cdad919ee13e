package pacing

import (
	"container/list"
	"context"
	"sync"
)

// gate is a counting semaphore whose limit can change while it is in use:
// the in-flight limit of a target partition, which the congestion controller
// moves, and the run's --max-concurrency, which the control file moves.
// Waiters are served first in, first out, and a release hands its slot to
// one waiter only, so hundreds of blocked writers cost nothing while they
// wait (golang.org/x/sync/semaphore cannot be resized).
type gate struct {
	mu      sync.Mutex
	limit   int
	used    int
	waiters list.List // of chan struct{}, closed when the slot is granted
}

func newGate(limit int) *gate {
	return &gate{limit: max(limit, 1)}
}

// acquire takes a slot, waiting until one is free or ctx ends.
func (g *gate) acquire(ctx context.Context) error {
	g.mu.Lock()
	if g.used < g.limit && g.waiters.Len() == 0 {
		g.used++
		g.mu.Unlock()
		return nil
	}
	ready := make(chan struct{})
	elem := g.waiters.PushBack(ready)
	g.mu.Unlock()
	select {
	case <-ready:
		return nil
	case <-ctx.Done():
		g.mu.Lock()
		select {
		case <-ready:
			// Granted while giving up: hand the slot on.
			g.used--
			g.grant()
		default:
			g.waiters.Remove(elem)
		}
		g.mu.Unlock()
		return ctx.Err()
	}
}

// release returns a slot taken by acquire.
func (g *gate) release() {
	g.mu.Lock()
	g.used--
	g.grant()
	g.mu.Unlock()
}

// setLimit changes the limit. A lower limit takes effect as slots are
// released; a higher one wakes waiters at once.
func (g *gate) setLimit(n int) {
	g.mu.Lock()
	g.limit = max(n, 1)
	g.grant()
	g.mu.Unlock()
}

// state reports the slots in use, the limit and the waiters.
func (g *gate) state() (used, limit, waiting int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.used, g.limit, g.waiters.Len()
}

// grant hands free slots to waiters in order; g.mu must be held.
func (g *gate) grant() {
	for g.used < g.limit && g.waiters.Len() > 0 {
		front := g.waiters.Front()
		g.waiters.Remove(front)
		g.used++
		close(front.Value.(chan struct{}))
	}
}
