package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/rekey-dev/rekey/internal/cosmos"
	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/migrate/deadletter"
)

// Exit codes shared by every command (the README's "Exit codes" table).
// Commands name their own meaning of 1 and 3 next to their constants
// (ExitDiffers, ExitRefused, ...).
const (
	ExitOK    = 0 // success
	ExitError = 2 // bad flags, configuration or state; a key, container or certificate the account refuses
	// ExitIncomplete: a command that answers a question (verify, plan,
	// cutover) could not finish, so it gives no answer.
	ExitIncomplete = 3
)

// failureExit is the code of a command's failure while it worked (a
// service error after its retries, a refused connection): 3 "could not
// complete" for the commands whose 1 is an answer (differs, a problem
// found, differences remain), 2 for the commands that only read the state,
// 1 "failed" for the others (run, rollback, deadletter replay, demo, bench).
var failureExit = map[string]int{
	"rekey verify":           ExitIncomplete,
	"rekey rollback verify":  ExitIncomplete,
	"rekey plan":             ExitIncomplete,
	"rekey cutover":          ExitIncomplete,
	"rekey rollback cutover": ExitIncomplete,
	"rekey status":           ExitError,
	"rekey deadletter list":  ExitError,
}

// exitFailed stands, in an exitError, for the failure code of the command
// that returned it (failureExit), which exitStatus resolves.
const exitFailed = -1

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

// exitFor is how a command returns an error it has not given a code of its
// own: 2 for usage, configuration and state and for a writing command
// refused after a cutover or during one; otherwise the command's failure
// code (failureExit), resolved by exitStatus.
func exitFor(err error) error {
	if refusedByPhase(err) || isUsage(err) || badState(err) {
		return withExitCode(ExitError, err)
	}
	return withExitCode(exitFailed, err)
}

// refusedByPhase reports whether a writing command was refused because the
// migration is cut over or a cutover is in progress.
func refusedByPhase(err error) bool {
	return errors.Is(err, migrate.ErrCutOver) || errors.Is(err, migrate.ErrCutoverInProgress)
}

