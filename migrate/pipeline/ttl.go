package pipeline

import (
	"context"
	"fmt"

	"github.com/rekey-dev/rekey/migrate"
)

// DefaultTTLExpiries is RunConfig.TTLExpiries when the user gives none:
// TTLSkip when the target carries the source's time to live (the same
// defaultTtl, on), so that the copy of an item that expires in the source
// expires in the target by itself; TTLApply otherwise, so that the copy is
// deleted with its source item. It reads both containers' defaultTtl; an
// error names the container that could not be read.
//
// A copy is written after its source item, so with TTLSkip it outlives the
// item by the copy's lag behind the source (its _ts is later); TTLApply
// removes it when the all-versions feed carries the expiry. The reads go
// under retry (its clock times the backoffs).
func DefaultTTLExpiries(ctx context.Context, retry *migrate.Retrier, source, target migrate.TimeToLive) (string, error) {
	var src, dst int
	err := retry.Do(ctx, func() error {
		var err error
		src, err = source.DefaultTTL(ctx)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("read the source's defaultTtl: %w", err)
	}
	err = retry.Do(ctx, func() error {
		var err error
		dst, err = target.DefaultTTL(ctx)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("read the target's defaultTtl: %w", err)
	}
	if src != 0 && src == dst {
		return TTLSkip, nil
	}
	return TTLApply, nil
}
