package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/migrate"
)

// Lease timing, as shares of RunConfig.LeaseTTL. A worker's leases stay its
// own for a TTL after each write; it renews them every renewEvery, so a
// write may fail or be slow twice before the fence (half a TTL after the
// last renewal, see lease.Hold) holds its writes back, and balances every
// balanceEvery.
const (
	renewEvery   = 6 // TTL / renewEvery
	balanceEvery = 4 // TTL / balanceEvery
)

// leaser is this run's view of the leases it shares with other workers.
func (run *run) leaser() lease.Leaser {
	return lease.Leaser{Store: run.store, Owner: run.cfg.Owner, TTL: run.cfg.LeaseTTL, Now: run.clock.Now}
}

// leases makes sure the leases cover the source and returns the holds this
// worker starts with: every lease (the file store's lock makes this
// process the only worker), or with Shared its fair share.
func (run *run) leases(ctx context.Context, meta lease.Meta) ([]*lease.Hold, error) {
	cfg := run.cfg
	if err := run.coverSource(ctx, meta); err != nil {
		return nil, err
	}
	lr := run.leaser()
	if cfg.Shared {
		taken, err := lr.Acquire(ctx)
		holds := make([]*lease.Hold, len(taken))
		for i, l := range taken {
			holds[i] = lr.Hold(l, l.Timestamp)
		}
		if err != nil {
			// Acquire may have taken some before it failed: give them
			// back rather than leave them owned and unworked for a TTL,
			// all at once, within one release's bound (ExitGrace).
			var wg sync.WaitGroup
			for _, h := range holds {
				wg.Go(func() { run.release(h, time.Time{}) })
			}
			wg.Wait()
			return nil, fmt.Errorf("take leases: %w", err)
		}
		run.log.Info("took leases", "owner", cfg.Owner, "leases", len(taken))
		return holds, nil
	}
	existing, err := run.store.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list leases: %w", err)
	}
	holds := make([]*lease.Hold, 0, len(existing))
	for _, l := range existing {
		sent := run.clock.Now()
		got, err := run.store.Update(ctx, l.TakenBy(cfg.Owner, cfg.LeaseTTL))
		if err != nil {
			return nil, fmt.Errorf("take lease %q (feed range [%s, %s)): %w", l.ID, l.Range.Min, l.Range.Max, err)
		}
		holds = append(holds, lr.Hold(got, sent))
	}
	return holds, nil
}

// coverSource creates the leases that are missing: on a first start, one
// per feed range of the migration; after a crash while they were created,
// those of the gaps left. Leases are cut from the feed ranges recorded in
// the migration's Meta (the source's current ones for a state that has
// none), so workers that do this at the same time create the same leases.
func (run *run) coverSource(ctx context.Context, meta lease.Meta) error {
	existing, err := run.store.List(ctx)
	if err != nil {
		return fmt.Errorf("list leases: %w", err)
	}
	gaps, err := lease.Gaps(existing)
	if err != nil || len(gaps) == 0 {
		return err
	}
	ranges := meta.Ranges
	if len(ranges) == 0 {
		current, err := run.source.FeedRanges(ctx)
		if err != nil {
			return fmt.Errorf("read the source's feed ranges: %w", err)
		}
		ranges = migrate.LeaseRanges(current)
	}
	created := 0
	for _, gap := range gaps {
		for _, rng := range lease.Clip(ranges, gap) {
			l := lease.Lease{ID: lease.TokenFor(rng), Range: rng}
			_, err := run.store.Create(ctx, l)
			switch {
			case errors.Is(err, lease.ErrLeaseExists): // another worker was first
			case err != nil:
				return fmt.Errorf("create lease for feed range [%s, %s): %w", rng.Min, rng.Max, err)
			default:
				created++
			}
		}
	}
	after, err := run.store.List(ctx)
	if err != nil {
		return fmt.Errorf("list leases: %w", err)
	}
	if gaps, err = lease.Gaps(after); err != nil {
		return err
	}
	if len(gaps) > 0 {
		return fmt.Errorf("%w: the feed ranges %v do not cover [%s, %s)", lease.ErrCorrupt, ranges, gaps[0].Min, gaps[0].Max)
	}
	if len(existing) > 0 {
		run.log.Warn("created the leases an interrupted start left out", "created", created, "leases", len(after))
	} else {
		run.log.Debug("created leases", "created", created, "leases", len(after))
	}
	return nil
}

