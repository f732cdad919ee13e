package migrate

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// DefaultTransientTries is how many attempts a transient failure gets
// before the policy gives up.
const DefaultTransientTries = 8

// Backoff bounds for failures without a server-given wait.
const (
	backoffBase = 100 * time.Millisecond
	backoffMax  = 5 * time.Second
)

// Retrier is the pipeline's one retry policy. A throttled request (429)
// waits the server's x-ms-retry-after-ms plus up to 10% jitter and is retried
// for as long as the context lives: throttling is the service working as
// provisioned, not a failure. A transient failure (408, 449, 503, a dropped
// connection) is retried with exponential backoff and full jitter, at most
// tries times, after which the error is returned and the run stops. Anything
// else is returned at once.
type Retrier struct {
	Clock Clock
	// Tries bounds the attempts of a transient failure
	// (DefaultTransientTries when 0).
	Tries      int
	OnThrottle func(wait time.Duration) // observes every 429; may be nil
	OnRetry    func(err error)          // observes every transient retry; may be nil
}

// Do runs op until it succeeds or the policy gives up. It returns ctx.Err()
// when ctx ends first.
func (r *Retrier) Do(ctx context.Context, op func() error) error {
	tries := r.Tries
	if tries <= 0 {
		tries = DefaultTransientTries
	}
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
			wait := RetryAfter(err)
			if wait <= 0 {
				wait = backoff(throttles)
			}
			throttles++
			wait += time.Duration(rand.Int64N(int64(wait)/10 + 1))
			if r.OnThrottle != nil {
				r.OnThrottle(wait)
			}
			if err := r.Clock.Sleep(ctx, wait); err != nil {
				return err
			}
		case errors.Is(err, ErrTransient):
			transient++
			if transient >= tries {
				return fmt.Errorf("giving up after %d attempts: %w", transient, err)
			}
			if r.OnRetry != nil {
				r.OnRetry(err)
			}
			wait := time.Duration(rand.Int64N(int64(backoff(transient-1)) + 1))
			if err := r.Clock.Sleep(ctx, wait); err != nil {
				return err
			}
		default:
			return err
		}
	}
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
	r := &Retrier{Clock: SystemClock{}, Tries: DefaultTransientTries}
	return r.Do(ctx, op)
}

// ReadFeedRanges lists a container's feed ranges under the retry policy r.
func ReadFeedRanges(ctx context.Context, c Partitioning, r *Retrier) ([]FeedRange, error) {
	var ranges []FeedRange
	if err := r.Do(ctx, func() error {
		var err error
		ranges, err = c.FeedRanges(ctx)
		return err
	}); err != nil {
		return nil, fmt.Errorf("feed ranges: %w", err)
	}
	return ranges, nil
}

// ReadPage reads one page of a change feed under the retry policy r.
func ReadPage(ctx context.Context, src Source, r *Retrier, req ChangeRequest) (ChangePage, error) {
	var page ChangePage
	err := r.Do(ctx, func() error {
		var err error
		page, err = src.ReadChanges(ctx, req)
		return err
	})
	if err != nil {
		return ChangePage{}, fmt.Errorf("read the change feed of range [%s, %s): %w", req.Range.Min, req.Range.Max, err)
	}
	return page, nil
}
