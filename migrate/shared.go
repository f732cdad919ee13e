package migrate

import (
	"context"
	"time"

	"github.com/rekey-dev/rekey/lease"
)

// Lease timing, as shares of RunConfig.LeaseTTL. A worker's leases stay its
// own for a TTL after each write; it renews them every renewEvery, so a
// write may fail or be slow twice before the fence (half a TTL after the
// last renewal, see lease.Hold) holds its writes back, and balances every
// balanceEvery.
const (
	renewEvery   = 6 // TTL / renewEvery
	balanceEvery = 4 // TTL / balanceEvery
	// releaseTimeout bounds the release of a lease when a range stops, so
	// that a store that cannot be reached does not delay the exit.
	releaseTimeout = 2 * time.Second
)

// leaser is this run's view of the leases it shares with other workers.
func (r *Runner) leaser(cfg RunConfig) lease.Leaser {
	return lease.Leaser{Store: r.Store, Owner: cfg.Owner, TTL: cfg.LeaseTTL, Now: r.Clock.Now}
}

// leaseRange is the lease package's form of a feed range.
func (r FeedRange) leaseRange() lease.Range { return lease.Range{Min: r.Min, Max: r.Max} }

// LeaseRanges converts feed ranges to the lease package's ranges, as
// lease.Meta records them.
func LeaseRanges(frs []FeedRange) []lease.Range {
	out := make([]lease.Range, len(frs))
	for i, r := range frs {
		out[i] = r.leaseRange()
	}
	return out
}

// feedRangeOf is the feed range a lease covers.
func feedRangeOf(r lease.Range) FeedRange { return FeedRange{Min: r.Min, Max: r.Max} }

// balance runs while a shared run works: every quarter of the lease TTL it
// takes the leases it is due (free ones, those of workers that died, those
// handed over at its request, see lease.Leaser) and starts working on
// them; with UntilCaughtUp it stops reading once every lease of every
// worker is caught up.
func (run *run) balance(ctx context.Context, start func(*lease.Hold)) error {
	lr := run.leaser(run.cfg)
	every := max(run.cfg.LeaseTTL/balanceEvery, 10*time.Millisecond)
	for {
		if err := run.Clock.Sleep(ctx, every); err != nil {
			return nil
		}
		sent := run.Clock.Now()
		taken, err := lr.Acquire(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			run.Log.Warn("could not rebalance leases; will retry", "err", err)
			continue
		}
		for _, l := range taken {
			run.Log.Info("took over a lease", "range", l.ID)
			start(lr.Hold(l, sent))
		}
		if run.cfg.UntilCaughtUp && run.everyLeaseCaughtUp(ctx) {
			run.allCaughtUp.Store(true)
			run.Log.Info("every range of every worker has caught up")
			run.allDone()
			return nil
		}
	}
}

// everyLeaseCaughtUp reports whether every lease is at the end of its feed:
// caught up since its last checkpoint, whoever owns it (a lease released by
// a worker that caught up and stopped is caught up too).
func (run *run) everyLeaseCaughtUp(ctx context.Context) bool {
	leases, err := run.Store.List(ctx)
	if err != nil || len(leases) == 0 {
		return false
	}
	for _, l := range leases {
		if l.CaughtUpAt.IsZero() || l.CaughtUpAt.Before(l.CheckpointedAt) {
			return false
		}
	}
	return true
}

// heartbeat renews the hold every TTL/renewEvery until ctx ends, whatever
// the range's pages are doing. A throttled or transient failure is retried
// under the run's policy; one that outlasts it is retried at the next beat
// (the fence holds writes back meanwhile).
func (run *run) heartbeat(ctx context.Context, h *lease.Hold) {
	every := max(run.cfg.LeaseTTL/renewEvery, time.Millisecond)
	for {
		if err := run.Clock.Sleep(ctx, every); err != nil {
			return
		}
		if err := run.w.retry.do(ctx, func() error { return h.Renew(ctx) }); err != nil && ctx.Err() == nil && h.Err() == nil {
			run.Log.Warn("could not renew a lease; will retry", "range", h.Lease().ID, "err", err)
		}
	}
}

// release gives up the hold when its range stops, so another worker (or
// the one that asked for it) takes it at once instead of after the TTL.
func (run *run) release(h *lease.Hold) {
	ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
	defer cancel()
	if err := run.w.retry.do(ctx, func() error { return h.Release(ctx) }); err != nil {
		run.Log.Warn("could not release a lease; it expires after the TTL", "range", h.Lease().ID, "err", err)
	}
}

// checkpoint writes change into the held lease under the run's retry
// policy (a lease container throttles like any other); an error wrapping
// lease.ErrLeaseLost means the hold is lost.
func (run *run) checkpoint(ctx context.Context, h *lease.Hold, change func(*lease.Lease)) error {
	return run.w.retry.do(ctx, func() error {
		_, err := h.Write(ctx, change)
		return err
	})
}
