package rollback

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/migrate/pipeline"
	"github.com/rekey-dev/rekey/transform"
)

// maxRounds bounds the create/read/replace loop of one item under
// concurrent changes of the source.
const maxRounds = 8

// Applier writes the target's changes back into the source: a rollback's
// pipeline.PageApplier, and the writes of its reverse cutover's fix. Each
// target item is mapped back (Reverse): its id, the source key read from
// its own fields (rekey only adds fields, so the source key's are in every
// item the migration wrote, and the application must keep writing them),
// and its content as it is. The rules are the forward copy's: create
// first; on a conflict read the source item, leave it when it already
// holds that content, and replace it (If-Match on the version read) only
// when it is the migration's copy: unchanged since the cutover (its _ts
// at or before Horizon) or holding the version the rollback's own last
// write left (Ledger). A source item changed after the cutover by anyone
// else is never overwritten: it is dead-lettered as a conflict.
type Applier struct {
	// Reverse maps target items back to source items (Reverse).
	Reverse *transform.Transformer
	// Writer sends every request to the source through its write path
	// (pipeline.WritePath.NewWriter on the source container).
	Writer *pipeline.Writer
	// Dead records what cannot be written back: conflicts, items without
	// the source key's fields, items the source refuses.
	Dead migrate.DeadLetterStore
	// Ledger remembers the versions the rollback wrote.
	Ledger Ledger
	// Horizon is the cutover's SourceHorizon: a source item whose _ts is
	// not after it is as the cutover left it.
	Horizon int64
	// Clock stamps dead letters; the real clock when nil.
	Clock migrate.Clock

	Stats ApplierStats
}

// ApplierStats counts what an Applier did.
type ApplierStats struct {
	Created, Replaced, Unchanged, Deleted, Conflicts, DeadLettered atomic.Int64
}

// ApplyPage writes a page of target changes into the source, one item
// after another in the order of the page, each request behind fence.
func (a *Applier) ApplyPage(ctx context.Context, items [][]byte, fence func(context.Context) error) (float64, error) {
	var ru float64
	for _, item := range items {
		spent, err := a.Apply(ctx, item, fence)
		ru += spent
		if err != nil {
			return ru, err
		}
	}
	return ru, nil
}

// Apply writes one target item back into the source, or dead-letters it.
// An error means the rollback must stop (the service failed past its
// retries, the fence refused, a dead letter or ledger record could not be
// written).
func (a *Applier) Apply(ctx context.Context, target []byte, fence func(context.Context) error) (float64, error) {
	res, err := a.Reverse.Apply(target)
	if err != nil {
		return 0, a.deadLetterUnmapped(target, err)
	}
	c := &change{res: res, body: target}
	var ru float64
	for range maxRounds {
		var wr migrate.WriteResult
		err := a.do(ctx, c, fence, &ru, func(ctx context.Context, src migrate.Target) (float64, error) {
			var err error
			wr, err = src.Create(ctx, c.key(), res.Item)
			return wr.RU, err
		})
		switch {
		case err == nil:
			a.Stats.Created.Add(1)
			return ru, a.written(ctx, c, wr.ETag)
		case !errors.Is(err, migrate.ErrConflict):
			if kind, derr := a.refused(c, err); kind != "" || derr != nil {
				return ru, derr
			}
			return ru, fmt.Errorf("write item %q back into the source under key %s: %w", res.ID, c.key(), err)
		}
		done, err := a.replace(ctx, c, fence, &ru)
		if done || err != nil {
			return ru, err
		}
	}
	return ru, fmt.Errorf("item %q under key %s kept changing in the source while the rollback wrote it (%d rounds)", res.ID, c.key(), maxRounds)
}

// replace handles a target item whose source item exists. done is false
// when the source item vanished or changed in between: create again.
func (a *Applier) replace(ctx context.Context, c *change, fence func(context.Context) error, ru *float64) (bool, error) {
	cur, ok, err := a.read(ctx, c, fence, ru)
	if err != nil || !ok {
		return false, err
	}
	if migrate.SameContent(cur.Body, c.res.Item) {
		a.Stats.Unchanged.Add(1)
		return true, a.written(ctx, c, cur.ETag)
	}
	if owned, err := a.owned(ctx, c, cur); err != nil {
		return false, err
	} else if !owned {
		return true, a.conflict(c, cur)
	}
	var wr migrate.WriteResult
	err = a.do(ctx, c, fence, ru, func(ctx context.Context, src migrate.Target) (float64, error) {
		var err error
		wr, err = src.Replace(ctx, c.key(), c.res.ID, c.res.Item, cur.ETag)
		return wr.RU, err
	})
	switch {
	case err == nil:
		a.Stats.Replaced.Add(1)
		return true, a.written(ctx, c, wr.ETag)
	case errors.Is(err, migrate.ErrPreconditionFailed), errors.Is(err, migrate.ErrNotFound):
		return false, nil
	}
	if kind, derr := a.refused(c, err); kind != "" || derr != nil {
		return true, derr
	}
	return false, fmt.Errorf("replace source item %q under key %s: %w", c.res.ID, c.key(), err)
}

