package migrate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/transform"
)

// A placeholder default ({customerId?none}) builds the key of every item
// that lacks the field. Once such an item is written, its copy sits under a
// key built with that default; a resume with another default would build
// another key for the item's next version and leave the old copy behind (a
// missing item under the new key, an orphan under the old one). So the
// state records, before the first write that uses each default, that it
// was used (DefaultUses), and OpenMeta refuses a change of a used default
// (checkDefaults).

// checkDefaults refuses a key spec whose defaults differ from those that
// keys already written were built with: a recorded use whose default the
// spec changes or removes, or, in a state of layout 1 (which recorded no
// uses), any change or removal of an existing default. The error wraps
// lease.ErrMetaMismatch and says what to do.
func checkDefaults(got lease.Meta, wantSpec []string, stateName string) error {
	recorded, err := transform.ParseSpec(got.KeySpec)
	if err != nil {
		return fmt.Errorf("state %s: the recorded key spec: %w", stateName, err)
	}
	next, err := transform.ParseSpec(wantSpec)
	if err != nil {
		return fmt.Errorf("key spec: %w", err)
	}
	rp, np := recorded.Placeholders(), next.Placeholders()
	if len(rp) != len(np) {
		return fmt.Errorf("%w: state %s records the key spec %q, not %q", lease.ErrMetaMismatch, stateName, strings.Join(got.KeySpec, " "), strings.Join(wantSpec, " "))
	}
	for i, n := range np {
		r := rp[i]
		changed := r.HasDefault && (!n.HasDefault || n.Default != r.Default)
		var why string
		for _, u := range got.DefaultsUsed {
			if u.Key == n.Key && u.Placeholder == n.Index && (!n.HasDefault || u.Default != n.Default) {
				why = fmt.Sprintf("items already written to the target have keys built with the default %q", u.Default)
				break
			}
		}
		if why == "" && changed && got.Version < 2 {
			why = fmt.Sprintf("a rekey older than this state layout recorded the migration without noting which defaults written items used, so the default %q counts as used", r.Default)
		}
		if why == "" {
			continue
		}
		change := fmt.Sprintf("removes the default of {%s}", n.Field)
		if n.HasDefault {
			change = fmt.Sprintf("sets the default of {%s} to %q", n.Field, n.Default)
		}
		return fmt.Errorf("%w: state %s: the key spec %s in --key %s, but %s: their next versions would be written under "+
			"another key while their copies stay under the old one (missing and orphaned items). Resume with the recorded "+
			"key spec (--key %s), or, to re-key those items deliberately, start a new migration into a new target with a new --state",
			lease.ErrMetaMismatch, stateName, change, next.Keys()[n.Key].Path, why, quoteSpec(got.KeySpec))
	}
	return nil
}

// quoteSpec writes a key spec as --key arguments for a shell.
func quoteSpec(spec []string) string {
	q := make([]string, len(spec))
	for i, s := range spec {
		q[i] = "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
	}
	return strings.Join(q, " --key ")
}

// DefaultUses records in a migration's state which placeholder defaults
// the keys of written items were built with, before the items are written,
// so that OpenMeta refuses a later change of those defaults. The writer
// calls Record before every write; after a placeholder's first use it costs
// one atomic load. Safe for concurrent use. A nil *DefaultUses records
// nothing (tests and benchmarks without a state).
type DefaultUses struct {
	store lease.Store
	spec  []string
	phs   []transform.Placeholder

	// turn lets one Record at a time read and write the meta: a one-slot
	// semaphore a waiter gives up on when its context ends.
	turn     chan struct{}
	recorded atomic.Uint64 // transform.DefaultSet known to be in the state
}

// NewDefaultUses records the defaults of tr's key spec in store; nil when
// store is nil.
func NewDefaultUses(store lease.Store, tr *transform.Transformer) *DefaultUses {
	if store == nil || tr == nil {
		return nil
	}
	return &DefaultUses{store: store, spec: tr.Spec().Strings(), phs: tr.Spec().Placeholders(), turn: make(chan struct{}, 1)}
}

// Record makes durable, in the state, that items whose keys took the
// defaults in used are about to be written; call it before writing them,
// and write nothing if it fails. An error wrapping lease.ErrMetaMismatch
// means the state no longer records this process's key spec, or records a
// use of another default for one of these placeholders (another worker
// resumed the migration with other defaults): stop, and resume with the
// recorded spec.
func (d *DefaultUses) Record(ctx context.Context, used transform.DefaultSet) error {
	if d == nil || used == 0 || used&^transform.DefaultSet(d.recorded.Load()) == 0 {
		return nil
	}
	select {
	case d.turn <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("record the key defaults used: %w", ctx.Err())
	}
	defer func() { <-d.turn }()
	fresh := used &^ transform.DefaultSet(d.recorded.Load())
	if fresh == 0 {
		return nil
	}
	// One compare-and-swap checks and records, so that two workers with
	// different defaults never both pass the check.
	_, err := d.store.SwapMeta(ctx, func(meta *lease.Meta) error {
		if !slices.Equal(meta.KeySpec, d.spec) {
			return fmt.Errorf("%w: the state now records the key spec %q, not %q, which this process writes with: another process resumed the migration with other defaults; stop this one and resume with the recorded spec",
				lease.ErrMetaMismatch, strings.Join(meta.KeySpec, " "), strings.Join(d.spec, " "))
		}
		var add []lease.DefaultUse
		for i, ph := range d.phs {
			if !ph.HasDefault || !fresh.Has(i) {
				continue
			}
			for _, u := range meta.DefaultsUsed {
				if u.Key == ph.Key && u.Placeholder == ph.Index && u.Default != ph.Default {
					return fmt.Errorf("%w: the state records items written with the default %q of {%s}, and this process would write %q: another process wrote with other defaults; stop and resume with one key spec",
						lease.ErrMetaMismatch, u.Default, ph.Field, ph.Default)
				}
			}
			add = append(add, lease.DefaultUse{Key: ph.Key, Placeholder: ph.Index, Field: ph.Field, Default: ph.Default})
		}
		meta.DefaultsUsed = lease.MergeDefaultUses(meta.DefaultsUsed, add)
		return nil
	})
	if err != nil {
		if errors.Is(err, lease.ErrMetaMismatch) {
			return err
		}
		return fmt.Errorf("record the key defaults used: %w", err)
	}
	d.recorded.Store(d.recorded.Load() | uint64(fresh))
	return nil
}
