package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rekey-dev/rekey/lease"
)

// openExistingState opens the state of a migration that must already exist,
// for the commands that continue one (cutover, deadletter replay, verify
// --fix). A state that holds no migration is refused as a usage error (exit
// code 2) before anything is created: no directory, no state.json, no lease
// container.
func (mg *migration) openExistingState(ctx context.Context) error {
	store, err := openStateReadOnly(ctx, mg.flags, mg.dstClient)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	_, err = store.ReadMeta(ctx)
	_ = store.Close()
	switch {
	case errors.Is(err, lease.ErrNoMeta):
		return fmt.Errorf("%w: no migration in state %s: start one with rekey run (nothing was created)", errUsage, mg.flags.state)
	case err != nil:
		return fmt.Errorf("read state %s: %w", mg.flags.state, err)
	}
	return mg.openState(ctx, time.Time{})
}
