package rollback

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/transform"
)

// Errors of Prepare, decided with errors.Is.
var (
	// ErrNotCutOver: there is nothing to roll back: the migration has not
	// been cut over.
	ErrNotCutOver = errors.New("the migration has not been cut over")
	// ErrNoFollowPositions: the cutover was recorded by a rekey that did
	// not record where the target's change feed stood.
	ErrNoFollowPositions = errors.New("the cutover did not record where the target's change feed stood")
	// ErrRolledBack: a rollback already handed the source back.
	ErrRolledBack = errors.New("the migration has been rolled back")
)

// Reverse is the transformer of a rollback: it reads the source key's
// paths from a target item (as natural keys) and writes the item as it is,
// with the target's key paths as its "source" key, so Result.Key is the
// item's key in the source and Result.SourceKey its key in the target.
// forward is the migration's transformer.
func Reverse(forward *transform.Transformer) (*transform.Transformer, error) {
	spec, err := transform.ParseSpec(forward.SourcePaths())
	if err != nil {
		return nil, fmt.Errorf("the source's key paths as a key spec: %w", err)
	}
	tr, err := transform.New(spec, forward.TargetPaths())
	if err != nil {
		return nil, fmt.Errorf("map the target's items back to the source's key: %w", err)
	}
	return tr, nil
}

// Cutover returns the forward migration's cutover record, which a rollback
// starts from: ErrNotCutOver before a cutover, ErrNoFollowPositions for a
// cutover that did not record the target's feed, ErrRolledBack once a
// rollback handed the source back.
func Cutover(meta lease.Meta) (*lease.Cutover, error) {
	switch {
	case meta.Cutover == nil:
		return nil, fmt.Errorf("%w: nothing to roll back; the application still writes to the source", ErrNotCutOver)
	case meta.RolledBack != nil:
		return nil, fmt.Errorf("%w at %s: the application writes to the source again", ErrRolledBack, meta.RolledBack.At.UTC().Format(time.RFC3339))
	case len(meta.Cutover.Follow) == 0:
		return nil, fmt.Errorf("%w (it was recorded by an older rekey): a rollback cannot know where to start", ErrNoFollowPositions)
	}
	return meta.Cutover, nil
}

// Meta describes the rollback of a migration for its own state: a
// migration from target to source with the Reverse transformer, whose
// feed ranges are those the cutover recorded.
func Meta(forward lease.Meta, reverse *transform.Transformer, cut *lease.Cutover) lease.Meta {
	m := migrate.NewMeta(forward.Target, forward.Source, reverse, time.Time{})
	for _, p := range cut.Follow {
		m.Ranges = append(m.Ranges, p.Range)
	}
	return m
}

// StartLeases creates the rollback's leases, one per target feed range the
// cutover recorded, each starting at the recorded position; leases that
// exist (a rollback resumed, or started by another worker) are left as
// they are.
func StartLeases(ctx context.Context, store lease.Store, cut *lease.Cutover) error {
	for _, p := range cut.Follow {
		_, err := store.Create(ctx, lease.Lease{ID: lease.TokenFor(p.Range), Range: p.Range, Continuation: p.Continuation})
		if err != nil && !errors.Is(err, lease.ErrLeaseExists) {
			return fmt.Errorf("create the rollback's lease for target feed range [%s, %s): %w", p.Range.Min, p.Range.Max, err)
		}
	}
	return nil
}

// RecordRolledBack records in the forward migration's state that the
// rollback's cutover handed the source back, with a compare-and-swap.
func RecordRolledBack(ctx context.Context, forward lease.Store, rec lease.Cutover) error {
	_, err := forward.SwapMeta(ctx, func(m *lease.Meta) error {
		if m.Cutover == nil {
			return ErrNotCutOver
		}
		if m.RolledBack == nil {
			m.RolledBack = &rec
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record the rollback in the migration's state: %w", err)
	}
	return nil
}
