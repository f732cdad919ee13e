package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/migrate"
)

// page is a change-feed page on its way from a range's reader to its
// applier, holding its share of the bytes in flight (RunConfig.MaxInFlightMB):
// items of the latest-version feed or changes of the all-versions feed.
type page struct {
	items        [][]byte                // latest-version feed
	changes      []migrate.VersionChange // all-versions feed
	continuation string
	bytes        int64
	// readAt is when the read of the page was sent: an empty page says
	// the range was at the end of its feed then.
	readAt time.Time
}

func (p *page) empty() bool { return len(p.items) == 0 && len(p.changes) == 0 }

// rangeLoop migrates the feed range of one held lease. It follows the
// feed the lease's mode names (followFeed) and, when the range changes
// feed (its copy caught up and it switches to the all-versions feed, or
// its all-versions position left the retention window and it falls back),
// follows the next one. A heartbeat renews the lease whatever the pages
// do; when the hold is lost, reading and writing stop at once and nothing
// more is checkpointed; a hold the heartbeat could not renew within the
// TTL is lost when it expires, before another worker may take the lease
// over, even while the lease store cannot be reached.
//
// It returns nil when reading stopped (readCtx) and the page in hand was
// written and checkpointed or abandoned (writeCtx), and when it handed the
// lease over to a worker that asked for it; an error wrapping ErrStopped
// when the hold was lost; any other error when the range must stop the run.
// On the way out it releases the lease unless the hold was lost.
func (run *run) rangeLoop(readCtx, writeCtx context.Context, h *lease.Hold) error {
	id := h.Lease().ID
	log := run.log.With("range", id)
	running := readCtx // the run's: ended by a shutdown, not by this range
	readCtx, stopReading := context.WithCancel(readCtx)
	defer stopReading()
	writeCtx, stopWriting := context.WithCancel(writeCtx)
	defer stopWriting()
	go func() {
		select {
		case <-h.Lost(): // fenced: abandon what is in flight
			stopReading()
			stopWriting()
		case <-writeCtx.Done():
		}
	}()
	go run.heartbeat(writeCtx, h)
	go run.expire(writeCtx, h)

	err := run.prepareFeed(readCtx, writeCtx, h, log)
	caughtUp := false // told to the run once, whatever feeds the range follows
	for err == nil && readCtx.Err() == nil {
		var again bool
		again, err = run.followFeed(readCtx, writeCtx, h, log, &caughtUp)
		if !again {
			break
		}
	}
	if running.Err() != nil && h.Err() == nil && errors.Is(err, context.Canceled) {
		err = nil // stopped while preparing or switching: nothing half done
	}
	if lost := h.Err(); lost != nil {
		// Writes sent within its fence may be unanswered: should the lease
		// still name this worker at the end, its release says so.
		sent := h.WritableUntil()
		if now := run.clock.Now(); now.Before(sent) {
			sent = now
		}
		run.noteUnanswered(id, sent)
		return fmt.Errorf("feed range %s: %w: %w", id, ErrStopped, lost)
	}
	// A page abandoned at the shutdown timeout, or a range stopped by an
	// error, may leave writes sent without an answer, which may still
	// take effect: the lease says so, for a cutover to wait for them.
	var unanswered time.Time
	if err != nil || writeCtx.Err() != nil {
		unanswered = run.clock.Now()
	}
	if err != nil {
		// Stop the other ranges before the release, which may take its
		// whole timeout against a throttled lease store: their shutdown
		// timeout runs meanwhile, within the run's bound.
		run.stopReading()
	}
	run.release(h, unanswered)
	if err != nil {
		return fmt.Errorf("feed range %s: %w", id, err)
	}
	return nil
}

// followFeed reads the feed the lease's mode names and applies its pages
// in order, a reader fetching one page ahead while the applier writes the
// previous one and checkpoints it, until reading stops, a page fails, the
// lease is handed over, or the range changes feed: then again is true and
// the lease names the next feed. *caughtUp is set once the range has
// caught up, which is told to the run the first time.
func (run *run) followFeed(readCtx, writeCtx context.Context, h *lease.Hold, log *slog.Logger, caughtUp *bool) (again bool, err error) {
	feedCtx, stopFeed := context.WithCancel(readCtx)
	defer stopFeed()
	l := h.Lease()
	pages := make(chan page, 1)
	readErr := make(chan error, 1)
	go func() {
		defer close(pages)
		var err error
		if l.ReadsAllVersions() {
			err = run.readPages(feedCtx, pages, run.versionPages(l))
		} else {
			err = run.readPages(feedCtx, pages, run.latestPages(l))
		}
		if err != nil && !run.changesFeed(err) {
			// The range must stop the run: stop it now, so that the
			// page in hand gets the shutdown timeout, not as long as
			// its writes take.
			run.stopReading()
		}
		readErr <- err
	}()
	again, err = run.applyPages(feedCtx, writeCtx, h, pages, log, caughtUp)
	stopFeed()
	drain(pages, run)
	rerr := <-readErr
	switch {
	case err != nil || again:
	case errors.Is(rerr, migrate.ErrOutOfRetention) && readCtx.Err() == nil:
		return true, run.fallBack(writeCtx, h, log, rerr)
	case errors.Is(rerr, migrate.ErrAllVersionsNotEnabled) && run.changesFeed(rerr) && readCtx.Err() == nil:
		return true, run.leaveVersions(writeCtx, h, log, "the source stopped keeping an all-versions change feed", "")
	case rerr != nil && !run.changesFeed(rerr):
		err = rerr // the reader stopped the run (and its own page) on it
	}
	return again, err
}

