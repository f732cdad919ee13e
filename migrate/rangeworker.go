package migrate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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

// rangeLoop migrates one lease's feed range: a reader fetches pages ahead
// (one at most) while the applier writes the previous one and checkpoints
// it. Pages are applied strictly in order, so two versions of an item are
// never written concurrently. It returns nil when reading stopped (readCtx)
// and the page in hand was written and checkpointed or abandoned (writeCtx).
func (run *run) rangeLoop(readCtx, writeCtx context.Context, l lease.Lease) error {
	log := run.Log.With("range", l.ID)
	pages := make(chan page, 1)
	readErr := make(chan error, 1)
	go func() {
		defer close(pages)
		readErr <- run.readRange(readCtx, l, pages)
	}()

	caughtUp, behind := false, true
	for p := range pages {
		var err error
		if len(p.Items) == 0 {
			run.budget.Release(p.bytes)
			if behind {
				// Record reaching the end of the feed: status reports it,
				// and a resume starts after everything seen.
				behind = false
				l.CaughtUpAt = run.Clock.Now().UTC()
				l.Continuation = p.Continuation
				if l, err = run.checkpoint(writeCtx, l); err != nil {
					drain(pages, run)
					return fmt.Errorf("feed range %s: %w", l.ID, err)
				}
				log.Debug("range caught up")
			}
			if !caughtUp {
				caughtUp = true
				run.markCaughtUp(true)
			}
			if run.cfg.Shared && run.Clock.Now().Sub(l.Timestamp) > run.cfg.LeaseTTL/3 {
				// Idle at the end of the feed: renew the lease well before it expires.
				if l, err = run.checkpoint(writeCtx, l); err != nil {
					drain(pages, run)
					return fmt.Errorf("feed range %s: %w", l.ID, err)
				}
			}
			continue
		}
		behind = true
		l, err = run.apply(writeCtx, l, p)
		run.budget.Release(p.bytes)
		switch {
		case err == nil:
		case writeCtx.Err() != nil:
			log.Warn("shutdown timeout: abandoned a page; it will be read again on resume")
			drain(pages, run)
			return nil
		default:
			drain(pages, run)
			return fmt.Errorf("feed range %s: %w", l.ID, err)
		}
	}
	if err := <-readErr; err != nil && readCtx.Err() == nil {
		return fmt.Errorf("feed range %s: %w", l.ID, err)
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
		Range:        FeedRange{Min: l.Range.Min, Max: l.Range.Max},
		Continuation: l.Continuation,
		PageSize:     run.cfg.PageSize,
	}
	if req.Continuation == "" {
		req.StartFrom = run.cfg.StartFrom
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

// apply transforms and writes one page, then checkpoints the lease.
func (run *run) apply(ctx context.Context, l lease.Lease, p page) (lease.Lease, error) {
	changes := make([]change, 0, len(p.Items))
	var newest int64
	for _, item := range p.Items {
		if ts := lastTS(item); ts > newest {
			newest = ts
		}
		res, err := run.Transformer.Apply(item)
		if err != nil {
			if err := run.deadLetterTransform(item, err); err != nil {
				return l, err
			}
			continue
		}
		changes = append(changes, change{res: res, source: item})
	}
	ru, err := run.w.writePage(ctx, changes)
	if err != nil {
		return l, err
	}
	if err := run.DeadLetters.Sync(); err != nil {
		return l, err
	}
	l.Continuation = p.Continuation
	l.Items += int64(len(p.Items))
	l.RU += ru
	l.CheckpointedAt = run.Clock.Now().UTC()
	if newest > l.LastChangeTS {
		l.LastChangeTS = newest
	}
	return run.checkpoint(ctx, l)
}

// checkpoint writes the lease, renewing it.
func (run *run) checkpoint(ctx context.Context, l lease.Lease) (lease.Lease, error) {
	l.Timestamp = run.Clock.Now().UTC()
	updated, err := run.Store.Update(ctx, l)
	if err != nil {
		if errors.Is(err, lease.ErrLeaseLost) {
			return l, fmt.Errorf("%w: lease %s was taken by another worker", ErrStopped, l.ID)
		}
		return l, fmt.Errorf("checkpoint: %w", err)
	}
	return updated, nil
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
