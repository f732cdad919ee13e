package migrate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rekey-dev/rekey/lease"
)

// ErrCutOver: the migration's state records a cutover. From then on the
// application writes to the target, so rekey writes nothing more to it:
// Runner.Run, Runner.Replay, Verifier.Verify with Fix and Cutover.Run refuse
// with a *CutOverError. Reading (a Verify without Fix, status) still works.
var ErrCutOver = errors.New("the migration has been cut over")

// CutOverError is the refusal of a writing command after a cutover; it
// names the cutover and says what to do. errors.Is(err, ErrCutOver) holds.
type CutOverError struct {
	// Command is what was refused: "run", "verify --fix", ...
	Command string
	// At and Items are the recorded cutover's time and verified items.
	At    time.Time
	Items int64
	// RolledBackAt is when a rollback handed the source back to the
	// application; zero when none did.
	RolledBackAt time.Time
}

func (e *CutOverError) Error() string {
	if !e.RolledBackAt.IsZero() {
		return fmt.Sprintf("%s refused: %v at %s and rolled back at %s: the application writes to the source again. "+
			"To migrate again, start a new migration with another --state (and a new target container)",
			e.Command, ErrCutOver, e.At.UTC().Format(time.RFC3339), e.RolledBackAt.UTC().Format(time.RFC3339))
	}
	return fmt.Sprintf("%s refused: %v at %s (%d items verified). The application writes to the target now, so rekey writes nothing more to it; "+
		"'rekey verify' without --fix still compares the containers, and 'rekey rollback' copies the application's writes back to the source if you must switch back. To copy again, start a new migration with another --state",
		e.Command, ErrCutOver, e.At.UTC().Format(time.RFC3339), e.Items)
}

// Is makes errors.Is(err, ErrCutOver) hold.
func (e *CutOverError) Is(target error) bool { return target == ErrCutOver }

// RefuseAfterCutover returns a *CutOverError when the state records a
// cutover, and nil when it does not or holds no migration yet. command
// names the refused command in the message. A state that cannot be read is
// an error: a writing command must not guess.
func RefuseAfterCutover(ctx context.Context, store lease.Store, command string) error {
	meta, ok, err := readPhase(ctx, store, command)
	if err != nil || !ok {
		return err
	}
	return cutOverError(meta, command)
}

// readPhase reads the meta a writing command checks; ok is false when the
// store holds no migration yet.
func readPhase(ctx context.Context, store lease.Store, command string) (lease.Meta, bool, error) {
	if store == nil {
		return lease.Meta{}, false, fmt.Errorf("%s: no migration state to check for a cutover", command)
	}
	meta, err := store.ReadMeta(ctx)
	switch {
	case errors.Is(err, lease.ErrNoMeta):
		return lease.Meta{}, false, nil
	case err != nil:
		return lease.Meta{}, false, fmt.Errorf("%s: read the state to check for a cutover: %w", command, err)
	}
	return meta, true, nil
}

// cutOverError is the refusal of command when meta records a cutover; nil
// when it does not.
func cutOverError(meta lease.Meta, command string) error {
	if meta.Cutover == nil {
		return nil
	}
	e := &CutOverError{Command: command, At: meta.Cutover.At, Items: meta.Cutover.Items}
	if meta.RolledBack != nil {
		e.RolledBackAt = meta.RolledBack.At
	}
	return e
}
