package pipeline

import (
	"context"
	"errors"
	"fmt"

	"github.com/rekey-dev/rekey/migrate"
)

// ReplayResult counts what a replay of the dead-letter file did.
type ReplayResult struct {
	Replayed     int // dead items looked at
	Written      int // now in the target: their dead letters are resolved
	SourceGone   int // deleted from the source since: nothing to copy, resolved
	StillFailing int // failed again: a new dead letter records the current reason
}

// Replay re-runs dead-lettered items through the transform and the writer,
// after the user fixed the cause (a key spec default, a trimmed item). Each
// item is read again from the source, so a replay never writes a version
// older than the source's current one; an item the source no longer has
// needs no copy. Items that succeed are resolved in the dead-letter file;
// items that fail again get a new dead letter with the current reason.
// After a cutover it refuses with a *CutOverError (ErrCutOver), and while
// one is requested with a *CutoverInProgressError.
func (r *Runner) Replay(ctx context.Context, entries []migrate.DeadLetter) (ReplayResult, error) {
	if r.Writes == nil {
		return ReplayResult{}, errNoWritePath
	}
	run := r.newRun(RunConfig{}.withDefaults())
	defer run.deadLog.flush()
	if err := migrate.RefuseDuringCutover(ctx, r.Store, "deadletter replay", "", run.clock.Now()); err != nil {
		return ReplayResult{}, err
	}
	w := run.w
	var res ReplayResult
	for _, dl := range entries {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		res.Replayed++
		body, gone, err := r.currentSource(ctx, run.retry, dl)
		if err != nil {
			return res, err
		}
		if gone {
			res.SourceGone++
			if err := r.DeadLetters.Resolve(dl.SourceID, dl.SourceKey); err != nil {
				return res, err
			}
			continue
		}
		tr, terr := r.Transformer.Apply(body)
		if terr != nil {
			res.StillFailing++
			if err := w.DeadLetterUntransformable(body, terr); err != nil {
				return res, err
			}
			continue
		}
		before := run.stats.Snapshot().DeadLettered
		if _, err := w.writePage(ctx, []Change{{Result: tr, Source: body}}, nil); err != nil {
			return res, fmt.Errorf("replay item %q: %w", dl.SourceID, err)
		}
		if run.stats.Snapshot().DeadLettered > before {
			res.StillFailing++
		} else {
			res.Written++
		}
	}
	return res, r.DeadLetters.Sync()
}

// currentSource reads a dead item's current version from the source. Items
// whose source key the client cannot address (an undefined component) are
// replayed from the copy in the dead letter.
func (r *Runner) currentSource(ctx context.Context, retry *migrate.Retrier, dl migrate.DeadLetter) (body []byte, gone bool, err error) {
	key, err := migrate.ParseKey(dl.SourceKey)
	if err != nil || key.HasUndefined() {
		return dl.Item, false, nil
	}
	var it migrate.Item
	err = retry.Do(ctx, func() error {
		var err error
		it, err = r.Source.ReadItem(ctx, key, dl.SourceID)
		return err
	})
	switch {
	case errors.Is(err, migrate.ErrNotFound):
		return nil, true, nil
	case err != nil:
		return nil, false, fmt.Errorf("read source item %q under key %s: %w", dl.SourceID, dl.SourceKey, err)
	}
	return it.Body, false, nil
}