// balance runs while a shared run works: every quarter of the lease TTL it
// takes the leases it is due (free ones, those of workers that died, those
// handed over at its request, see lease.Leaser) and starts working on
// them; with UntilCaughtUp it stops reading once every lease of every
// worker has caught up since this run started (everyLeaseCaughtUp).
func (run *run) balance(ctx context.Context, start func(*lease.Hold)) error {
	lr := run.leaser()
	every := max(run.cfg.LeaseTTL/balanceEvery, 10*time.Millisecond)
	for {
		if err := run.clock.Sleep(ctx, every); err != nil {
			return nil
		}
		if run.cutoverRequested(ctx) {
			run.stoppedForCutover.Store(true)
			run.log.Info("stopped for cutover: a cutover was requested; checkpointing and releasing every lease")
			run.stopReading()
			return nil
		}
		sent := run.clock.Now()
		taken, err := lr.Acquire(ctx)
		// What Acquire took before an error is this worker's now: work on
		// it, rather than leave it owned and unworked until it expires.
		for _, l := range taken {
			run.log.Info("took over a lease", "range", l.ID)
			start(lr.Hold(l, sent))
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			run.log.Warn("could not rebalance leases; will retry", "err", err)
			continue
		}
		if run.cfg.UntilCaughtUp && run.everyLeaseCaughtUp(ctx) {
			run.allCaughtUp.Store(true)
			run.log.Info("every range of every worker has caught up")
			run.stopReading()
			return nil
		}
	}
}

// refuseDuringCutover refuses a run once a cutover is recorded or while
// another worker's cutover is requested, after withdrawing a request whose
// cutover died (and its fences), so that workers resume after it.
func (run *run) refuseDuringCutover(ctx context.Context) error {
	if cleared, err := migrate.ClearAbandonedCutover(ctx, run.store, run.clock.Now()); err != nil {
		return err
	} else if cleared {
		run.log.Warn("withdrew the request of a cutover that stopped renewing it (it died); resuming")
	}
	return migrate.RefuseDuringCutover(ctx, run.store, "run", run.cfg.Owner, run.clock.Now())
}

// cutoverRequested reports whether a cutover is now requested or recorded
// by another owner; a state that cannot be read is logged, not a request.
func (run *run) cutoverRequested(ctx context.Context) bool {
	err := migrate.RefuseDuringCutover(ctx, run.store, "run", run.cfg.Owner, run.clock.Now())
	switch {
	case err == nil:
		return false
	case errors.Is(err, migrate.ErrCutoverInProgress), errors.Is(err, migrate.ErrCutOver):
		return true
	}
	if ctx.Err() == nil {
		run.log.Warn("could not read the state to look for a cutover request; will look again", "err", err)
	}
	return false
}

