package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/transform"
)

// versionWriter applies pages of the all-versions feed to the target
// through the run's Writer: creates and replaces as the Writer writes any
// item (create, or replace only a copy of the same source item), deletes,
// and the removal of the copies a key change leaves behind.
//
// A page is applied item by item in its order: its changes are grouped by
// source item (id and source key), and each item gets the net effect of
// its changes in the page, its last version written (or its deletion),
// then every copy an earlier version left under another key removed.
// Items of one id are applied one after the other; other items
// concurrently. Replaying a page after a crash converges to the same end.
//
// A copy is removed only when the target's item under that key is a copy
// of the same source item (its source key fields say so), with If-Match on
// the ETag examined: never another item's copy, never a version written
// in between without being examined again.
type versionWriter struct {
	w *Writer
	// finder searches the target for an item's copies, when the key a copy
	// was stored under is not known; nil when the target cannot.
	finder      migrate.CopyFinder
	sourcePaths []string
	// keyMayChange: the key spec reads a field other than the id and the
	// source key, so an update may move an item to another key.
	keyMayChange bool
	skipTTL      bool
}

// newVersionWriter returns the version writer of w's target and key spec.
func newVersionWriter(w *Writer, tr *transform.Transformer, skipTTL bool) *versionWriter {
	finder, _ := w.dst.(migrate.CopyFinder)
	return &versionWriter{w: w, finder: finder, sourcePaths: tr.SourcePaths(), keyMayChange: keyMayChange(tr), skipTTL: skipTTL}
}

// itemChange is the net effect of one page's changes on one source item.
type itemChange struct {
	id        string
	sourceKey migrate.Key
	changes   []*migrate.VersionChange // in LSN order
	// write is the item's last version, to write; nil when its last change
	// deleted it, or when that version cannot be transformed (dead-lettered).
	write *Change
	// stale are the target keys of the item's earlier versions, as far as
	// they are known: previous images and the page's earlier versions.
	stale []migrate.Key
	// lookup: the key of the copy the item had before the page is not
	// known (no previous image), so its copies are searched for.
	lookup bool
}

// deleted reports whether the item's last change in the page deleted it.
func (ic *itemChange) deleted() bool { return ic.changes[len(ic.changes)-1].Op == migrate.OpDelete }

// apply applies one page's changes (in LSN order) behind fence, and
// returns the request units spent on the target. Its errors are those of
// Writer.writePage.
func (vw *versionWriter) apply(ctx context.Context, changes []migrate.VersionChange, fence func(context.Context) error) (float64, error) {
	items, err := vw.net(changes)
	if err != nil {
		return 0, err
	}
	var used transform.DefaultSet
	byID := map[string][]*itemChange{}
	var ids []string
	for _, ic := range items {
		if ic.write != nil {
			used |= ic.write.Result.DefaultsUsed
		}
		if _, ok := byID[ic.id]; !ok {
			ids = append(ids, ic.id)
		}
		byID[ic.id] = append(byID[ic.id], ic)
	}
	if err := vw.w.defaults.Record(ctx, used); err != nil {
		return 0, err
	}
	var ru atomicFloat
	pw := &pageWriter{Writer: vw.w, ru: &ru, fence: fence}
	g, gctx := errgroup.WithContext(ctx)
	for _, id := range ids {
		group := byID[id]
		g.Go(func() error {
			for _, ic := range group {
				if err := vw.applyItem(gctx, pw, ic); err != nil {
					return err
				}
			}
			return nil
		})
	}
	err = g.Wait()
	return ru.load(), err
}

