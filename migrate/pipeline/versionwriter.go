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
// its changes in the page: the item's current version, read from the
// source, written (or, when the source no longer holds it, its deletion),
// then every copy an earlier version left under another key removed.
// Items of one id are applied one after the other; other items
// concurrently.
//
// The feed's versions are history: a range replays the changes made since
// its bookmark, which its copy already wrote at a later version, and a
// crash replays the pages after the last checkpoint. Writing the source's
// current version instead never puts an older version over a newer copy,
// and a replay converges to the same end. It costs a point read of the
// source per item and page.
//
// A copy is removed only when the target's item under that key is a copy
// of the same source item (its source key fields say so), with If-Match on
// the ETag examined: never another item's copy, never a version written
// in between without being examined again.
type versionWriter struct {
	w *Writer
	// src is read for each item's current version, under retry and the
	// source's RU cap; what the reads cost counts as the source's RU.
	src       migrate.Source
	retry     *migrate.Retrier
	sourceCap migrate.RUCap
	sourceRU  *atomicFloat
	// finder searches the target for an item's copies, when the key a copy
	// was stored under is not known; nil when the target cannot.
	finder      migrate.CopyFinder
	sourcePaths []string
	// keyMayChange: the key spec reads a field other than the id and the
	// source key, so an update may move an item to another key.
	keyMayChange bool
	skipTTL      bool
}

// newVersionWriter returns the version writer of w's target and key spec,
// reading current versions from run's source.
func newVersionWriter(run *run, w *Writer, tr *transform.Transformer, skipTTL bool) *versionWriter {
	finder, _ := w.dst.(migrate.CopyFinder)
	return &versionWriter{w: w, src: run.source, retry: run.retry, sourceCap: run.sourceCap, sourceRU: &run.stats.sourceRU,
		finder: finder, sourcePaths: tr.SourcePaths(), keyMayChange: keyMayChange(tr), skipTTL: skipTTL}
}

// itemChange is the net effect of one page's changes on one source item.
type itemChange struct {
	id        string
	sourceKey migrate.Key
	changes   []*migrate.VersionChange // in LSN order
	// write is the item's current version in the source, to write (current);
	// nil when the source no longer holds it (gone), or when that version
	// cannot be transformed (dead-lettered).
	write *Change
	gone  bool
	// version is the source's ETag of the version current read ("" when
	// gone): a replay reads the item again after its write to compare.
	version string
	// stale are the target keys of the item's versions other than the
	// current one, as far as they are known: previous images and the
	// page's versions.
	stale []migrate.Key
	// lookup: the key of the copy the item had before the page is not
	// known (no previous image), so its copies are searched for.
	lookup bool
}

// last is the item's last change in the page.
func (ic *itemChange) last() *migrate.VersionChange { return ic.changes[len(ic.changes)-1] }

