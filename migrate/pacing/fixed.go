package pacing

import (
	"context"

	"github.com/rekey-dev/rekey/migrate"
)

// fixedLimiter allows n requests in flight, whatever their key.
type fixedLimiter struct{ g *gate }

// NewFixedLimiter returns a Limiter of n concurrent requests, adjustable
// with SetMaxConcurrency.
func NewFixedLimiter(n int) migrate.Limiter {
	return fixedLimiter{g: newGate(n)}
}

func (l fixedLimiter) Acquire(ctx context.Context, _ migrate.Key, _ float64) (func(migrate.Outcome), error) {
	if err := l.g.acquire(ctx); err != nil {
		return nil, err
	}
	return func(migrate.Outcome) { l.g.release() }, nil
}

// SetMaxConcurrency changes n; 0 leaves no bound.
func (l fixedLimiter) SetMaxConcurrency(n int) { l.g.setLimit(concurrencyBound(n)) }
