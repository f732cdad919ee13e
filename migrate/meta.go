package migrate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/transform"
)

// MetaVersion is the version of the state layout this build writes. 2:
// the state records the placeholder defaults written items used
// (Meta.DefaultsUsed); a state of layout 1 does not know them.
const MetaVersion = 2

// NewMeta describes a migration for its state.
func NewMeta(source, target string, tr *transform.Transformer, startFrom time.Time) lease.Meta {
	m := lease.Meta{
		Version:        MetaVersion,
		Source:         source,
		Target:         target,
		KeySpec:        tr.Spec().Strings(),
		SourceKeyPaths: tr.SourcePaths(),
		CreatedAt:      time.Now().UTC(),
	}
	if !startFrom.IsZero() {
		m.StartFrom = startFrom.UTC().Format(time.RFC3339)
	}
	return m
}

// OpenMeta records want in a fresh store, or checks that the store belongs
// to the same migration: same source, target, source key paths and key
// spec. Anything else is refused with an error wrapping
// lease.ErrMetaMismatch that says how to start over.
//
// The one change it accepts is a key spec that differs only in placeholder
// defaults, and only where no item already written can be re-keyed by it:
// adding a default to a placeholder that had none (the fix for items
// dead-lettered for a missing field: every item written so far had the
// field), or changing or removing a default that no written item's key was
// built with. Writers record each default's first use in the state before
// the write (DefaultUses); a state of layout 1 did not record them, so
// there every existing default counts as used. The accepted spec is
// recorded.
func OpenMeta(ctx context.Context, store lease.Store, want lease.Meta, stateName string) (lease.Meta, error) {
	got, err := store.Init(ctx, want)
	if err != nil {
		return lease.Meta{}, fmt.Errorf("open state %s: %w", stateName, err)
	}
	if got.Version > MetaVersion {
		return lease.Meta{}, fmt.Errorf("state %s was written by a newer rekey (layout %d, this build reads %d): upgrade rekey", stateName, got.Version, MetaVersion)
	}
	var diffs []string
	if got.Source != want.Source {
		diffs = append(diffs, fmt.Sprintf("source %s (now %s)", got.Source, want.Source))
	}
	if got.Target != want.Target {
		diffs = append(diffs, fmt.Sprintf("target %s (now %s)", got.Target, want.Target))
	}
	if !slices.Equal(got.SourceKeyPaths, want.SourceKeyPaths) {
		diffs = append(diffs, fmt.Sprintf("source key paths %v (now %v)", got.SourceKeyPaths, want.SourceKeyPaths))
	}
	specChanged := !slices.Equal(got.KeySpec, want.KeySpec)
	if specChanged && !sameExceptDefaults(got.KeySpec, want.KeySpec) {
		diffs = append(diffs, fmt.Sprintf("key spec %q (now %q)", strings.Join(got.KeySpec, " "), strings.Join(want.KeySpec, " ")))
	}
	if len(diffs) > 0 {
		return lease.Meta{}, fmt.Errorf("%w: state %s records a migration with %s; resume with the same --source, --target and --key, or start over with a new --state (or delete %s)",
			lease.ErrMetaMismatch, stateName, strings.Join(diffs, ", "), stateName)
	}
	if err := checkDefaults(got, want.KeySpec, stateName); err != nil {
		return lease.Meta{}, err
	}
	if specChanged {
		// One compare-and-swap checks and records: a worker still running
		// the old spec may record a use, or another process another spec,
		// between our read and our write, and then the check runs again on
		// what they wrote.
		got, err = store.SwapMeta(ctx, func(m *lease.Meta) error {
			if !slices.Equal(m.KeySpec, got.KeySpec) && !slices.Equal(m.KeySpec, want.KeySpec) {
				return fmt.Errorf("%w: state %s now records the key spec %q: another process changed it meanwhile; resume with that spec",
					lease.ErrMetaMismatch, stateName, strings.Join(m.KeySpec, " "))
			}
			if err := checkDefaults(*m, want.KeySpec, stateName); err != nil {
				return err
			}
			m.KeySpec = want.KeySpec
			return nil
		})
		if err != nil {
			if errors.Is(err, lease.ErrMetaMismatch) {
				return lease.Meta{}, err
			}
			return lease.Meta{}, fmt.Errorf("record the new key spec defaults in state %s: %w", stateName, err)
		}
	}
	return got, nil
}

// sameExceptDefaults reports whether two key specs differ only in the
// defaults of their placeholders ({region?unknown}).
func sameExceptDefaults(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if stripDefaults(a[i]) != stripDefaults(b[i]) {
			return false
		}
	}
	return true
}

// stripDefaults removes "?default" parts from a canonical spec's placeholders.
func stripDefaults(spec string) string {
	var b strings.Builder
	depth, skipping := 0, false
	for i := 0; i < len(spec); i++ {
		c := spec[i]
		switch {
		case c == '{' && i+1 < len(spec) && spec[i+1] == '{' && depth == 0:
			b.WriteString("{{")
			i++
			continue
		case c == '{':
			depth++
		case c == '}' && depth > 0:
			depth--
			skipping = false
		case c == '?' && depth > 0:
			skipping = true
			continue
		}
		if !skipping {
			b.WriteByte(c)
		}
	}
	return b.String()
}