// Delete removes the source item (id, key) whose target copy the
// application deleted, if it is the migration's copy (as replace decides);
// one changed by someone else is dead-lettered as a conflict, and one
// already gone needs nothing. The reverse cutover's fix calls it: the
// latest-version change feed carries no deletes.
func (a *Applier) Delete(ctx context.Context, id string, key migrate.Key) (float64, error) {
	c := &change{res: transform.Result{ID: id, Key: key}}
	var ru float64
	for range maxRounds {
		cur, ok, err := a.read(ctx, c, nil, &ru)
		if err != nil || !ok {
			return ru, err
		}
		c.body = cur.Body
		if owned, err := a.owned(ctx, c, cur); err != nil {
			return ru, err
		} else if !owned {
			return ru, a.conflict(c, cur)
		}
		err = a.do(ctx, c, nil, &ru, func(ctx context.Context, src migrate.Target) (float64, error) {
			wr, err := src.Delete(ctx, key, id, cur.ETag)
			return wr.RU, err
		})
		switch {
		case err == nil, errors.Is(err, migrate.ErrNotFound):
			a.Stats.Deleted.Add(1)
			return ru, a.Dead.Resolve(id, c.sourceKey())
		case !errors.Is(err, migrate.ErrPreconditionFailed):
			return ru, fmt.Errorf("delete source item %q under key %s: %w", id, key, err)
		}
	}
	return ru, fmt.Errorf("source item %q under key %s kept changing while the rollback deleted it (%d rounds)", id, key, maxRounds)
}

// owned reports whether the source item cur is the migration's copy, which
// the rollback may overwrite: as the cutover left it, or as the
// rollback's own last write left it.
func (a *Applier) owned(ctx context.Context, c *change, cur migrate.Item) (bool, error) {
	if ts := migrate.LastTS(cur.Body); ts > 0 && ts <= a.Horizon {
		return true, nil
	}
	etag, ok, err := a.Ledger.Written(ctx, c.res.ID, c.key())
	if err != nil {
		return false, err
	}
	return ok && etag == cur.ETag, nil
}

// read reads the source item of c; ok is false when it does not exist.
func (a *Applier) read(ctx context.Context, c *change, fence func(context.Context) error, ru *float64) (migrate.Item, bool, error) {
	var it migrate.Item
	err := a.do(ctx, c, fence, ru, func(ctx context.Context, src migrate.Target) (float64, error) {
		var err error
		it, err = src.Read(ctx, c.key(), c.res.ID)
		return it.RU, err
	})
	switch {
	case errors.Is(err, migrate.ErrNotFound):
		return migrate.Item{}, false, nil
	case err != nil:
		return migrate.Item{}, false, fmt.Errorf("read source item %q under key %s: %w", c.res.ID, c.key(), err)
	}
	return it, true, nil
}

// do sends one request to the source through the write path, behind the
// fence, adding its charge to ru.
func (a *Applier) do(ctx context.Context, c *change, fence func(context.Context) error, ru *float64, op func(context.Context, migrate.Target) (float64, error)) error {
	return a.Writer.Do(ctx, c.key(), func(ctx context.Context, src migrate.Target) (float64, error) {
		if fence != nil {
			if err := fence(ctx); err != nil {
				return 0, err
			}
		}
		spent, err := op(ctx, src)
		if err != nil {
			spent = migrate.ErrorRU(err)
		}
		*ru += spent
		return spent, err
	})
}

// written records the version the rollback's write left, and clears the
// item's dead letter.
func (a *Applier) written(ctx context.Context, c *change, etag string) error {
	if err := a.Ledger.Record(ctx, c.res.ID, c.key(), etag); err != nil {
		return err
	}
	return a.Dead.Resolve(c.res.ID, c.sourceKey())
}

func (a *Applier) now() time.Time {
	if a.Clock == nil {
		return time.Now().UTC()
	}
	return a.Clock.Now().UTC()
}
