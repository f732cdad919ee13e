package migrate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/transform"
)

// page is a change-feed page on its way from a range's reader to its
// applier, holding its share of the in-flight byte budget.
type page struct {
	ChangePage
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
	log := run.Log.With("range", id)
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
			run.budget.Release(p.bytes)
			if behind {
				// Record reaching the end of the feed: status reports it,
				// and a resume starts after everything seen.
				behind = false
				now := run.Clock.Now().UTC()
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
			run.budget.Release(p.bytes)
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

// drain releases the budget of pages nobody will apply.
func drain(pages <-chan page, run *run) {
	for p := range pages {
		run.budget.Release(p.bytes)
	}
}

// readRange feeds pages of the range's change feed into out until ctx ends.
func (run *run) readRange(ctx context.Context, l lease.Lease, out chan<- page) error {
	req := ChangeRequest{
		Range:        feedRangeOf(l.Range),
		Continuation: l.Continuation,
		PageSize:     run.cfg.PageSize,
	}
	if req.Continuation == "" {
		req.StartFrom = run.startFrom
	}
	for ctx.Err() == nil {
		var cp ChangePage
		err := run.w.retry.do(ctx, func() error {
			reserved, err := run.SourceBudget.acquire(ctx)
			if err != nil {
				return err
			}
			cp, err = run.Source.ReadChanges(ctx, req)
			ru := cp.RU
			if err != nil {
				ru = errorRU(err)
			}
			run.SourceBudget.settle(reserved, ru)
			return err
		})
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("read change feed: %w", err)
		}
		run.Stats.sourceRU.add(cp.RU)
		run.Stats.read.Add(int64(len(cp.Items)))
		n := int64(0)
		for _, it := range cp.Items {
			n += int64(len(it))
		}
		n = min(max(n, 1), int64(run.cfg.MaxInFlightMB)<<20)
		if err := run.budget.Acquire(ctx, n); err != nil {
			return nil
		}
		select {
		case out <- page{ChangePage: cp, bytes: n}:
		case <-ctx.Done():
			run.budget.Release(n)
			return nil
		}
		req.Continuation, req.StartFrom = cp.Continuation, time.Time{}
		if len(cp.Items) == 0 {
			if err := run.Clock.Sleep(ctx, run.cfg.PollInterval); err != nil {
				return nil
			}
		}
	}
	return nil
}

// apply transforms and writes one page behind the hold's fence, then
// checkpoints the lease.
func (run *run) apply(ctx context.Context, h *lease.Hold, p page) error {
	changes := make([]change, 0, len(p.Items))
	var newest int64
	for _, item := range p.Items {
		if ts := lastTS(item); ts > newest {
			newest = ts
		}
		res, err := run.Transformer.Apply(item)
		if err != nil {
			if err := run.deadLetterTransform(item, err); err != nil {
				return err
			}
			continue
		}
		changes = append(changes, change{res: res, source: item})
	}
	ru, err := run.w.writePage(ctx, changes, h.Fence)
	if err != nil {
		return err
	}
	if err := run.DeadLetters.Sync(); err != nil {
		return err
	}
	now := run.Clock.Now().UTC()
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

// deadLetterTransform records an item the key spec cannot transform.
func (run *run) deadLetterTransform(item []byte, err error) error {
	var te *transform.Error
	if !errors.As(err, &te) {
		return fmt.Errorf("transform: %w", err)
	}
	id, key, kerr := run.Transformer.SourceKeyOf(item)
	if kerr != nil {
		id = te.ID
	}
	run.Stats.deadLettered.Add(1)
	return run.DeadLetters.Add(DeadLetter{
		Time: run.Clock.Now().UTC(), SourceID: id, SourceKey: keyJSON(key),
		Kind: te.Kind.Error(), Reason: te.Error(), Item: item,
	})
}

// lastTS reads the item's top-level "_ts", which the service writes last.
func lastTS(item []byte) int64 {
	i := bytes.LastIndex(item, []byte(`"_ts":`))
	if i < 0 {
		return 0
	}
	rest := item[i+len(`"_ts":`):]
	j := 0
	for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
		j++
	}
	ts, _ := strconv.ParseInt(string(rest[:j]), 10, 64)
	return ts
}
