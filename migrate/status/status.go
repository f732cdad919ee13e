package status

import (
	"context"
	"fmt"
	"time"

	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/migrate"
)

// Phases of a migration, as `rekey status` names them.
const (
	PhaseNotStarted  = "not started"  // no lease yet
	PhaseCopying     = "copying"      // some range has not yet reached the end of its feed
	PhaseSyncing     = "syncing"      // every range caught up at least once; following the feed
	PhaseCuttingOver = "cutting over" // a cutover is requested: workers stop, the cutover drains and verifies
	PhaseCutOver     = "cut over"     // rekey cutover recorded a clean switch
	PhaseRollingBack = "rolling back" // cut over, and a rollback copies the application's writes back to the source
	PhaseRolledBack  = "rolled back"  // a rollback handed the source back to the application
)

// maxLagProbe bounds how many pending changes the lag probe counts per range.
const maxLagProbe = 10_000

// Range is the progress of one feed range.
type Range struct {
	ID    string `json:"id"`
	Min   string `json:"min"`
	Max   string `json:"max"`
	Owner string `json:"owner,omitempty"`
	// Fence names the cutover that holds the range while it drains.
	Fence          string    `json:"fence,omitempty"`
	Items          int64     `json:"items"`
	RU             float64   `json:"ru"`
	CheckpointedAt time.Time `json:"checkpointedAt,omitzero"`
	CaughtUpAt     time.Time `json:"caughtUpAt,omitzero"`
	// CheckpointAgeSeconds is how long ago the range last moved its
	// checkpoint.
	CheckpointAgeSeconds float64 `json:"checkpointAgeSeconds"`
	// Position summarizes the checkpoint: "start" before the first.
	Position string `json:"position"`
	// Lag, when the source was probed: the changes waiting after the
	// checkpoint (capped at 10,000, then LagItemsAtLeast is set) and how old
	// the oldest of them is.
	LagItems        *int64   `json:"lagItems,omitempty"`
	LagItemsAtLeast bool     `json:"lagItemsAtLeast,omitempty"`
	LagSeconds      *float64 `json:"lagSeconds,omitempty"`
}

// Report is a migration's state as its lease store and dead-letter file
// record it.
type Report struct {
	Meta        lease.Meta `json:"meta"`
	Phase       string     `json:"phase"`
	Items       int64      `json:"items"`
	RU          float64    `json:"ru"`
	DeadLetters int        `json:"deadLetters"`
	Ranges      []Range    `json:"ranges"`
	// Rollback is the rollback's own progress, once one has started: its
	// Meta and ranges are those of a migration from the target to the
	// source, and its phase cut over once it handed the source back.
	Rollback *Report `json:"rollback,omitempty"`
}

// WithRollback adds a rollback's progress to a migration's status; the
// migration's phase becomes rolling back until the rollback's cutover.
func (r *Report) WithRollback(rb Report) {
	r.Rollback = &rb
	if r.Phase == PhaseCutOver {
		r.Phase = PhaseRollingBack
	}
}

// Read reads a migration's status. When source is not nil it also
// probes each range's lag: the changes in the source after the checkpoint.
func Read(ctx context.Context, meta lease.Meta, store lease.Store, deadLetters int, source migrate.Source, now time.Time) (Report, error) {
	leases, err := store.List(ctx)
	if err != nil {
		return Report{}, fmt.Errorf("list leases: %w", err)
	}
	st := Report{Meta: meta, DeadLetters: deadLetters}
	allCaughtUp := len(leases) > 0
	for _, l := range leases {
		rs := Range{
			ID: l.ID, Min: l.Range.Min, Max: l.Range.Max, Owner: l.Owner, Fence: l.Fence, Items: l.Items, RU: l.RU,
			CheckpointedAt: l.CheckpointedAt, CaughtUpAt: l.CaughtUpAt, Position: position(l),
		}
		if !l.CheckpointedAt.IsZero() {
			rs.CheckpointAgeSeconds = now.Sub(l.CheckpointedAt).Round(time.Second).Seconds()
		}
		if l.CaughtUpAt.IsZero() {
			allCaughtUp = false
		}
		if source != nil {
			if err := probeLag(ctx, source, l, &rs, now); err != nil {
				return Report{}, fmt.Errorf("probe the lag of range %s: %w", l.ID, err)
			}
		}
		st.Items += l.Items
		st.RU += l.RU
		st.Ranges = append(st.Ranges, rs)
	}
	switch {
	case meta.RolledBack != nil:
		st.Phase = PhaseRolledBack
	case meta.Cutover != nil:
		st.Phase = PhaseCutOver
	case meta.CutoverRequest.Live(now):
		st.Phase = PhaseCuttingOver
	case len(leases) == 0:
		st.Phase = PhaseNotStarted
	case allCaughtUp:
		st.Phase = PhaseSyncing
	default:
		st.Phase = PhaseCopying
	}
	return st, nil
}

// position describes a lease's checkpoint for humans.
func position(l lease.Lease) string {
	if l.Continuation == "" {
		return "start"
	}
	if l.LastChangeTS > 0 {
		return "changes up to " + time.Unix(l.LastChangeTS, 0).UTC().Format(time.RFC3339)
	}
	return "checkpointed"
}

// probeLag reads the source's change feed after the lease's checkpoint
// (without moving it) to count the changes waiting and date the oldest.
func probeLag(ctx context.Context, source migrate.Source, l lease.Lease, rs *Range, now time.Time) error {
	req := migrate.ChangeRequest{Range: migrate.FeedRangeOf(l.Range), Continuation: l.Continuation, PageSize: 1000}
	var count int64
	var oldest int64
	for count < maxLagProbe {
		var page migrate.ChangePage
		err := migrate.Retry(ctx, func() error {
			var err error
			page, err = source.ReadChanges(ctx, req)
			return err
		})
		if err != nil {
			return err
		}
		if len(page.Items) == 0 {
			break
		}
		if oldest == 0 {
			oldest = migrate.LastTS(page.Items[0])
		}
		count += int64(len(page.Items))
		req.Continuation = page.Continuation
	}
	rs.LagItems = &count
	rs.LagItemsAtLeast = count >= maxLagProbe
	lag := 0.0
	if count > 0 && oldest > 0 {
		lag = now.Sub(time.Unix(oldest, 0)).Round(time.Second).Seconds()
	}
	rs.LagSeconds = &lag
	return nil
}
