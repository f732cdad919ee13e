package status

import (
	"context"
	"errors"
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
	// Stale: the owner has not renewed the lease within its TTL, so the
	// owner is most likely gone and another worker may take the lease
	// over.
	Stale bool `json:"stale,omitempty"`
	// RenewedAt is when the lease was last written (checkpoint or renewal).
	RenewedAt time.Time `json:"renewedAt,omitzero"`
	// Fence names the cutover that holds the range while it drains.
	Fence          string    `json:"fence,omitempty"`
	Items          int64     `json:"items"`
	RU             float64   `json:"ru"`
	CheckpointedAt time.Time `json:"checkpointedAt,omitzero"`
	CaughtUpAt     time.Time `json:"caughtUpAt,omitzero"`
	// LastChangeAt is the source timestamp (_ts) of the newest change
	// copied: how far the range has read in the source's time.
	LastChangeAt time.Time `json:"lastChangeAt,omitzero"`
	// CheckpointAgeSeconds is how long ago the range last moved its
	// checkpoint.
	CheckpointAgeSeconds float64 `json:"checkpointAgeSeconds"`
	// Position summarizes the checkpoint: "start" before the first.
	Position string `json:"position"`
	// Mode is the change feed the range follows (lease.ModeLatest or
	// lease.ModeAllVersions); SwitchesToAllVersions: it follows the
	// latest-version feed until its copy has caught up, then the
	// all-versions feed from the bookmark taken before the copy.
	Mode                  string `json:"mode"`
	SwitchesToAllVersions bool   `json:"switchesToAllVersions,omitempty"`
	// Fallback, when set, says why deletes and key changes of the range may
	// have been missed (since FallbackAt): they are left to reconciliation.
	Fallback   string    `json:"fallback,omitempty"`
	FallbackAt time.Time `json:"fallbackAt,omitzero"`
	// OutOfRetention: the lag probe found the range's all-versions
	// position older than the source's retention; the next run falls back.
	OutOfRetention bool `json:"outOfRetention,omitempty"`
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
	// Progress is the overall progress, when the source's item count is
	// known (WithProgress).
	Progress *Progress `json:"progress,omitempty"`
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

// Probe is which ranges Read probes for their lag.
type Probe int

const (
	// ProbeAll probes every range.
	ProbeAll Probe = iota
	// ProbeCaughtUp probes only ranges that have reached the end of their
	// feed once: the changes after their checkpoint are few, while a
	// range still copying may have millions (a periodic probe of it
	// would re-read up to 10,000 of them each time).
	ProbeCaughtUp
)

// Read reads a migration's status. When source is not nil it also
// probes each range's lag: the changes in the source after the checkpoint.
func Read(ctx context.Context, meta lease.Meta, store lease.Store, deadLetters int, source migrate.Source, now time.Time) (Report, error) {
	return ReadProbing(ctx, meta, store, deadLetters, source, ProbeAll, now)
}

// ReadProbing is Read that probes only the ranges probe selects (when
// source is not nil).
func ReadProbing(ctx context.Context, meta lease.Meta, store lease.Store, deadLetters int, source migrate.Source, probe Probe, now time.Time) (Report, error) {
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
			Mode: lease.ModeLatest, SwitchesToAllVersions: !l.ReadsAllVersions() && l.Bookmark != "",
			Fallback: l.Fallback, FallbackAt: l.FallbackAt,
			RenewedAt: l.Timestamp, Stale: Stale(l, now),
		}
		if l.ReadsAllVersions() {
			rs.Mode = lease.ModeAllVersions
		}
		if l.LastChangeTS > 0 {
			rs.LastChangeAt = time.Unix(l.LastChangeTS, 0).UTC()
		}
		if !l.CheckpointedAt.IsZero() {
			rs.CheckpointAgeSeconds = now.Sub(l.CheckpointedAt).Round(time.Second).Seconds()
		}
		if l.CaughtUpAt.IsZero() {
			allCaughtUp = false
		}
		if source != nil && (probe == ProbeAll || !l.CaughtUpAt.IsZero()) {
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

// StaleAfter is the TTL a lease is judged stale by when it records none
// (leases written before the TTL was kept): the workers' default
// --lease-ttl.
const StaleAfter = 60 * time.Second

// Stale reports whether a lease has an owner that has not written it (a
// checkpoint or a renewal) within the lease's TTL: the owner is most
// likely dead, and another worker may take the lease over.
func Stale(l lease.Lease, now time.Time) bool {
	ttl := StaleAfter
	if l.TTL > 0 {
		ttl = l.TTL // the TTL its owner works with
	}
	return l.Owner != "" && l.Expired(now, ttl)
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

// probeLag reads the source's change feed the lease follows after its
// checkpoint (without moving it) to count the changes waiting and date the
// oldest.
func probeLag(ctx context.Context, source migrate.Source, l lease.Lease, rs *Range, now time.Time) error {
	next := latestProbe(source, l)
	if l.ReadsAllVersions() {
		vs, ok := source.(migrate.VersionSource)
		if !ok {
			return nil // the lag of a feed the source cannot read is unknown
		}
		next = versionsProbe(vs, l)
	}
	var count int64
	var oldest int64
	for count < maxLagProbe {
		var n int
		var ts int64
		err := migrate.Retry(ctx, func() error {
			var err error
			n, ts, err = next(ctx)
			return err
		})
		if errors.Is(err, migrate.ErrOutOfRetention) {
			rs.OutOfRetention = true
			return nil
		}
		if err != nil {
			return err
		}
		if n == 0 {
			break
		}
		if oldest == 0 {
			oldest = ts
		}
		count += int64(n)
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

// latestProbe reads the lease's latest-version feed a page a call: how
// many changes, and the _ts of the first.
func latestProbe(source migrate.Source, l lease.Lease) func(ctx context.Context) (int, int64, error) {
	req := migrate.ChangeRequest{Range: migrate.FeedRangeOf(l.Range), Continuation: l.Continuation, PageSize: 1000}
	return func(ctx context.Context) (int, int64, error) {
		page, err := source.ReadChanges(ctx, req)
		if err != nil || len(page.Items) == 0 {
			return 0, 0, err
		}
		req.Continuation = page.Continuation
		return len(page.Items), migrate.LastTS(page.Items[0]), nil
	}
}

// versionsProbe reads the lease's all-versions feed a page a call.
func versionsProbe(vs migrate.VersionSource, l lease.Lease) func(ctx context.Context) (int, int64, error) {
	req := migrate.VersionRequest{Range: migrate.FeedRangeOf(l.Range), Continuation: l.Continuation, PageSize: 1000}
	return func(ctx context.Context) (int, int64, error) {
		page, err := vs.ReadVersions(ctx, req)
		if err != nil || len(page.Changes) == 0 {
			return 0, 0, err
		}
		req.Continuation = page.Continuation
		return len(page.Changes), page.Changes[0].TS, nil
	}
}

// Progress is a migration's progress against the source's item count.
type Progress struct {
	// SourceItems is the source's item count (its usage statistics:
	// approximate while it is written to).
	SourceItems int64 `json:"sourceItems"`
	// Percent is the items copied over SourceItems, at most 100.
	Percent float64 `json:"percent"`
	// ItemsPerSec is the rate of the copy between two reads (status
	// --watch), and ETA the time to copy what remains at that rate
	// ("1m52s"), while the phase is copying.
	ItemsPerSec float64 `json:"itemsPerSec,omitempty"`
	ETA         string  `json:"eta,omitempty"`
}

// WithProgress sets the report's Progress from the source's item count
// (nothing when it is unknown, 0) and the copy's rate (0 when unknown).
func (r *Report) WithProgress(sourceItems int64, itemsPerSec float64) {
	if sourceItems <= 0 {
		return
	}
	p := &Progress{SourceItems: sourceItems, Percent: min(100, float64(int64(1000*float64(r.Items)/float64(sourceItems)))/10)}
	if r.Phase == PhaseCopying && itemsPerSec > 0 {
		p.ItemsPerSec = float64(int64(itemsPerSec*10)) / 10
		if left := sourceItems - r.Items; left > 0 {
			p.ETA = (time.Duration(float64(left)/itemsPerSec) * time.Second).String()
		}
	}
	r.Progress = p
}
