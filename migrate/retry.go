package migrate

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Clock is the time the pipeline waits by; tests replace it so that waits
// take no time.
type Clock interface {
	Now() time.Time
	// Sleep waits d or until ctx ends, returning ctx.Err() then.
	Sleep(ctx context.Context, d time.Duration) error
}

// Jitter is implemented by a Clock that also draws the retry policy's
// random waits, so that a run on a simulated clock with a seeded source
// (internal/sim) replays exactly. Int64N returns a number in [0, n). With
// any other Clock the waits come from math/rand/v2.
type Jitter interface {
	Int64N(n int64) int64
}

// SystemClock is the real clock.
type SystemClock struct{}

// Now returns the current time.
func (SystemClock) Now() time.Time { return time.Now() }

// Sleep waits d or until ctx ends.
func (SystemClock) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Backoff bounds for failures without a server-given wait.
const (
	backoffBase = 100 * time.Millisecond
	backoffMax  = 5 * time.Second
)

// retrier is the pipeline's one retry policy. A throttled request (429)
// waits the server's x-ms-retry-after-ms plus up to 10% jitter and is retried
// for as long as the context lives: throttling is the service working as
// provisioned, not a failure. A transient failure (408, 449, 503, a dropped
// connection) is retried with exponential backoff and full jitter, at most
// tries times, after which the error is returned and the run stops. Anything
// else is returned at once.
type retrier struct {
	clock      Clock
	tries      int
	onThrottle func(wait time.Duration) // observes every 429
	onRetry    func(err error)          // observes every transient retry
}

// do runs op until it succeeds or the policy gives up.
func (r *retrier) do(ctx context.Context, op func() error) error {
	transient := 0
	throttles := 0
	for {
		err := op()
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, ErrThrottled):
			wait := retryAfter(err)
			if wait <= 0 {
				wait = backoff(throttles)
			}
			throttles++
			wait += time.Duration(r.jitter(int64(wait)/10 + 1))
			if r.onThrottle != nil {
				r.onThrottle(wait)
			}
			if err := r.clock.Sleep(ctx, wait); err != nil {
				return err
			}
		case errors.Is(err, ErrTransient):
			transient++
			if transient >= r.tries {
				return fmt.Errorf("giving up after %d attempts: %w", transient, err)
			}
			if r.onRetry != nil {
				r.onRetry(err)
			}
			wait := time.Duration(r.jitter(int64(backoff(transient-1)) + 1))
			if err := r.clock.Sleep(ctx, wait); err != nil {
				return err
			}
		default:
			return err
		}
	}
}

// jitter returns a random number in [0, n): from the clock when it is a
// Jitter, else from math/rand/v2.
func (r *retrier) jitter(n int64) int64 {
	if j, ok := r.clock.(Jitter); ok {
		return j.Int64N(n)
	}
	return rand.Int64N(n)
}

// backoff is the exponential wait of attempt n (0-based), capped.
func backoff(n int) time.Duration {
	if n > 6 {
		return backoffMax
	}
	d := backoffBase << n
	if d > backoffMax {
		d = backoffMax
	}
	return d
}

// Retry runs op under the pipeline's retry policy with the real clock and
// the default number of transient tries: for the calls commands make
// outside a Runner (reading a container's definition, creating the target).
func Retry(ctx context.Context, op func() error) error {
	r := &retrier{clock: SystemClock{}, tries: DefaultTransientTries}
	return r.do(ctx, op)
}