// net groups a page's changes by source item and works out each item's
// net effect. A create or replace whose id or source key cannot be read,
// or whose last version cannot be transformed, is dead-lettered as the
// latest-version path does.
func (vw *versionWriter) net(changes []migrate.VersionChange) ([]*itemChange, error) {
	byID := map[string][]*itemChange{}
	var items []*itemChange
	for i := range changes {
		c := &changes[i]
		id, sk := c.ID, c.SourceKey
		switch c.Op {
		case migrate.OpCreate, migrate.OpReplace:
			var vals []transform.Value
			var err error
			if id, vals, err = vw.w.tr.SourceKeyOf(c.Current); err != nil {
				if err := vw.w.deadLetterTransform(c.Current, err); err != nil {
					return nil, err
				}
				continue
			}
			sk = migrate.Key(vals)
		case migrate.OpDelete:
		default:
			return nil, fmt.Errorf("change at LSN %d: unknown operation %q", c.LSN, c.Op)
		}
		var ic *itemChange
		for _, x := range byID[id] {
			if x.sourceKey.Equal(sk) {
				ic = x
				break
			}
		}
		if ic == nil {
			ic = &itemChange{id: id, sourceKey: sk}
			byID[id] = append(byID[id], ic)
			items = append(items, ic)
		}
		ic.changes = append(ic.changes, c)
	}
	for _, ic := range items {
		if err := vw.resolve(ic); err != nil {
			return nil, err
		}
	}
	return items, nil
}

// resolve works out an item's last version, the keys of its earlier
// versions, and whether its earlier copy must be searched for.
func (vw *versionWriter) resolve(ic *itemChange) error {
	first, last := ic.changes[0], ic.changes[len(ic.changes)-1]
	for i, c := range ic.changes {
		vw.addStale(ic, c.Previous)
		if i < len(ic.changes)-1 {
			vw.addStale(ic, c.Current)
		}
	}
	// Before the page the item had a copy under the key of the version the
	// first change replaced or deleted: known from its previous image; for
	// a create there was none (a deletion removed it, or it never existed).
	ic.lookup = first.Op != migrate.OpCreate && first.Previous == nil && (first.Op == migrate.OpDelete || vw.keyMayChange)
	if last.Op == migrate.OpDelete {
		return nil
	}
	res, err := vw.w.tr.Apply(last.Current)
	if err != nil {
		ic.lookup, ic.stale = false, nil // the last version has no key: leave the copies as they are
		return vw.w.deadLetterTransform(last.Current, err)
	}
	ic.write = &Change{Result: res, Source: last.Current}
	return nil
}

// addStale records the target key of an earlier version of the item, if
// it has one.
func (vw *versionWriter) addStale(ic *itemChange, body []byte) {
	if body == nil {
		return
	}
	res, err := vw.w.tr.Apply(body)
	if err != nil {
		return // never written: no copy to remove
	}
	key := migrate.Key(res.Key)
	for _, k := range ic.stale {
		if k.Equal(key) {
			return
		}
	}
	ic.stale = append(ic.stale, key)
}

// applyItem writes an item's last version (or applies its deletion), then
// removes the copies its earlier versions left under other keys.
func (vw *versionWriter) applyItem(ctx context.Context, pw *pageWriter, ic *itemChange) error {
	if ic.deleted() && ic.changes[len(ic.changes)-1].TTLExpired && vw.skipTTL {
		pw.stats.ttlSkipped.Add(1) // the copy expires by the target's own time to live
		return pw.dead.Resolve(ic.id, ic.sourceKey.AppendJSON(nil))
	}
	var final migrate.Key
	if ic.write != nil {
		if err := pw.writeOne(ctx, ic.write); err != nil {
			return err
		}
		final = ic.write.Key()
	}
	if ic.lookup {
		copies, err := vw.findCopies(ctx, pw, ic, final)
		if err != nil {
			return err
		}
		for i := range copies {
			if final == nil || !copies[i].Key.Equal(final) {
				if err := vw.removeCopy(ctx, pw, ic, copies[i].Key, &copies[i]); err != nil {
					return err
				}
			}
		}
	} else {
		for _, key := range ic.stale {
			if final == nil || !key.Equal(final) {
				if err := vw.removeCopy(ctx, pw, ic, key, nil); err != nil {
					return err
				}
			}
		}
	}
	if ic.deleted() {
		return pw.dead.Resolve(ic.id, ic.sourceKey.AppendJSON(nil)) // nothing left to copy
	}
	return nil
}

