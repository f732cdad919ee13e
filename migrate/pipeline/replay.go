package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/rekey-dev/rekey/migrate"
)

// ReplayResult counts what a replay of the dead-letter file did.
type ReplayResult struct {
	Replayed     int // dead items looked at
	Written      int // now in the target: their dead letters are resolved
	SourceGone   int // deleted from the source since: no copy left, resolved
	StillFailing int // failed again: a new dead letter records the current reason
	// Changing counts items that changed in the source during every
	// attempt to replay them (the application writes them, and a worker
	// copies them meanwhile): their dead letters stay, for a later replay.
	Changing int
}

// Replay re-runs dead-lettered items through the transform and the writer,
// after the user fixed the cause (a key spec default, a trimmed item), and
// may run beside the workers of a shared state.
//
// Each item is read again from the source and its current version written
// as the all-versions feed's writer writes it: created, or replacing only
// a copy of the same source item, and its copies under other keys (an
// earlier version's) removed when the target can search for them; an item
// the source no longer holds loses its copies. The source is then read
// again: the write stands only if the item did not change in between, for
// a worker may have copied a newer version that the write then replaced;
// otherwise it is replayed again, up to maxReconcileRounds times (then
// counted as Changing). So a replay never leaves a version older than the
// source's current one. Items that stand are resolved in the dead-letter
// file; items that fail again get a new dead letter with the current
// reason. Items whose source key the client cannot address (an undefined
// component) are written from the copy in their dead letter.
//
// After a cutover it refuses with a *CutOverError (ErrCutOver), and while
// one is requested with a *CutoverInProgressError; it reads the state
// again before each item, so that a cutover requested while it replays
// stops it before its next write.
func (r *Runner) Replay(ctx context.Context, entries []migrate.DeadLetter) (ReplayResult, error) {
	if r.Writes == nil {
		return ReplayResult{}, errNoWritePath
	}
	run := r.newRun(RunConfig{}.withDefaults())
	defer run.deadLog.flush()
	if err := migrate.RefuseDuringCutover(ctx, r.Store, "deadletter replay", "", run.clock.Now()); err != nil {
		return ReplayResult{}, err
	}
	held := &heldResolves{DeadLetterStore: run.w.dead}
	w := *run.w
	w.dead = held
	vw := newVersionWriter(run, &w, r.Transformer, false)
	pw := &pageWriter{Writer: &w, ru: new(atomicFloat)}
	var res ReplayResult
	for i, dl := range entries {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		if i > 0 { // a cutover requested meanwhile stops the replay before its next write
			if err := migrate.RefuseDuringCutover(ctx, r.Store, "deadletter replay", "", run.clock.Now()); err != nil {
				return res, err
			}
		}
		res.Replayed++
		key, err := migrate.ParseKey(dl.SourceKey)
		var out replayOutcome
		if err != nil || key.HasUndefined() {
			out, err = replayFromDeadLetter(ctx, run, dl)
		} else {
			out, err = vw.replay(ctx, pw, held, &itemChange{id: dl.SourceID, sourceKey: key, lookup: vw.finder != nil})
		}
		if err != nil {
			return res, fmt.Errorf("replay item %q: %w", dl.SourceID, err)
		}
		switch out {
		case replayWritten:
			res.Written++
		case replayGone:
			res.SourceGone++
		case replayFailing:
			res.StillFailing++
		case replayChanging:
			res.Changing++
		}
	}
	return res, r.DeadLetters.Sync()
}

// replayOutcome is what became of one replayed item.
type replayOutcome int

const (
	replayWritten replayOutcome = iota
	replayGone
	replayFailing
	replayChanging
)

// replay writes the item's current version (or removes its copies when
// the source no longer holds it), and reads the source again after: the
// write stands, and the item's dead letter is resolved, only if the
// item's version is the one written. ic names the item and whether its
// copies are searched for; it is reused round after round.
func (vw *versionWriter) replay(ctx context.Context, pw *pageWriter, held *heldResolves, ic *itemChange) (replayOutcome, error) {
	for range maxReconcileRounds {
		held.reset()
		*ic = itemChange{id: ic.id, sourceKey: ic.sourceKey, lookup: ic.lookup}
		before := pw.stats.deadLettered.Load()
		ok, err := vw.current(ctx, ic)
		if err != nil {
			return 0, err
		}
		if !ok {
			return replayFailing, nil // untransformable still: dead-lettered again
		}
		if err := vw.writeCurrent(ctx, pw, ic); err != nil {
			return 0, err
		}
		if pw.stats.deadLettered.Load() > before {
			return replayFailing, nil
		}
		now, err := vw.readSource(ctx, ic)
		if err != nil {
			return 0, err
		}
		if now.ETag != ic.version || (now.Body == nil) != ic.gone {
			continue // changed since it was read: what was written may be older than a copy it replaced
		}
		if err := held.apply(); err != nil {
			return 0, err
		}
		if ic.gone {
			return replayGone, nil
		}
		return replayWritten, nil
	}
	return replayChanging, nil
}

// replayFromDeadLetter writes the copy of an item kept in its dead letter:
// its source key cannot be addressed, so the source cannot be read.
func replayFromDeadLetter(ctx context.Context, run *run, dl migrate.DeadLetter) (replayOutcome, error) {
	w := run.w
	tr, err := run.tr.Apply(dl.Item)
	if err != nil {
		if err := w.DeadLetterUntransformable(dl.Item, err); err != nil {
			return 0, err
		}
		return replayFailing, nil
	}
	before := run.stats.deadLettered.Load()
	if _, err := w.writePage(ctx, []Change{{Result: tr, Source: dl.Item}}, nil); err != nil {
		return 0, err
	}
	if run.stats.deadLettered.Load() > before {
		return replayFailing, nil
	}
	return replayWritten, nil
}

// heldResolves holds back the resolution of dead letters until apply: a
// replayed item's dead letter is resolved only once its write stood.
type heldResolves struct {
	migrate.DeadLetterStore
	mu   sync.Mutex
	held []migrate.DeadLetter // SourceID and SourceKey of each
}

func (h *heldResolves) Resolve(id string, key json.RawMessage) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.held = append(h.held, migrate.DeadLetter{SourceID: id, SourceKey: key})
	return nil
}

// reset forgets the resolutions held; apply resolves them.
func (h *heldResolves) reset() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.held = nil
}

func (h *heldResolves) apply() error {
	h.mu.Lock()
	held := h.held
	h.held = nil
	h.mu.Unlock()
	var errs []error
	for _, dl := range held {
		errs = append(errs, h.DeadLetterStore.Resolve(dl.SourceID, dl.SourceKey))
	}
	return errors.Join(errs...)
}
