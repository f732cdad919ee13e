package verify

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/transform"
)

// pending is a difference that held when it was examined again.
type pending struct {
	s  suspect
	ex exam
}

// recheckAndFix examines each difference again after the recheck delay. A
// difference is settled only when the target now matches the source item's
// current version (or neither side holds the item); one whose source item
// changed since the scan is examined against the new version and, when the
// target does not match it, stays a difference marked in flight. With Fix,
// what remains is repaired, each write conditional on the version examined,
// and examined once more.
func (v *Verifier) recheckAndFix(ctx context.Context, cfg Config, rep *Report, suspects []suspect) error {
	if len(suspects) == 0 {
		return nil
	}
	if cfg.RecheckDelay < 0 && !cfg.Fix {
		for _, s := range suspects {
			cat := rep.category(s.kind)
			cat.Items = append(cat.Items, s.diff)
		}
		return nil
	}
	// By item: the requests below go in the same order on every run.
	slices.SortStableFunc(suspects, func(a, b suspect) int {
		return cmp.Or(strings.Compare(a.diff.ID, b.diff.ID), strings.Compare(a.diff.SourceKey, b.diff.SourceKey),
			strings.Compare(a.kind, b.kind), strings.Compare(a.diff.TargetKey, b.diff.TargetKey))
	})
	retry := &migrate.Retrier{Clock: v.Clock, Tries: migrate.DefaultTransientTries}
	if cfg.RecheckDelay > 0 {
		v.Log.Info("rechecking differences", "count", len(suspects), "after", cfg.RecheckDelay)
		if err := v.Clock.Sleep(ctx, cfg.RecheckDelay); err != nil {
			return err
		}
	}
	var remaining []pending
	for _, s := range suspects {
		ex, err := v.examine(ctx, retry, s)
		if err != nil {
			return err
		}
		if ex.settled {
			rep.category(s.kind).Count--
			rep.Settled++
			continue
		}
		remaining = append(remaining, pending{s: s, ex: ex})
	}
	if cfg.Fix && len(remaining) > 0 {
		var err error
		if remaining, err = v.fix(ctx, retry, rep, remaining); err != nil {
			return err
		}
	}
	for _, p := range remaining {
		d := p.s.diff
		if p.ex.moved {
			d.InFlight = true
			rep.InFlight++
		}
		cat := rep.category(p.s.kind)
		cat.Items = append(cat.Items, d)
	}
	return nil
}

// current is a source item as it is now.
type current struct {
	gone    bool
	untrans bool
	terr    error // why it does not transform (untrans)
	res     transform.Result
	digest  migrate.Digest // of res.Item
	body    []byte
	ts      int64
}

// exam is what examining a difference again found.
type exam struct {
	settled bool
	// moved: the source item changed since the scan read it.
	moved bool
	cur   current
	// want is the target item at the key the source item maps to now (nil:
	// absent; only looked for when the source item transforms); wantOK
	// says it is the source item's copy with its current content, foreign
	// that it is another source item's.
	want    *migrate.Item
	wantOK  bool
	foreign bool
	// stray is the source item's copy at the location the scan reported,
	// which the source item no longer maps to (nil: none there).
	stray *migrate.Item
	// unaddressable: the reported location has an undefined key component,
	// which a point read cannot name.
	unaddressable bool
}

