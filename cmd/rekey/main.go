// Command rekey changes the partition key of an Azure Cosmos DB container
// while the application keeps running. See README.md for the commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	err := newRootCommand().ExecuteContext(ctx)
	if err == nil {
		return
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(os.Stderr, "rekey:", ee.err)
		}
		os.Exit(ee.code)
	}
	fmt.Fprintln(os.Stderr, "rekey:", err)
	os.Exit(ExitError)
}

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
