package migratetest

import (
	"context"
	"sync"
	"time"
)

// Clock is a migrate.Clock whose Sleep returns at once, moving its time on
// by the wait and recording it. Its time starts at 1,700,000,000 s. Safe
// for concurrent use.
type Clock struct {
	mu    sync.Mutex
	now   time.Time
	slept []time.Duration
}

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.now.IsZero() {
		c.now = time.Unix(1_700_000_000, 0)
	}
	return c.now
}

// Sleep moves the time on by d and records d; it returns ctx.Err().
func (c *Clock) Sleep(ctx context.Context, d time.Duration) error {
	now := c.Now()
	c.mu.Lock()
	c.slept = append(c.slept, d)
	c.now = now.Add(d)
	c.mu.Unlock()
	return ctx.Err()
}

// Advance moves the time on by d without recording a sleep: time spent
// elsewhere, such as a request's latency.
func (c *Clock) Advance(d time.Duration) {
	now := c.Now()
	c.mu.Lock()
	c.now = now.Add(d)
	c.mu.Unlock()
}

// Slept returns the waits so far, in order.
func (c *Clock) Slept() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.slept...)
}