// changesFeed says whether a read error of the feed moves the range to
// the latest-version feed (followFeed) rather than stopping the run: its
// all-versions position left the retention window, or in auto mode the
// source stopped keeping the all-versions feed.
func (run *run) changesFeed(err error) bool {
	return errors.Is(err, migrate.ErrOutOfRetention) ||
		errors.Is(err, migrate.ErrAllVersionsNotEnabled) && run.cfg.Mode == ModeAuto
}

// applyPages applies the pages of one feed in order until they end, the
// write context ends (the page in hand is abandoned), a page fails,
// another worker asked for the lease (handed over after the checkpoint),
// or the range switched feeds (again).
func (run *run) applyPages(readCtx, writeCtx context.Context, h *lease.Hold, pages <-chan page, log *slog.Logger, caughtUp *bool) (again bool, err error) {
	behind := true
	var marked time.Time // the CaughtUpAt last recorded
	for p := range pages {
		if p.empty() {
			run.releaseBytes(p.bytes)
			if run.switchDue(h.Lease()) {
				return true, run.switchToVersions(writeCtx, h, p.continuation, log)
			}
			if behind || run.cfg.Shared && p.readAt.Sub(marked) >= run.cfg.LeaseTTL/renewEvery || run.quietCheckpointDue(h.Lease(), p.continuation) {
				// Record reaching the end of the feed, as of when the read
				// was sent: status reports it, a resume starts after
				// everything seen, and shared workers waiting for every
				// range to catch up after they started see it. While the
				// range stays at the end, a shared run records it again at
				// the heartbeat's pace.
				behind = false
				at := p.readAt.UTC()
				if err := run.checkpoint(writeCtx, h, func(l *lease.Lease) { l.CaughtUpAt, l.Continuation = at, p.continuation }); err != nil {
					return false, err
				}
				marked = p.readAt
				log.Debug("range caught up")
			}
			if !*caughtUp {
				*caughtUp = true
				run.markCaughtUp(true)
			}
		} else {
			behind = true
			var err error
			if len(p.changes) > 0 {
				err = run.applyVersions(writeCtx, h, p)
			} else {
				err = run.apply(writeCtx, h, p)
			}
			run.releaseBytes(p.bytes)
			run.pages.Add(-1)
			switch {
			case err == nil:
			case writeCtx.Err() != nil && h.Err() == nil:
				log.Warn("stopped writing before the page was done: abandoned a page; it is read again on resume")
				return false, nil
			default:
				return false, err
			}
		}
		if to := h.HandoffRequested(); to != "" && readCtx.Err() == nil {
			log.Info("handing the lease over to the worker that asked for it", "to", to)
			return false, nil
		}
	}
	return false, nil
}

// releaseBytes gives back a page's share of the bytes in flight.
func (run *run) releaseBytes(n int64) {
	run.stats.inFlightBytes.Add(-n)
	run.inFlight.Release(n)
}

// drain releases the bytes in flight of pages nobody will apply.
func drain(pages <-chan page, run *run) {
	for p := range pages {
		run.releaseBytes(p.bytes)
		if !p.empty() {
			run.pages.Add(-1)
		}
	}
}