// apply applies one page's changes (in LSN order) behind fence, and
// returns the request units spent on the target. Its errors are those of
// Writer.writePage.
func (vw *versionWriter) apply(ctx context.Context, changes []migrate.VersionChange, fence func(context.Context) error) (float64, error) {
	items, err := vw.net(changes)
	if err != nil {
		return 0, err
	}
	byID := map[string][]*itemChange{}
	var ids []string
	for _, ic := range items {
		if _, ok := byID[ic.id]; !ok {
			ids = append(ids, ic.id)
		}
		byID[ic.id] = append(byID[ic.id], ic)
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
				if err := vw.w.DeadLetterUntransformable(c.Current, err); err != nil {
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
		vw.resolve(ic)
	}
	return items, nil
}

// resolve works out the keys of the item's versions in the page, and
// whether its earlier copy must be searched for.
func (vw *versionWriter) resolve(ic *itemChange) {
	first := ic.changes[0]
	for _, c := range ic.changes {
		vw.addStale(ic, c.Previous)
		vw.addStale(ic, c.Current)
	}
	// Before the page the item had a copy under the key of the version the
	// first change replaced or deleted: known from its previous image; for
	// a create there was none (a deletion removed it, or it never existed).
	// A previous version that cannot be transformed was dead-lettered and
	// left the copy of an even earlier version where it was: unknown too.
	known := first.Previous != nil && vw.transforms(first.Previous)
	ic.lookup = first.Op != migrate.OpCreate && !known && (first.Op == migrate.OpDelete || vw.keyMayChange)
}

// transforms reports whether a version of an item has a target key.
func (vw *versionWriter) transforms(body []byte) bool {
	_, err := vw.w.tr.Apply(body)
	return err == nil
}

// current reads the item's current version from the source and sets what
// to write: that version transformed, or nothing when the source no
// longer holds the item (gone). A current version that cannot be
// transformed is dead-lettered, and the item's copies are left as they
// are (ok false).
func (vw *versionWriter) current(ctx context.Context, ic *itemChange) (ok bool, err error) {
	it, err := vw.readSource(ctx, ic)
	switch {
	case err != nil:
		return false, err
	case it.Body == nil:
		ic.gone = true
		return true, nil
	}
	ic.version = it.ETag
	res, err := vw.w.tr.Apply(it.Body)
	if err != nil {
		return false, vw.w.DeadLetterUntransformable(it.Body, err)
	}
	ic.write = &Change{Result: res, Source: it.Body}
	return true, nil
}

// readSource reads the item's current version from the source, under
// retry and the source's RU cap; an item the source no longer holds comes
// back with a nil Body.
func (vw *versionWriter) readSource(ctx context.Context, ic *itemChange) (migrate.Item, error) {
	var it migrate.Item
	err := vw.retry.Do(ctx, func() error {
		reserved, err := vw.sourceCap.Acquire(ctx, migrate.ReadCharge(0))
		if err != nil {
			return err
		}
		it, err = vw.src.ReadItem(ctx, ic.sourceKey, ic.id)
		ru := it.RU
		if err != nil {
			ru = migrate.ErrorRU(err)
		}
		vw.sourceCap.Settle(reserved, ru)
		vw.sourceRU.add(ru)
		if errors.Is(err, migrate.ErrNotFound) {
			it = migrate.Item{}
			return nil
		}
		return err
	})
	if err != nil {
		return migrate.Item{}, fmt.Errorf("read the current version of source item %q with key %s: %w", ic.id, ic.sourceKey, err)
	}
	return it, nil
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

// applyItem writes an item's current version (or applies its deletion),
// then removes the copies its other versions left under other keys.
//
// With --ttl-expiries skip, an expiry is left to the target's own time to
// live only when it is the item's only change in the page: the copy is
// then of the version that expired. After other changes in the page (an
// update that set a shorter ttl, say) the copy is of an earlier version,
// which may live longer or never expire, so the expiry is applied.
func (vw *versionWriter) applyItem(ctx context.Context, pw *pageWriter, ic *itemChange) error {
	if last := ic.last(); last.Op == migrate.OpDelete && last.TTLExpired && vw.skipTTL && len(ic.changes) == 1 {
		pw.stats.ttlSkipped.Add(1) // the copy expires by the target's own time to live
		return pw.dead.Resolve(ic.id, ic.sourceKey.AppendJSON(nil))
	}
	if ok, err := vw.current(ctx, ic); !ok || err != nil {
		return err
	}
	return vw.writeCurrent(ctx, pw, ic)
}

// writeCurrent writes what current found (the item's current version, or
// nothing when it is gone), then removes the copies under other keys.
func (vw *versionWriter) writeCurrent(ctx context.Context, pw *pageWriter, ic *itemChange) error {
	var final migrate.Key
	if ic.write != nil {
		if err := vw.w.defaults.Record(ctx, ic.write.Result.DefaultsUsed); err != nil {
			return err
		}
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
	if ic.gone {
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
	err := pw.call(ctx, final, migrate.LookupCharge, func(ctx context.Context) (float64, error) {
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
			err := pw.call(ctx, key, migrate.ReadCharge(0), func(ctx context.Context) (float64, error) {
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
		err := pw.call(ctx, key, migrate.DeleteCharge(len(it.Body)), func(ctx context.Context) (float64, error) {
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
