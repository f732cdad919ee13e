package migrate

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// jitterClock is a Clock whose sleeps take no time and whose jitter is
// always the largest allowed.
type jitterClock struct {
	slept []time.Duration
	asked []int64
}

func (c *jitterClock) Now() time.Time { return time.Unix(1_700_000_000, 0) }

func (c *jitterClock) Sleep(ctx context.Context, d time.Duration) error {
	c.slept = append(c.slept, d)
	return ctx.Err()
}

func (c *jitterClock) Int64N(n int64) int64 {
	c.asked = append(c.asked, n)
	return n - 1
}

func TestRetryJitterComesFromAJitterClock(t *testing.T) {
	clock := &jitterClock{}
	r := &Retrier{Clock: clock, Tries: 2}
	errs := []error{
		&RequestError{Status: 429, RetryAfter: 100 * time.Millisecond},
		&RequestError{Status: 503},
		&RequestError{Status: 503},
		nil,
	}
	calls := 0
	err := r.Do(context.Background(), func() error {
		calls++
		return errs[calls-1]
	})
	if !errors.Is(err, ErrTransient) || calls != 3 {
		t.Fatalf("do = %v after %d calls; want the third failure, a transient one", err, calls)
	}
	// The 429 waits its retry-after plus the largest jitter (a tenth); the
	// transient retry waits the largest of its backoff.
	want := []time.Duration{110 * time.Millisecond, backoffBase}
	if !slices.Equal(clock.slept, want) {
		t.Fatalf("slept %v, want %v: jitter drawn from the clock", clock.slept, want)
	}
	if len(clock.asked) != 2 {
		t.Fatalf("jitter asked %d times, want 2", len(clock.asked))
	}
}