// badState reports whether err is a state that cannot be used as it is:
// corrupt, holding no migration, another migration's, or locked.
func badState(err error) bool {
	for _, target := range []error{lease.ErrCorrupt, lease.ErrNoMeta, lease.ErrMetaMismatch, lease.ErrLocked, deadletter.ErrCorrupt} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// readExit is how a command that only reads a migration (status,
// deadletter list) fails: exit code 2, whatever could not be read.
func readExit(err error) error {
	if isUsage(err) {
		return exitFor(err)
	}
	return withExitCode(ExitError, err)
}

// exitStatus is the one mapping from what a command returned to rekey's
// exit code and the message printed after "rekey: " on stderr (empty when
// the command printed all there is to say). main and the tests call it
// with the context the command ran under and the command cobra ran (nil
// when none was found).
//
// In order: a stop by SIGINT/SIGTERM (ctx done) is 130; an account that
// refused the key, a container that does not exist, a TLS handshake that
// failed are 2 with a sentence that says so; a bad state is 2; a refused
// connection is the command's failure code with a sentence; anything else
// keeps the code the command gave it (2 when it gave none).
func exitStatus(ctx context.Context, cmd *cobra.Command, err error) (code int, msg string) {
	if err == nil {
		return ExitOK, ""
	}
	code, msg = ExitError, err.Error()
	var ee *exitError
	if errors.As(err, &ee) {
		code, msg = ee.code, ""
		if ee.err != nil {
			msg = ee.err.Error()
		}
	}
	failed := ExitRunFailed
	if cmd != nil {
		if c, ok := failureExit[cmd.CommandPath()]; ok {
			failed = c
		}
	}
	if code == exitFailed {
		code = failed
	}
	switch {
	case ctx.Err() != nil || errors.Is(err, context.Canceled):
		if errors.Is(err, context.Canceled) {
			msg = "interrupted"
		}
		return ExitInterrupted, msg
	case ee != nil && ee.err == nil:
		return code, ""
	}
	if m, ok := accountMessage(cmd, err); ok {
		return ExitError, m
	}
	if m, ok := connectionMessage(err); ok {
		return failed, m
	}
	if badState(err) {
		return ExitError, msg
	}
	return code, msg
}

// accountMessage says what an account refused: the key (401), access (403),
// a container that does not exist, or the TLS handshake. ok is false for
// any other error.
func accountMessage(cmd *cobra.Command, err error) (string, bool) {
	var (
		re      *migrate.RequestError
		missing *migrate.MissingContainerError
		tlsErr  *cosmos.TLSError
	)
	switch {
	case errors.As(err, &missing):
		return missing.Error(), true
	case errors.As(err, &tlsErr):
		cause := tlsErr.Err
		var verify *tls.CertificateVerificationError
		if errors.As(cause, &verify) {
			cause = verify.Err
		}
		hint := ""
		if loopback(tlsErr.Endpoint) {
			hint = ": for the emulator's self-signed certificate, add --insecure"
		}
		if !errors.Is(tlsErr, cosmos.ErrUntrustedCertificate) {
			if loopback(tlsErr.Endpoint) {
				hint = ": for an emulator started with --http, use an http:// endpoint"
			}
			return fmt.Sprintf("%s does not answer in TLS (%v)%s", tlsErr.Endpoint, cause, hint), true
		}
		return fmt.Sprintf("the TLS certificate of %s is not trusted (%v)%s", tlsErr.Endpoint, cause, hint), true
	case errors.As(err, &re) && re.Status == http.StatusUnauthorized:
		return fmt.Sprintf("the %s was refused by %s: check %s", credential(cmd), endpointOf(cmd, re), credentialFlags(cmd)), true
	case errors.As(err, &re) && re.Status == http.StatusForbidden:
		return fmt.Sprintf("%s refused access (403 Forbidden): %s", endpointOf(cmd, re), re.Message), true
	}
	return "", false
}

// connectionMessage says why no connection was made: refused, or a name
// that does not resolve.
func connectionMessage(err error) (string, bool) {
	var (
		re  *migrate.RequestError
		dns *net.DNSError
	)
	endpoint := "the endpoint"
	if errors.As(err, &re) && re.Endpoint != "" {
		endpoint = re.Endpoint
	}
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("could not connect to %s: connection refused (check --endpoint, and that the account or the emulator is up)", endpoint), true
	case errors.As(err, &dns):
		return fmt.Sprintf("could not connect to %s: the name %s does not resolve (check --endpoint)", endpoint, dns.Name), true
	}
	return "", false
}

// credential names what authenticated the command's requests: an account
// key when one was given (flag, environment or config file), else Entra ID.
func credential(cmd *cobra.Command) string {
	if keyGiven(cmd) {
		return "account key"
	}
	return "Entra ID credential"
}

// credentialFlags names the flags that carry the command's keys.
func credentialFlags(cmd *cobra.Command) string {
	if keyGiven(cmd) {
		return "--account-key or --connection-string (REKEY_ACCOUNT_KEY, REKEY_CONNECTION_STRING)"
	}
	return "the identity's Cosmos DB data-plane role"
}

func keyGiven(cmd *cobra.Command) bool {
	if cmd == nil {
		return false
	}
	for _, name := range []string{"account-key", "connection-string", "target-account-key", "target-connection-string"} {
		if f := cmd.Flags().Lookup(name); f != nil && f.Value.String() != "" {
			return true
		}
	}
	return false
}

// endpointOf is the endpoint a failed request went to, else --endpoint.
func endpointOf(cmd *cobra.Command, re *migrate.RequestError) string {
	if re.Endpoint != "" {
		return re.Endpoint
	}
	if cmd != nil {
		if f := cmd.Flags().Lookup("endpoint"); f != nil && f.Value.String() != "" {
			return f.Value.String()
		}
	}
	return "the account"
}

// loopback reports whether endpoint is on this machine, where the emulator
// runs.
func loopback(endpoint string) bool {
	u, err := url.Parse(endpoint)
	if err != nil {
		return false
	}
	if u.Hostname() == "localhost" {
		return true
	}
	ip := net.ParseIP(u.Hostname())
	return ip != nil && ip.IsLoopback()
}