// examine looks at a difference again: the source item's current version,
// the target item where it maps now, and the target item where the scan
// saw it. The ETags it returns are the versions a fix may overwrite.
func (v *Verifier) examine(ctx context.Context, retry *migrate.Retrier, s suspect) (exam, error) {
	cur, err := v.readCurrent(ctx, retry, s.diff)
	if err != nil {
		return exam{}, err
	}
	ex := exam{cur: cur, moved: movedSince(s.src, cur)}
	wantKey := ""
	switch {
	case cur.gone:
		ex.wantOK = true // nothing to copy
	case cur.untrans:
		// The item itself is a dead-letter matter, never settled by the
		// target. A difference about a copy of it (orphaned: the copy of
		// a version that transformed) has nothing to copy: it settles once
		// the target no longer holds that copy.
		ex.wantOK = s.kind != DiffUntransformable
	default:
		wantKey = migrate.Key(cur.res.Key).String()
		it, ok, err := v.readTarget(ctx, retry, migrate.Key(cur.res.Key), cur.res.ID)
		if err != nil {
			return exam{}, err
		}
		if ok {
			ex.want = &it
			ex.foreign = !v.copyOf(it.Body, s.diff.SourceKey)
			if !ex.foreign {
				got, err := migrate.ContentDigest(it.Body, nil)
				if err != nil {
					return exam{}, fmt.Errorf("recheck target item %q: %w", it.ID, err)
				}
				ex.wantOK = got == cur.digest
			}
		}
	}
	if at := s.diff.TargetKey; at != "" && at != wantKey {
		key, err := migrate.ParseKey([]byte(at))
		if err != nil {
			return exam{}, fmt.Errorf("recheck item %q: %w", s.diff.ID, err)
		}
		if key.HasUndefined() {
			ex.unaddressable = true
		} else {
			it, ok, err := v.readTarget(ctx, retry, key, s.diff.ID)
			if err != nil {
				return exam{}, err
			}
			if ok && v.copyOf(it.Body, s.diff.SourceKey) {
				ex.stray = &it
			}
		}
	}
	ex.settled = ex.wantOK && ex.stray == nil && !ex.unaddressable
	return ex, nil
}

// movedSince reports whether the source item changed after the scan saw it.
func movedSince(was seen, cur current) bool {
	switch {
	case !was.present:
		return !cur.gone
	case cur.gone, cur.untrans != was.untrans, cur.ts != was.ts:
		return true
	case cur.untrans:
		return false
	}
	return cur.digest != was.digest
}

// copyOf reports whether a target item is a copy of the source item with
// source key srcKey (its id is the one it was read by).
func (v *Verifier) copyOf(body []byte, srcKey string) bool {
	_, sk, err := v.Transformer.SourceKeyOf(body)
	return err == nil && migrate.Key(sk).String() == srcKey
}

// readCurrent reads the source item of a difference and transforms it.
func (v *Verifier) readCurrent(ctx context.Context, retry *migrate.Retrier, d Diff) (current, error) {
	key, err := migrate.ParseKey([]byte(d.SourceKey))
	if err != nil {
		return current{}, err
	}
	var it migrate.Item
	err = retry.Do(ctx, func() error {
		var err error
		it, err = v.Source.ReadItem(ctx, key, d.ID)
		return err
	})
	if errors.Is(err, migrate.ErrNotFound) {
		return current{gone: true}, nil
	}
	if err != nil {
		return current{}, fmt.Errorf("recheck source item %q: %w", d.ID, err)
	}
	cur := current{body: it.Body, ts: migrate.LastTS(it.Body)}
	res, terr := v.Transformer.Apply(it.Body)
	if terr != nil {
		cur.untrans, cur.terr = true, terr
		return cur, nil
	}
	cur.res = res
	if cur.digest, err = migrate.ContentDigest(res.Item, nil); err != nil {
		return current{}, fmt.Errorf("recheck source item %q: %w", d.ID, err)
	}
	return cur, nil
}

// readTarget reads the target item (id, key); ok is false when absent.
func (v *Verifier) readTarget(ctx context.Context, retry *migrate.Retrier, key migrate.Key, id string) (migrate.Item, bool, error) {
	var it migrate.Item
	err := retry.Do(ctx, func() error {
		var err error
		it, err = v.Writer.Read(ctx, key, id)
		return err
	})
	if errors.Is(err, migrate.ErrNotFound) {
		return migrate.Item{}, false, nil
	}
	if err != nil {
		return migrate.Item{}, false, fmt.Errorf("recheck target item %q: %w", id, err)
	}
	return it, true, nil
}
