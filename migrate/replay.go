package migrate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/rekey-dev/rekey/transform"
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
// After a cutover it refuses with a *CutOverError (ErrCutOver).
func (r *Runner) Replay(ctx context.Context, cfg RunConfig, entries []DeadLetter) (ReplayResult, error) {
	if err := refuseAfterCutover(ctx, r.Store, "deadletter replay"); err != nil {
		return ReplayResult{}, err
	}
	if err := cfg.Validate(); err != nil {
		return ReplayResult{}, err
	}
	cfg = cfg.withDefaults()
	r.defaults(cfg)
	w := &writer{dst: r.Target, tr: r.Transformer, limit: r.Limiter, budget: r.TargetBudget, dead: r.DeadLetters, stats: r.Stats, retry: r.retrier(cfg),
		defaults: NewDefaultUses(r.Store, r.Transformer)}
	var res ReplayResult
	for _, dl := range entries {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		res.Replayed++
		body, gone, err := r.currentSource(ctx, w.retry, dl)
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
			if err := (&run{Runner: r}).deadLetterTransform(body, terr); err != nil {
				return res, err
			}
			continue
		}
		before := r.Stats.Snapshot().DeadLettered
		if _, err := w.writePage(ctx, []change{{res: tr, source: body}}, nil); err != nil {
			return res, fmt.Errorf("replay item %q: %w", dl.SourceID, err)
		}
		if r.Stats.Snapshot().DeadLettered > before {
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
func (r *Runner) currentSource(ctx context.Context, retry *retrier, dl DeadLetter) (body []byte, gone bool, err error) {
	key, err := decodeKey(dl.SourceKey)
	if err != nil || hasUndefined(key) {
		return dl.Item, false, nil
	}
	var it Item
	err = retry.do(ctx, func() error {
		var err error
		it, err = r.Source.ReadItem(ctx, key, dl.SourceID)
		return err
	})
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, true, nil
	case err != nil:
		return nil, false, fmt.Errorf("read source item %q under key %s: %w", dl.SourceID, dl.SourceKey, err)
	}
	return it.Body, false, nil
}

// decodeKey parses a key rendered by keyJSON.
func decodeKey(raw json.RawMessage) (Key, error) {
	var parts []json.RawMessage
	if err := json.Unmarshal(raw, &parts); err != nil {
		return nil, fmt.Errorf("key %s: %w", raw, err)
	}
	key := make(Key, 0, len(parts))
	for _, p := range parts {
		var v any
		if err := json.Unmarshal(p, &v); err != nil {
			return nil, fmt.Errorf("key %s: %w", raw, err)
		}
		switch x := v.(type) {
		case string:
			key = append(key, transform.StringValue(x))
		case float64:
			key = append(key, transform.Value{Type: transform.TypeNumber, Num: x, Raw: string(p)})
		case bool:
			key = append(key, transform.Value{Type: transform.TypeBool, Bool: x})
		case nil:
			key = append(key, transform.Value{Type: transform.TypeNull})
		case map[string]any:
			key = append(key, transform.Value{Type: transform.TypeUndefined})
		default:
			return nil, fmt.Errorf("key %s: component %s is not a scalar", raw, p)
		}
	}
	return key, nil
}

func hasUndefined(k Key) bool {
	for _, v := range k {
		if v.Type == transform.TypeUndefined {
			return true
		}
	}
	return false
}