// findCopies searches the target for the item's copies, wherever they are
// stored. The search goes out under the flow control of the item's new key
// (final), or of the first partition for a deleted item.
func (vw *versionWriter) findCopies(ctx context.Context, pw *pageWriter, ic *itemChange, final migrate.Key) ([]migrate.Item, error) {
	if vw.finder == nil {
		return nil, fmt.Errorf("item %q with source key %s: its copy must be searched for (the change carries no previous image), and the target cannot search", ic.id, ic.sourceKey)
	}
	var copies []migrate.Item
	var ru float64
	err := pw.call(ctx, final, func(ctx context.Context) (float64, error) {
		var err error
		copies, ru, err = vw.finder.FindCopies(ctx, ic.id, vw.sourcePaths, ic.sourceKey)
		return ru, err
	})
	if err != nil {
		return nil, fmt.Errorf("find the copies of item %q with source key %s: %w", ic.id, ic.sourceKey, err)
	}
	pw.spend(&pw.stats.lookupRU, ru)
	pw.stats.lookups.Add(1)
	return copies, nil
}

// removeCopy deletes the copy of the item stored under key, if the target
// holds one there (examined: as found by a search; nil: read it first).
// An item of another source item under that key is left alone; a 412
// (the copy changed after it was examined) examines it again.
func (vw *versionWriter) removeCopy(ctx context.Context, pw *pageWriter, ic *itemChange, key migrate.Key, examined *migrate.Item) error {
	for round := 0; round < maxReconcileRounds; round++ {
		it := examined
		examined = nil
		if it == nil {
			var got migrate.Item
			err := pw.call(ctx, key, func(ctx context.Context) (float64, error) {
				var err error
				got, err = pw.dst.Read(ctx, key, ic.id)
				return got.RU, err
			})
			switch {
			case errors.Is(err, migrate.ErrNotFound):
				pw.spend(&pw.stats.deleteRU, migrate.ErrorRU(err))
				return nil
			case err != nil:
				return fmt.Errorf("read item %q under key %s: %w", ic.id, key, err)
			}
			pw.spend(&pw.stats.deleteRU, got.RU)
			it = &got
		}
		if owner, ok := pw.copiedFrom(it.Body); !ok || !owner.Equal(ic.sourceKey) {
			return nil // another source item's copy
		}
		var wr migrate.WriteResult
		err := pw.call(ctx, key, func(ctx context.Context) (float64, error) {
			var err error
			wr, err = pw.dst.Delete(ctx, key, ic.id, it.ETag)
			return wr.RU, err
		})
		switch {
		case err == nil:
			pw.spend(&pw.stats.deleteRU, wr.RU)
			pw.stats.deleted.Add(1)
			return nil
		case errors.Is(err, migrate.ErrNotFound):
			pw.spend(&pw.stats.deleteRU, migrate.ErrorRU(err))
			return nil
		case errors.Is(err, migrate.ErrPreconditionFailed):
			pw.spend(&pw.stats.deleteRU, migrate.ErrorRU(err))
		default:
			return fmt.Errorf("delete item %q under key %s: %w", ic.id, key, err)
		}
	}
	return fmt.Errorf("item %q under key %s kept changing in the target while its copy was removed (%d rounds)", ic.id, key, maxReconcileRounds)
}

// keyMayChange reports whether an update of a source item can give it
// another target key: whether the key spec reads a field besides the id
// and the source key, which never change. A field it cannot compare
// counts as one that may change.
func keyMayChange(tr *transform.Transformer) bool {
	fixed := map[string]bool{"id": true}
	for _, p := range tr.SourcePaths() {
		path, err := transform.ParsePath(p)
		if err != nil {
			return true
		}
		fixed[strings.Join(path.Segments(), ".")] = true
	}
	for _, k := range tr.Spec().Keys() {
		if !k.Synthetic() && !fixed[strings.Join(k.Path.Segments(), ".")] {
			return true
		}
	}
	for _, ph := range tr.Spec().Placeholders() {
		if !fixed[ph.Field] {
			return true
		}
	}
	return false
}