// readPages feeds the pages next reads into out until ctx ends, next
// fails, or out is abandoned. Every read goes under the source's RU cap
// and the retry policy, asking for as many changes as the cap lets one
// request cost (sourcePages); an empty page (the end of the feed for now)
// is followed by a poll interval's wait.
func (run *run) readPages(ctx context.Context, out chan<- page, next func(ctx context.Context, pageSize int) (page, float64, error)) error {
	for ctx.Err() == nil {
		var p page
		var sent time.Time
		size := run.sourcePages.size(run.cfg.PageSize, run.sourceCap.RequestLimit())
		err := run.retry.Do(ctx, func() error {
			res, err := run.sourceCap.Acquire(ctx, run.sourcePages.expected(size))
			if err != nil {
				return err
			}
			var ru float64
			sent = run.clock.Now()
			p, ru, err = next(ctx, size)
			if err != nil {
				ru = migrate.ErrorRU(err)
			}
			run.sourceCap.Settle(res, ru)
			run.stats.sourceRU.add(ru)
			return err
		})
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		p.readAt = sent
		n := int64(len(p.items) + len(p.changes))
		run.stats.read.Add(n)
		run.sourcePages.observe(n, p.bytes)
		p.bytes = min(max(p.bytes, 1), int64(run.cfg.MaxInFlightMB)<<20)
		if err := run.inFlight.Acquire(ctx, p.bytes); err != nil {
			return nil
		}
		run.stats.inFlightBytes.Add(p.bytes)
		if !p.empty() {
			run.pages.Add(1)
		}
		select {
		case out <- p:
		case <-ctx.Done():
			run.releaseBytes(p.bytes)
			if !p.empty() {
				run.pages.Add(-1)
			}
			return nil
		}
		if p.empty() {
			if err := run.clock.Sleep(ctx, run.cfg.PollInterval); err != nil {
				return nil
			}
		}
	}
	return nil
}

// latestPages reads the lease's range of the latest-version change feed,
// one page a call, from its checkpoint. The migration's start goes with
// every request: it applies to the partitions of the range the
// continuation has not read yet.
func (run *run) latestPages(l lease.Lease) func(ctx context.Context, pageSize int) (page, float64, error) {
	req := migrate.ChangeRequest{
		Range:        migrate.FeedRangeOf(l.Range),
		Continuation: l.Continuation,
		PageSize:     run.cfg.PageSize,
		StartFrom:    run.startFrom,
	}
	return func(ctx context.Context, pageSize int) (page, float64, error) {
		req.PageSize = pageSize
		cp, err := run.source.ReadChanges(ctx, req)
		if err != nil {
			return page{}, cp.RU, fmt.Errorf("read change feed: %w", err)
		}
		req.Continuation = cp.Continuation
		p := page{items: cp.Items, continuation: cp.Continuation}
		for _, it := range cp.Items {
			p.bytes += int64(len(it))
		}
		return p, cp.RU, nil
	}
}

// apply transforms and writes one page of the latest-version feed behind
// the hold's fence (or hands it to the Runner's Applier), then checkpoints
// the lease.
func (run *run) apply(ctx context.Context, h *lease.Hold, p page) error {
	defer run.observe(h)()
	changes := make([]Change, 0, len(p.items))
	var newest int64
	for _, item := range p.items {
		if ts := migrate.LastTS(item); ts > newest {
			newest = ts
		}
		if run.applier != nil {
			continue
		}
		res, err := run.tr.Apply(item)
		if err != nil {
			if err := run.w.DeadLetterUntransformable(item, err); err != nil {
				return err
			}
			continue
		}
		changes = append(changes, Change{Result: res, Source: item})
	}
	var ru float64
	var err error
	if run.applier != nil {
		ru, err = run.applier.ApplyPage(ctx, p.items, h.Fence)
		run.stats.appliedRU.add(ru)
	} else {
		ru, err = run.w.writePage(ctx, changes, h.Fence)
	}
	if err != nil {
		return err
	}
	return run.checkpointPage(ctx, h, p, len(p.items), ru, newest)
}

// observe tells the Observer, when set, that a page of the hold's range is
// being applied, and returns what tells it that nothing of the page will be
// written any more: call it after the checkpoint, or when the page is
// abandoned (an error, the shutdown timeout, a fence that refused because
// the hold was lost).
func (run *run) observe(h *lease.Hold) (applied func()) {
	obs := run.observer
	if obs == nil {
		return func() {}
	}
	l := h.Lease()
	r := migrate.FeedRangeOf(l.Range)
	obs.PageApplying(run.cfg.Owner, l.ID, r)
	return func() { obs.PageApplied(run.cfg.Owner, l.ID, r) }
}

// checkpointPage records in the lease that page p, of n changes, is
// durable: its dead letters are synced, then its continuation, counters
// and newest change time are written.
func (run *run) checkpointPage(ctx context.Context, h *lease.Hold, p page, n int, ru float64, newest int64) error {
	if err := run.dead.Sync(); err != nil {
		return err
	}
	now := run.clock.Now().UTC()
	err := run.checkpoint(ctx, h, func(l *lease.Lease) {
		l.Continuation = p.continuation
		l.Items += int64(n)
		l.RU += ru
		l.CheckpointedAt = now
		if newest > l.LastChangeTS {
			l.LastChangeTS = newest
		}
	})
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}
