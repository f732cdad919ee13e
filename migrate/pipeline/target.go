package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/rekey-dev/rekey/migrate"
)

// TargetOptions say whether and how EnsureTarget may create the target.
type TargetOptions struct {
	Create         bool
	ManualRU       int
	AutoscaleMaxRU int
	// Settings, when set, decides the settings a target it creates gets
	// (migrate.CarrySettings on the source's); it is called only when the
	// target is created, and its error refuses the creation.
	Settings func(ctx context.Context) (migrate.ContainerSettings, error)
}

// EnsureTarget makes sure the target container exists with the key
// definition want before anything is written: it checks an existing one
// (safe to re-run, as a restarted Kubernetes Job does; its settings are
// left as they are) and creates an absent one when allowed, with the
// settings opts.Settings decides; when another worker creates it first
// (409), it checks that one. A mismatch is an error naming both
// definitions.
func EnsureTarget(ctx context.Context, c migrate.Containers, ref migrate.ContainerRef, want migrate.Definition, opts TargetOptions) (created bool, err error) {
	if opts.ManualRU > 0 && opts.AutoscaleMaxRU > 0 {
		return false, fmt.Errorf("give either a manual throughput or an autoscale maximum for the target, not both")
	}
	var got migrate.Definition
	err = migrate.Retry(ctx, func() error {
		var err error
		got, err = c.ContainerDefinition(ctx, ref.Database, ref.Container)
		return err
	})
	switch {
	case errors.Is(err, migrate.ErrNotFound) && opts.Create:
		var settings migrate.ContainerSettings
		if opts.Settings != nil {
			if settings, err = opts.Settings(ctx); err != nil {
				return false, fmt.Errorf("create target container %s: %w", ref, err)
			}
		}
		err := migrate.Retry(ctx, func() error {
			return c.CreateContainerWith(ctx, ref.Database, ref.Container, want, settings, opts.ManualRU, opts.AutoscaleMaxRU)
		})
		switch {
		case errors.Is(err, migrate.ErrConflict):
			// Another worker (a pod of the same Job) created it first:
			// check its definition as an existing target's.
			opts.Create = false
			return EnsureTarget(ctx, c, ref, want, opts)
		case err != nil:
			return false, fmt.Errorf("create target container %s: %w", ref, err)
		}
		return true, nil
	case errors.Is(err, migrate.ErrNotFound):
		return false, fmt.Errorf("target container %s does not exist: create it partitioned on %v (%s), or pass --create-target", ref, want.Paths, want.Kind)
	case err != nil:
		return false, fmt.Errorf("read target container %s: %w", ref, err)
	}
	if !slices.Equal(got.Paths, want.Paths) || (len(want.Paths) > 1 && got.Kind != "MultiHash") {
		return false, fmt.Errorf("target container %s is partitioned on %v (%s), but the key spec writes %v (%s): create a new target container, or change --key",
			ref, got.Paths, got.Kind, want.Paths, want.Kind)
	}
	return false, nil
}
