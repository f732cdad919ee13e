package emulatortest

import (
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/rekey-dev/rekey/internal/emulator"
)

// DefaultSplitDelay is the split delay of a test emulator: short, so a test
// that raises throughput past a split threshold does not wait the service's
// default second, yet long enough that the parent range serves for a while.
const DefaultSplitDelay = 20 * time.Millisecond

// Option adjusts the emulator a test starts.
type Option func(*emulator.ServerOptions)

// WithKey makes the account use key (base64) instead of the well-known
// emulator key.
func WithKey(key string) Option {
	return func(o *emulator.ServerOptions) { o.Key = key }
}

// WithPlainHTTP serves http:// instead of https://.
func WithPlainHTTP() Option {
	return func(o *emulator.ServerOptions) { o.PlainHTTP = true }
}

// WithSplitDelay sets how long a throughput-triggered split takes.
func WithSplitDelay(d time.Duration) Option {
	return func(o *emulator.ServerOptions) { o.SplitDelay = d }
}

// WithLogger sends the emulator's log to l.
func WithLogger(l *slog.Logger) Option {
	return func(o *emulator.ServerOptions) { o.Logger = l }
}

// WithAdmin enables the emulator's admin API.
func WithAdmin() Option {
	return func(o *emulator.ServerOptions) { o.Admin = true }
}

// WithClock makes now the account's clock (emulator.Options.Clock): RU
// budgets, _ts, time-to-live expiry, the all-versions feed's retention and
// Entra ID token lifetimes follow it, so a test on a manual clock controls
// them by advancing it.
func WithClock(now func() time.Time) Option {
	return func(o *emulator.ServerOptions) { o.Clock = now }
}

// WithEntra makes the account accept Entra ID tokens from its test issuer
// besides the master key (emulator.Options.Entra). srv.Entra().Credential("")
// is then an azcore.TokenCredential for azcosmos.NewClient or rekey's
// cosmos.Config, whose principal is a Data Contributor; srv.ManagedIdentityEnv()
// hands the tokens to a child process's DefaultAzureCredential, and
// srv.SetLocalAuthDisabled(true) refuses the master key from then on.
func WithEntra() Option {
	return func(o *emulator.ServerOptions) { o.Entra = true }
}

// Start serves a new emulator on 127.0.0.1 at a free port and registers its
// shutdown with t.Cleanup. It fails the test when the emulator cannot start.
func Start(t testing.TB, opts ...Option) *emulator.Server {
	t.Helper()
	so := emulator.ServerOptions{Options: emulator.Options{SplitDelay: DefaultSplitDelay}}
	for _, opt := range opts {
		opt(&so)
	}
	srv, err := emulator.Start(so)
	if err != nil {
		t.Fatalf("start emulator: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("close emulator: %v", err)
		}
	})
	return srv
}

// HTTPClient returns a client that trusts srv's certificate and whose
// connections are closed when the test ends. Call it after Start: cleanups
// run last-registered first, so the connections close before the server
// shuts down, which would otherwise wait a second for each open HTTP/2
// connection to go away.
func HTTPClient(t testing.TB, srv *emulator.Server) *http.Client {
	hc := srv.HTTPClient()
	t.Cleanup(hc.CloseIdleConnections)
	return hc
}
