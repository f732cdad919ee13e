package verify

import (
	"context"
	"errors"
	"fmt"

	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/migrate/pipeline"
)

// fixOutcome is what fixing one difference did.
type fixOutcome struct {
	deadKind string // the item was dead-lettered with this kind
	skipped  bool   // the target changed since the examination: nothing overwritten
	recorded bool   // an untransformable item's dead letter was recorded
}

// fix repairs the differences that remained after the recheck, then
// examines each again and returns those still there. It writes only what
// it examined: a stray copy is deleted with If-Match on the ETag examined,
// a missing copy is created (a 409 means someone created it meanwhile), a
// changed copy is replaced with If-Match on the ETag examined. A 412, 409
// or 404 leaves the target as it is: the item is examined again and, if it
// still differs, reported, never overwritten. What the target refuses (400,
// 413) or what another source item holds is dead-lettered, as the copy
// does, and counted as such, not as copied. An untransformable item that
// no dead letter records is recorded as one, so that every difference
// cutover accepts is a counted dead letter. Collisions, dead-lettered and
// untransformable items are otherwise left to `rekey deadletter replay`.
//
// It refuses with a *CutOverError when the state records a cutover, and
// while another owner's cutover is requested: it reads the state again
// before each difference it fixes, so that a cutover requested while it
// fixes stops it before its next write (the cutover then waits for the
// target to be quiet and verifies, which sees the writes sent before).
func (v *Verifier) fix(ctx context.Context, retry *migrate.Retrier, rep *Report, todo []pending) ([]pending, error) {
	rep.Fix = &FixReport{}
	w := v.Writes.NewWriter(v.Transformer, v.DeadLetters, v.Defaults)
	var still []pending
	for _, p := range todo {
		if !fixable(p.s.kind) || p.s.kind == DiffUntransformable && p.s.deadLettered && p.ex.cur.untrans {
			still = append(still, p)
			continue
		}
		if err := migrate.RefuseDuringCutover(ctx, v.State, "verify --fix", v.Owner, v.Clock.Now()); err != nil {
			return nil, err
		}
		out, err := v.fixOne(ctx, w, rep.Fix, p)
		if err != nil {
			return nil, err
		}
		ex, err := v.examine(ctx, retry, p.s)
		if err != nil {
			return nil, err
		}
		if ex.settled {
			rep.category(p.s.kind).Count--
			continue
		}
		p.ex = ex
		switch {
		case out.recorded:
			p.s.deadLettered = true
			p.s.diff.Reason = p.ex.cur.terr.Error() + "; dead-lettered by the fix"
		case out.deadKind != "":
			rep.category(p.s.kind).Count--
			p.s.kind = DiffDeadLettered
			if out.deadKind == migrate.KindCollision {
				p.s.kind = DiffCollision
			}
			rep.category(p.s.kind).Count++
			p.s.diff.Reason = "the fix could not copy it: dead-lettered as " + out.deadKind + " (rekey deadletter list)"
		case out.skipped:
			rep.Fix.Skipped++
			p.s.diff.Reason = "changed in the target while verify fixed it: left as it is"
		}
		still = append(still, p)
	}
	rep.Fix.Remaining = int64(len(still))
	return still, v.DeadLetters.Sync()
}

// fixable reports whether verify repairs a kind of difference itself.
func fixable(kind string) bool {
	switch kind {
	case DiffMissing, DiffChanged, DiffExtra, DiffOrphaned, DiffUntransformable:
		return true
	}
	return false
}

// fixOne repairs one difference as examined in p.ex.
func (v *Verifier) fixOne(ctx context.Context, w *pipeline.Writer, fr *FixReport, p pending) (fixOutcome, error) {
	out, err := v.removeStray(ctx, w, fr, p)
	if err != nil {
		return out, err
	}
	if ex := p.ex; ex.cur.untrans && p.s.kind == DiffUntransformable && !p.s.deadLettered {
		fr.DeadLettered++
		out.recorded = true
		if err := w.DeadLetterUntransformable(ex.cur.body, ex.cur.terr); err != nil {
			return out, fmt.Errorf("fix: dead-letter item %q: %w", p.s.diff.ID, err)
		}
	}
	if ex := p.ex; !ex.cur.gone && !ex.cur.untrans && !ex.wantOK {
		if out, err = v.copyCurrent(ctx, w, fr, p.ex, out); err != nil {
			return out, err
		}
	}
	return out, nil
}

// removeStray deletes the source item's copy at a location it no longer
// maps to, if the examination found one, with If-Match on its ETag.
func (v *Verifier) removeStray(ctx context.Context, w *pipeline.Writer, fr *FixReport, p pending) (fixOutcome, error) {
	var out fixOutcome
	if p.ex.stray == nil {
		return out, nil
	}
	key, err := migrate.ParseKey([]byte(p.s.diff.TargetKey))
	if err != nil {
		return out, fmt.Errorf("fix item %q: %w", p.s.diff.ID, err)
	}
	err = w.Do(ctx, key, func(ctx context.Context, target migrate.Target) (float64, error) {
		wr, err := target.Delete(ctx, key, p.s.diff.ID, p.ex.stray.ETag)
		return wr.RU, err
	})
	switch {
	case err == nil:
		fr.Deleted++
	case errors.Is(err, migrate.ErrNotFound):
	case errors.Is(err, migrate.ErrPreconditionFailed):
		out.skipped = true
	default:
		return out, fmt.Errorf("fix: delete %s item %q under key %s: %w", p.s.kind, p.s.diff.ID, p.s.diff.TargetKey, err)
	}
	return out, nil
}

// copyCurrent writes the source item's current version where it maps, as
// the examination found that place: create when it was empty, replace
// with If-Match when it held an outdated copy, dead-letter a collision when
// it held another source item's copy. The key defaults the item uses are
// recorded in the state first, as the copy does.
func (v *Verifier) copyCurrent(ctx context.Context, w *pipeline.Writer, fr *FixReport, ex exam, out fixOutcome) (fixOutcome, error) {
	c := &pipeline.Change{Result: ex.cur.res, Source: ex.cur.body}
	key := c.Key()
	if err := w.RecordDefaults(ctx, c.Result.DefaultsUsed); err != nil {
		return out, fmt.Errorf("fix item %q: %w", c.Result.ID, err)
	}
	if ex.foreign {
		out.deadKind = migrate.KindCollision
		fr.DeadLettered++
		return out, w.DeadLetterCollision(c, ex.want.Body)
	}
	err := w.Do(ctx, key, func(ctx context.Context, target migrate.Target) (float64, error) {
		var wr migrate.WriteResult
		var err error
		if ex.want == nil {
			wr, err = target.Create(ctx, key, c.Result.Item)
		} else {
			wr, err = target.Replace(ctx, key, c.Result.ID, c.Result.Item, ex.want.ETag)
		}
		return wr.RU, err
	})
	switch {
	case err == nil:
		fr.Copied++
		return out, w.Resolve(c)
	case errors.Is(err, migrate.ErrConflict), errors.Is(err, migrate.ErrPreconditionFailed), errors.Is(err, migrate.ErrNotFound):
		out.skipped = true
		return out, nil
	case errors.Is(err, migrate.ErrBadRequest), errors.Is(err, migrate.ErrTooLarge):
		fr.DeadLettered++
		var derr error
		out.deadKind, derr = w.DeadLetterRefused(c, err)
		return out, derr
	}
	return out, fmt.Errorf("fix: copy item %q under key %s: %w", c.Result.ID, key, err)
}
