package pacing

import (
	"context"

	"github.com/rekey-dev/rekey/migrate"
)

// RUCap caps the request units a run spends per second on one side: the
// target's writes (--max-ru) or the source's change-feed reads
// (--max-source-ru), for a migration that shares its containers with
// production. It is charged with each request's actual charge after the
// answer (debt allowed) and checked before each request, so over a run the
// spending stays within the cap plus a tenth of a second of it. A nil
// *RUCap, or one of 0 RU/s, is unlimited. It is safe for concurrent use;
// SetLimit changes the cap while requests flow.
type RUCap struct {
	p *pacer
}

// NewRUCap returns a cap of ruPerSec (0: unlimited) timed by clock (the
// real clock when nil).
func NewRUCap(ruPerSec float64, clock migrate.Clock) *RUCap {
	if clock == nil {
		clock = migrate.SystemClock{}
	}
	return &RUCap{p: newPacer(clock, ruPerSec)}
}

// SetLimit changes the cap; 0 makes it unlimited.
func (c *RUCap) SetLimit(ruPerSec float64) {
	if c != nil {
		c.p.setRate(ruPerSec)
	}
}

// Limit is the cap in RU/s, 0 when unlimited.
func (c *RUCap) Limit() float64 {
	if c == nil {
		return 0
	}
	return c.p.rate()
}

// Acquire waits until one more request fits the cap and returns the
// request units reserved for it, to be passed to Settle. It fails only when
// ctx ends.
func (c *RUCap) Acquire(ctx context.Context) (float64, error) {
	if err := ctx.Err(); c == nil || err != nil {
		return 0, err
	}
	reserved, delay := c.p.reserve()
	if delay > 0 {
		if err := c.p.clock.Sleep(ctx, delay); err != nil {
			c.p.settle(reserved, 0)
			return 0, err
		}
	}
	return reserved, nil
}

// Settle charges a request's actual cost against what Acquire reserved (0
// when the request was not sent).
func (c *RUCap) Settle(reserved, actual float64) {
	if c != nil {
		c.p.settle(reserved, actual)
	}
}

// Expected is the charge the next request is expected to cost: the
// average of the recent ones Settle was given.
func (c *RUCap) Expected() float64 {
	if c == nil {
		return 0
	}
	return c.p.expected()
}
