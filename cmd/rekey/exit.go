package main

import (
	"errors"
	"fmt"

	"github.com/rekey-dev/rekey/migrate"
)

// Exit codes shared by every command. Commands document any code of their own.
const (
	ExitOK    = 0 // success
	ExitError = 2 // bad input, configuration or an unexpected failure
)

// exitError carries a specific process exit code out of a command.
type exitError struct {
	code int
	err  error // printed to stderr when not nil
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// withExitCode returns an error that makes rekey exit with code; err may be nil
// when the command already printed everything the user needs.
func withExitCode(code int, err error) error { return &exitError{code: code, err: err} }

// usageError is a mistake in the flags, the configuration or the state a
// command was pointed at, reported with exit code 2 (exitFor). It keeps its
// cause, so errors.Is still finds lease.ErrLocked or lease.ErrMetaMismatch
// under it, and adds no text of its own.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }

func (e *usageError) Unwrap() error { return e.err }

// usageErr marks err as a usage error.
func usageErr(err error) error { return &usageError{err: err} }

// usageErrf formats a usage error; a %w verb keeps its cause.
func usageErrf(format string, args ...any) error { return usageErr(fmt.Errorf(format, args...)) }

// isUsage reports whether err is, or wraps, a usage error.
func isUsage(err error) bool {
	var u *usageError
	return errors.As(err, &u)
}

// exitFor maps an error to its exit code: 2 for usage and configuration and
// for a writing command refused after a cutover or during one, 1 for
// anything that failed while working.
func exitFor(err error) error {
	if refusedByPhase(err) || isUsage(err) {
		return withExitCode(ExitError, err)
	}
	return withExitCode(ExitRunFailed, err)
}

// refusedByPhase reports whether a writing command was refused because the
// migration is cut over or a cutover is in progress.
func refusedByPhase(err error) bool {
	return errors.Is(err, migrate.ErrCutOver) || errors.Is(err, migrate.ErrCutoverInProgress)
}

// readExit is how a command that only reads a migration (status,
// deadletter list) fails: exit code 2, whatever could not be read.
func readExit(err error) error {
	if isUsage(err) {
		return exitFor(err)
	}
	return withExitCode(ExitError, err)
}
