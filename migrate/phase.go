package migrate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rekey-dev/rekey/lease"
)

// ErrCutoverInProgress: a cutover has been requested in the state
// (lease.CutoverRequest) and is draining, verifying or recording: workers
// stop, and writing commands refuse with a *CutoverInProgressError until it
// is recorded (ErrCutOver from then on) or withdrawn.
var ErrCutoverInProgress = errors.New("a cutover is in progress")

// CutoverInProgressError is the refusal of a writing command while a
// cutover runs. errors.Is(err, ErrCutoverInProgress) holds.
type CutoverInProgressError struct {
	Command string
	Request lease.CutoverRequest
}

func (e *CutoverInProgressError) Error() string {
	what := "a cutover"
	switch {
	case e.Request.Rollback:
		what = "a rollback's cutover"
	case e.Request.DryRun:
		what = "a cutover --dry-run"
	}
	return fmt.Sprintf("%s refused: %s is in progress (%s, since %s): it drains and verifies the copy itself. Wait for it to finish; "+
		"if it fails or is withdrawn, run the command again (a cutover that died is withdrawn once it has not renewed its request for %s)",
		e.Command, what, e.Request.Owner, e.Request.At.UTC().Format(time.RFC3339), e.Request.TTL)
}

// Is makes errors.Is(err, ErrCutoverInProgress) hold.
func (e *CutoverInProgressError) Is(target error) bool { return target == ErrCutoverInProgress }

// RefuseDuringCutover refuses a writing command while the state records a
// cutover (*CutOverError) or a live cutover request of another owner than
// self (*CutoverInProgressError); it returns nil when the state holds
// neither, or no migration yet. A request that is no longer live (its
// cutover died) is no refusal: ClearAbandonedCutover withdraws it.
func RefuseDuringCutover(ctx context.Context, store lease.Store, command, self string, now time.Time) error {
	meta, ok, err := readPhase(ctx, store, command)
	if err != nil || !ok {
		return err
	}
	if err := cutOverError(meta, command); err != nil {
		return err
	}
	if r := meta.CutoverRequest; r.Live(now) && r.Owner != self {
		return &CutoverInProgressError{Command: command, Request: *r}
	}
	return nil
}

// ClearAbandonedCutover withdraws a cutover request whose owner stopped
// renewing it (the cutover died) once it has cleared the fences that owner
// left on leases, so that workers can resume. It reports whether it
// withdrew a request; a live request is left alone. Fences go first, then
// the request, as a cutover that withdraws does, so a crash in between
// leaves a stale request that is cleared again later. Only the stale
// owner's fences are cleared: a cutover that takes the request over
// meanwhile fences under its own name.
func ClearAbandonedCutover(ctx context.Context, store lease.Store, now time.Time) (bool, error) {
	meta, err := store.ReadMeta(ctx)
	if errors.Is(err, lease.ErrNoMeta) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read the state: %w", err)
	}
	if meta.CutoverRequest == nil || meta.CutoverRequest.Live(now) {
		return false, nil
	}
	stale := *meta.CutoverRequest
	if err := ClearFences(ctx, store, func(fence string) bool { return fence == stale.Owner }); err != nil {
		return false, err
	}
	_, err = store.SwapMeta(ctx, func(m *lease.Meta) error {
		if r := m.CutoverRequest; r == nil || r.Owner != stale.Owner || r.Live(now) {
			return errNothingToClear
		}
		m.CutoverRequest = nil
		return nil
	})
	switch {
	case errors.Is(err, errNothingToClear):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("withdraw the abandoned cutover request of %s: %w", stale.Owner, err)
	}
	return true, nil
}

var errNothingToClear = errors.New("nothing to clear")

// ClearFences clears the fence of every lease whose fence clear accepts,
// each with a compare-and-swap; a lease changed meanwhile is read again.
func ClearFences(ctx context.Context, store lease.Store, clear func(fence string) bool) error {
	for attempt := 0; ; attempt++ {
		leases, err := store.List(ctx)
		if err != nil {
			return fmt.Errorf("list leases: %w", err)
		}
		lost := false
		for _, l := range leases {
			if l.Fence == "" || !clear(l.Fence) {
				continue
			}
			l.Fence = ""
			if _, err := store.Update(ctx, l); errors.Is(err, lease.ErrLeaseLost) {
				lost = true
			} else if err != nil {
				return fmt.Errorf("clear the fence of lease %s: %w", l.ID, err)
			}
		}
		if !lost {
			return nil
		}
		if attempt == maxFenceRounds {
			return fmt.Errorf("clear lease fences: %w: the leases keep changing", lease.ErrLeaseLost)
		}
	}
}

// maxFenceRounds bounds the passes of ClearFences over leases that keep
// changing under it.
const maxFenceRounds = 8

// CutoverOutcome is how a cutover request ended, as a stopped worker learns
// it (AwaitCutover).
type CutoverOutcome int

const (
	// CutoverRecorded: the cutover is recorded; the migration is over.
	CutoverRecorded CutoverOutcome = iota + 1
	// CutoverWithdrawn: the request is gone (the cutover refused, failed,
	// was a dry run, or died and its request was withdrawn): work on.
	CutoverWithdrawn
)

// AwaitCutover waits, polling the state every poll, until the cutover
// request is recorded or withdrawn; a request that is no longer live is
// withdrawn here (ClearAbandonedCutover). The clock is the one leases are
// judged by.
func AwaitCutover(ctx context.Context, store lease.Store, clock Clock, poll time.Duration) (CutoverOutcome, error) {
	for {
		meta, err := store.ReadMeta(ctx)
		if err != nil {
			return 0, fmt.Errorf("read the state while a cutover runs: %w", err)
		}
		switch {
		case meta.Cutover != nil:
			return CutoverRecorded, nil
		case meta.CutoverRequest == nil:
			return CutoverWithdrawn, nil
		case !meta.CutoverRequest.Live(clock.Now()):
			if _, err := ClearAbandonedCutover(ctx, store, clock.Now()); err != nil {
				return 0, err
			}
			continue
		}
		if err := clock.Sleep(ctx, poll); err != nil {
			return 0, err
		}
	}
}
