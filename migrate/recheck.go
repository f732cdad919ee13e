package migrate

import (
	"context"
	"errors"
	"fmt"

	"github.com/rekey-dev/rekey/transform"
)

// recheckAndFix looks at each difference again after the recheck delay:
// those that settled, or whose source item changed while verify ran, are
// in flight, not failures. With Fix, what remains is repaired and looked at
// once more.
func (v *Verifier) recheckAndFix(ctx context.Context, cfg VerifyConfig, rep *VerifyReport, suspects []suspect) error {
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
	retry := &retrier{clock: v.Clock, tries: DefaultTransientTries}
	if cfg.RecheckDelay > 0 {
		v.Log.Info("rechecking differences", "count", len(suspects), "after", cfg.RecheckDelay)
		if err := v.Clock.Sleep(ctx, cfg.RecheckDelay); err != nil {
			return err
		}
	}
	remaining := suspects[:0]
	for _, s := range suspects {
		if cfg.RecheckDelay < 0 {
			remaining = append(remaining, s)
			continue
		}
		settled, err := v.recheck(ctx, retry, rep, s)
		if err != nil {
			return err
		}
		if settled {
			rep.category(s.kind).Count--
			rep.InFlight++
		} else {
			remaining = append(remaining, s)
		}
	}
	if cfg.Fix && len(remaining) > 0 {
		if err := v.fix(ctx, retry, rep, remaining); err != nil {
			return err
		}
		still := remaining[:0]
		for _, s := range remaining {
			settled, err := v.recheck(ctx, retry, rep, s)
			if err != nil {
				return err
			}
			if settled {
				rep.category(s.kind).Count--
			} else {
				still = append(still, s)
			}
		}
		rep.Fix.Remaining = int64(len(still))
		remaining = still
	}
	for _, s := range remaining {
		cat := rep.category(s.kind)
		cat.Items = append(cat.Items, s.diff)
	}
	return nil
}

// current is a source item as it is now.
type current struct {
	gone    bool
	untrans bool
	res     transform.Result
	body    []byte
	ts      int64
}

// readCurrent reads the source item of a difference and transforms it.
func (v *Verifier) readCurrent(ctx context.Context, retry *retrier, rep *VerifyReport, d Diff) (current, error) {
	key, err := decodeKey([]byte(d.SourceKey))
	if err != nil {
		return current{}, err
	}
	var it Item
	err = retry.do(ctx, func() error {
		var err error
		it, err = v.Source.ReadItem(ctx, key, d.ID)
		return err
	})
	if errors.Is(err, ErrNotFound) {
		return current{gone: true}, nil
	}
	if err != nil {
		return current{}, fmt.Errorf("recheck source item %q: %w", d.ID, err)
	}
	cur := current{body: it.Body, ts: lastTS(it.Body)}
	res, terr := v.Transformer.Apply(it.Body)
	if terr != nil {
		cur.untrans = true
		return cur, nil
	}
	cur.res = res
	return cur, nil
}

// readTarget reads the target item (id, key); ok is false when absent.
func (v *Verifier) readTarget(ctx context.Context, retry *retrier, key Key, id string) (Item, bool, error) {
	var it Item
	err := retry.do(ctx, func() error {
		var err error
		it, err = v.Writer.Read(ctx, key, id)
		return err
	})
	if errors.Is(err, ErrNotFound) {
		return Item{}, false, nil
	}
	if err != nil {
		return Item{}, false, fmt.Errorf("recheck target item %q: %w", id, err)
	}
	return it, true, nil
}

// recheck reports whether a difference no longer holds.
func (v *Verifier) recheck(ctx context.Context, retry *retrier, rep *VerifyReport, s suspect) (bool, error) {
	cur, err := v.readCurrent(ctx, retry, rep, s.diff)
	if err != nil {
		return false, err
	}
	if s.ts != 0 && cur.ts != s.ts {
		return true, nil // changed since the scan read it: in flight
	}
	switch s.kind {
	case DiffMissing, DiffChanged:
		if cur.gone {
			return true, nil // deleted meanwhile: nothing to copy
		}
		if cur.untrans {
			return false, nil
		}
		want, err := ContentDigest(cur.res.Item, nil)
		if err != nil {
			return false, err
		}
		it, ok, err := v.readTarget(ctx, retry, Key(cur.res.Key), cur.res.ID)
		if err != nil || !ok {
			return false, err
		}
		got, err := ContentDigest(it.Body, nil)
		return err == nil && got == want, err
	case DiffExtra, DiffOrphaned:
		key, err := decodeKey([]byte(s.diff.TargetKey))
		if err != nil {
			return false, nil
		}
		_, ok, err := v.readTarget(ctx, retry, key, s.diff.ID)
		if err != nil {
			return false, err
		}
		if !ok {
			return true, nil // removed meanwhile
		}
		// Still there: right only if its source item exists again and maps here.
		return !cur.gone && !cur.untrans && string(keyJSON(cur.res.Key)) == s.diff.TargetKey, nil
	default: // collisions and untransformable items are dead-letter matters
		return false, nil
	}
}

// fix repairs differences: deletes target items that should not be there
// and copies again, from the source's current version, those that are
// missing or changed (through the writer, so collisions stay detected).
func (v *Verifier) fix(ctx context.Context, retry *retrier, rep *VerifyReport, suspects []suspect) error {
	if v.Writer == nil || v.DeadLetters == nil {
		return fmt.Errorf("verify --fix needs the target and the dead-letter file")
	}
	rep.Fix = &FixReport{}
	w := &writer{dst: v.Writer, tr: v.Transformer, retry: retry, limit: NewFixedLimiter(8), dead: v.DeadLetters, stats: &Stats{}, defaults: v.Defaults}
	for _, s := range suspects {
		switch s.kind {
		case DiffExtra, DiffOrphaned:
			key, err := decodeKey([]byte(s.diff.TargetKey))
			if err != nil {
				continue
			}
			err = retry.do(ctx, func() error {
				_, err := v.Writer.Delete(ctx, key, s.diff.ID, "")
				return err
			})
			if err != nil && !errors.Is(err, ErrNotFound) {
				return fmt.Errorf("fix: delete %s item %q: %w", s.kind, s.diff.ID, err)
			}
			rep.Fix.Deleted++
		case DiffMissing, DiffChanged:
			cur, err := v.readCurrent(ctx, retry, rep, s.diff)
			if err != nil {
				return err
			}
			if cur.gone || cur.untrans {
				continue
			}
			if _, err := w.writePage(ctx, []change{{res: cur.res, source: cur.body}}, nil); err != nil {
				return fmt.Errorf("fix: copy item %q: %w", s.diff.ID, err)
			}
			rep.Fix.Copied++
		}
	}
	return v.DeadLetters.Sync()
}
