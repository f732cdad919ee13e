package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/migrate"
)

// page is a change-feed page on its way from a range's reader to its
// applier, holding its share of the bytes in flight (RunConfig.MaxInFlightMB).
type page struct {
	migrate.ChangePage
	bytes int64
}

// rangeLoop migrates the feed range of one held lease: a reader fetches
// pages ahead (one at most) while the applier writes the previous one and
// checkpoints it. Pages are applied strictly in order, so two versions of an
// item are never written concurrently. A heartbeat renews the lease
// whatever the pages do; when the hold is lost, reading and writing stop at
// once and nothing more is checkpointed.
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

	pages := make(chan page, 1)
	readErr := make(chan error, 1)
	go func() {
		defer close(pages)
		readErr <- run.readRange(readCtx, h.Lease(), pages)
	}()
	err := run.applyPages(readCtx, writeCtx, h, pages, log)
	stopReading()
	drain(pages, run)
	if rerr := <-readErr; err == nil && rerr != nil && running.Err() == nil {
		err = rerr
	}
	if lost := h.Err(); lost != nil {
		return fmt.Errorf("feed range %s: %w: %w", id, ErrStopped, lost)
	}
	run.release(h)
	if err != nil {
		return fmt.Errorf("feed range %s: %w", id, err)
	}
	return nil
}

// applyPages applies the pages of one range in order until they end, the
// write context ends (the page in hand is abandoned), a page fails, or
// another worker asked for the lease (handed over after the checkpoint).
func (run *run) applyPages(readCtx, writeCtx context.Context, h *lease.Hold, pages <-chan page, log *slog.Logger) error {
	caughtUp, behind := false, true
	for p := range pages {
		if len(p.Items) == 0 {
			run.releaseBytes(p.bytes)
			if behind {
				// Record reaching the end of the feed: status reports it,
				// and a resume starts after everything seen.
				behind = false
				now := run.clock.Now().UTC()
				if err := run.checkpoint(writeCtx, h, func(l *lease.Lease) { l.CaughtUpAt, l.Continuation = now, p.Continuation }); err != nil {
					return err
				}
				log.Debug("range caught up")
			}
			if !caughtUp {
				caughtUp = true
				run.markCaughtUp(true)
			}
		} else {
			behind = true
			err := run.apply(writeCtx, h, p)
			run.releaseBytes(p.bytes)
			switch {
			case err == nil:
			case writeCtx.Err() != nil && h.Err() == nil:
				log.Warn("shutdown timeout: abandoned a page; it will be read again on resume")
				return nil
			default:
				return err
			}
		}
		if to := h.HandoffRequested(); to != "" && readCtx.Err() == nil {
			log.Info("handing the lease over to the worker that asked for it", "to", to)
			return nil
		}
	}
	return nil
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
	}
}

// readRange feeds pages of the range's change feed into out until ctx ends.
func (run *run) readRange(ctx context.Context, l lease.Lease, out chan<- page) error {
	req := migrate.ChangeRequest{
		Range:        migrate.FeedRangeOf(l.Range),
		Continuation: l.Continuation,
		PageSize:     run.cfg.PageSize,
	}
	if req.Continuation == "" {
		req.StartFrom = run.startFrom
	}
	for ctx.Err() == nil {
		var cp migrate.ChangePage
		err := run.retry.Do(ctx, func() error {
			reserved, err := run.sourceCap.Acquire(ctx)
			if err != nil {
				return err
			}
			cp, err = run.source.ReadChanges(ctx, req)
			ru := cp.RU
			if err != nil {
				ru = migrate.ErrorRU(err)
			}
			run.sourceCap.Settle(reserved, ru)
			return err
		})
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("read change feed: %w", err)
		}
		run.stats.sourceRU.add(cp.RU)
		run.stats.read.Add(int64(len(cp.Items)))
		n := int64(0)
		for _, it := range cp.Items {
			n += int64(len(it))
		}
		n = min(max(n, 1), int64(run.cfg.MaxInFlightMB)<<20)
		if err := run.inFlight.Acquire(ctx, n); err != nil {
			return nil
		}
		run.stats.inFlightBytes.Add(n)
		select {
		case out <- page{ChangePage: cp, bytes: n}:
		case <-ctx.Done():
			run.releaseBytes(n)
			return nil
		}
		req.Continuation, req.StartFrom = cp.Continuation, time.Time{}
		if len(cp.Items) == 0 {
			if err := run.clock.Sleep(ctx, run.cfg.PollInterval); err != nil {
				return nil
			}
		}
	}
	return nil
}

// apply transforms and writes one page behind the hold's fence (or hands
// it to the Runner's Applier), then checkpoints the lease.
func (run *run) apply(ctx context.Context, h *lease.Hold, p page) error {
	changes := make([]Change, 0, len(p.Items))
	var newest int64
	for _, item := range p.Items {
		if ts := migrate.LastTS(item); ts > newest {
			newest = ts
		}
		if run.applier != nil {
			continue
		}
		res, err := run.tr.Apply(item)
		if err != nil {
			if err := run.w.deadLetterTransform(item, err); err != nil {
				return err
			}
			continue
		}
		changes = append(changes, Change{Result: res, Source: item})
	}
	var ru float64
	var err error
	if run.applier != nil {
		ru, err = run.applier.ApplyPage(ctx, p.Items, h.Fence)
		run.stats.appliedRU.add(ru)
	} else {
		ru, err = run.w.writePage(ctx, changes, h.Fence)
	}
	if err != nil {
		return err
	}
	if err := run.dead.Sync(); err != nil {
		return err
	}
	now := run.clock.Now().UTC()
	err = run.checkpoint(ctx, h, func(l *lease.Lease) {
		l.Continuation = p.Continuation
		l.Items += int64(len(p.Items))
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