// everyLeaseCaughtUp reports whether every lease reached the end of its
// feed after this run started (its CaughtUpAt, when the read that found the
// end was sent, is not before run.began) and holds no page checkpointed
// since, whoever owns it: a lease released by a worker that caught up after
// this run started is caught up too. An older mark says nothing of the
// changes made since: such a lease is followed to its end first, by its
// owner (a live worker records the mark again while it stays at the end,
// see applyPages) or, when its worker is gone, by whoever balance gives it
// to once it is free. Marks written by other workers are read by this
// worker's clock: the workers' clocks must agree, as lease expiry already
// requires.
func (run *run) everyLeaseCaughtUp(ctx context.Context) bool {
	leases, err := run.store.List(ctx)
	if err != nil || len(leases) == 0 {
		return false
	}
	for _, l := range leases {
		if l.CaughtUpAt.IsZero() || l.CaughtUpAt.Before(run.began) || l.CaughtUpAt.Before(l.CheckpointedAt) {
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
		if err := run.clock.Sleep(ctx, every); err != nil {
			return
		}
		if err := run.retry.Do(ctx, func() error { return h.Renew(ctx) }); err != nil && ctx.Err() == nil && h.Err() == nil {
			run.log.Warn("could not renew a lease; will retry", "range", h.Lease().ID, "err", err)
		}
	}
}

// expire loses the hold at its expiry unless the heartbeat renewed it
// first (lease.Hold.Expire), until ctx ends or the hold is lost: a loop
// whose lease store throttles or fails every renewal and checkpoint stops
// working on the range by then, instead of holding its page open while it
// retries.
func (run *run) expire(ctx context.Context, h *lease.Hold) {
	for {
		if err := run.clock.Sleep(ctx, h.ExpiresAt().Sub(run.clock.Now())); err != nil {
			return
		}
		if h.Expire() {
			return
		}
	}
}

// release gives up the hold when its range stops, so another worker (or
// the one that asked for it) takes it at once instead of after the TTL.
func (run *run) release(h *lease.Hold, unanswered time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
	defer cancel()
	if err := run.retry.Do(ctx, func() error { return h.ReleaseUnanswered(ctx, unanswered) }); err != nil {
		run.log.Warn("could not release a lease; it expires after the TTL", "range", h.Lease().ID, "err", err)
		run.noteUnanswered(h.Lease().ID, unanswered)
	}
}

// noteUnanswered records that a write to lease id's range sent at (zero:
// none) got no answer and the lease does not say so yet; unansweredOf
// returns the latest such moment.
func (run *run) noteUnanswered(id string, at time.Time) {
	run.mu.Lock()
	defer run.mu.Unlock()
	if at.After(run.unanswered[id]) {
		run.unanswered[id] = at
	}
}

func (run *run) unansweredOf(id string) time.Time {
	run.mu.Lock()
	defer run.mu.Unlock()
	return run.unanswered[id]
}

// wrapUpLeases looks at the leases once more as the run ends, the last
// look it takes. In a shared run it gives up those that still name this
// worker although none of its loops works on them any more (a take whose
// answer the shutdown cut off may have landed all the same; a loop's own
// release may have failed, or its hold lapsed), which would keep the lease
// from the other workers for a TTL; each records the writes its loop left
// unanswered (noteUnanswered). It returns how many leases
// record a fallback, for the Summary (0 when they cannot be listed: rekey
// status reads them). ctx bounds it.
func (run *run) wrapUpLeases(ctx context.Context) (fallbacks int) {
	var leases []lease.Lease
	err := run.retry.Do(ctx, func() error {
		var err error
		leases, err = run.store.List(ctx)
		return err
	})
	if err != nil {
		if run.cfg.Shared {
			run.log.Warn("could not look for leases left in this worker's name; they expire after the TTL", "err", err)
		} else {
			run.log.Debug("could not list the leases for the summary", "err", err)
		}
		return 0
	}
	lr := run.leaser()
	for _, l := range leases {
		if l.Fallback != "" {
			fallbacks++
		}
		if !run.cfg.Shared || l.Owner != run.cfg.Owner {
			continue
		}
		// A loop that could not say so may have left writes unanswered:
		// the release records them, for a cutover to wait for them.
		if at := run.unansweredOf(l.ID); at.After(l.UnansweredAt) {
			l.UnansweredAt = at.UTC()
		}
		if _, err := lr.Release(ctx, l); err != nil && !errors.Is(err, lease.ErrLeaseLost) {
			run.log.Warn("could not release a lease left in this worker's name; it expires after the TTL", "range", l.ID, "err", err)
		}
	}
	return fallbacks
}

// checkpoint writes change into the held lease under the run's retry
// policy (a lease container throttles like any other); an error wrapping
// lease.ErrLeaseLost means the hold is lost.
func (run *run) checkpoint(ctx context.Context, h *lease.Hold, change func(*lease.Lease)) error {
	return run.retry.Do(ctx, func() error {
		_, err := h.Write(ctx, change)
		return err
	})
}
