package main

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/rekey-dev/rekey/lease"
)

// A usage error exits with code 2 and the cause's own text, and keeps the
// cause matchable: before, "%w: %v" flattened lease.ErrLocked and
// lease.ErrMetaMismatch into text, and exitFor trimmed a prefix off it.
func TestUsageErrorsKeepTheirCause(t *testing.T) {
	for _, cause := range []error{lease.ErrLocked, lease.ErrMetaMismatch} {
		inner := fmt.Errorf("open state ./.rekey: %w", cause)
		for name, err := range map[string]error{
			"marked":  usageErr(inner),
			"wrapped": fmt.Errorf("resume: %w", usageErr(inner)),
			"verb %w": usageErrf("--state %s: %w", "./.rekey", inner),
		} {
			if !errors.Is(err, cause) || !isUsage(err) {
				t.Errorf("%s %v: errors.Is(%v) %v, isUsage %v", name, err, cause, errors.Is(err, cause), isUsage(err))
			}
			var ee *exitError
			if !errors.As(exitFor(err), &ee) || ee.code != ExitError || ee.err.Error() != err.Error() || !errors.Is(ee, cause) {
				t.Errorf("%s: exitFor(%v) = %+v, want code %d with the error as it is", name, err, ee, ExitError)
			}
		}
	}
	if err := usageErrf("--key is required"); err.Error() != "--key is required" {
		t.Errorf("a usage error's text is %q: it adds nothing to its cause", err)
	}
	if code, msg := exitStatus(context.Background(), nil, exitFor(errors.New("write failed"))); code != ExitRunFailed || msg != "write failed" {
		t.Errorf("a failure that is not a usage error exits %d %q", code, msg)
	}
}
