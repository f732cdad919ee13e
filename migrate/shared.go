package migrate

import (
	"context"
	"time"

	"github.com/rekey-dev/rekey/lease"
)

// leaser is this run's view of the leases it shares with other workers.
func (r *Runner) leaser(cfg RunConfig) lease.Leaser {
	return lease.Leaser{Store: r.Store, Owner: cfg.Owner, TTL: cfg.LeaseTTL, Now: r.Clock.Now}
}

// balance runs while a shared run works: every quarter of the lease TTL it
// takes the leases it is due (free ones, those of workers that died, a share
// of a busier worker's when one joined) and starts working on them; with
// UntilCaughtUp it stops reading once every lease of every worker is caught
// up.
func (run *run) balance(ctx context.Context, start func(lease.Lease)) error {
	lr := run.leaser(run.cfg)
	every := max(run.cfg.LeaseTTL/4, 10*time.Millisecond)
	for {
		if err := run.Clock.Sleep(ctx, every); err != nil {
			return nil
		}
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
			start(l)
		}
		if run.cfg.UntilCaughtUp && run.everyLeaseCaughtUp(ctx) {
			run.allCaughtUp.Store(true)
			run.Log.Info("every range of every worker has caught up")
			run.allDone()
			return nil
		}
	}
}

// everyLeaseCaughtUp reports whether every lease is owned by a live worker
// and at the end of its feed: caught up since its last checkpoint.
func (run *run) everyLeaseCaughtUp(ctx context.Context) bool {
	leases, err := run.Store.List(ctx)
	if err != nil || len(leases) == 0 {
		return false
	}
	now := run.Clock.Now()
	for _, l := range leases {
		if l.Expired(now, run.cfg.LeaseTTL) || l.CaughtUpAt.IsZero() || l.CaughtUpAt.Before(l.CheckpointedAt) {
			return false
		}
	}
	return true
}

// releaseLeases frees this worker's leases when it stops, so others take
// them over at once instead of after the TTL.
func (run *run) releaseLeases(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	leases, err := run.Store.List(ctx)
	if err != nil {
		run.Log.Warn("could not release leases; they expire after the TTL", "err", err)
		return
	}
	lr := run.leaser(run.cfg)
	for _, l := range leases {
		if l.Owner != run.cfg.Owner {
			continue
		}
		if _, err := lr.Release(ctx, l); err != nil {
			run.Log.Warn("could not release a lease; it expires after the TTL", "range", l.ID, "err", err)
		}
	}
}
