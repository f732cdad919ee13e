package migrate

import (
	"context"

	"golang.org/x/sync/semaphore"
)

// Limiter bounds the writes in flight. Acquire blocks until a write under
// key may start (or ctx ends); the returned release must be called once the
// write's answer is in, saying whether it was throttled, so an adaptive
// limiter can back off.
type Limiter interface {
	Acquire(ctx context.Context, key Key) (release func(throttled bool), err error)
}

// fixedLimiter allows n writes in flight, whatever their key.
type fixedLimiter struct{ sem *semaphore.Weighted }

// NewFixedLimiter returns a Limiter of n concurrent writes.
func NewFixedLimiter(n int) Limiter {
	return fixedLimiter{sem: semaphore.NewWeighted(int64(n))}
}

func (l fixedLimiter) Acquire(ctx context.Context, _ Key) (func(bool), error) {
	if err := l.sem.Acquire(ctx, 1); err != nil {
		return nil, err
	}
	return func(bool) { l.sem.Release(1) }, nil
}
