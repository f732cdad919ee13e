package pipeline

import (
	"fmt"
	"time"
)

// Defaults of RunConfig.
const (
	DefaultPageSize        = 1000
	DefaultPollInterval    = time.Second
	DefaultShutdownTimeout = 10 * time.Second
	DefaultMaxInFlightMB   = 256
	DefaultLeaseTTL        = 60 * time.Second
)

// RunConfig is how `rekey run` reads and checkpoints. Zero values take the
// defaults above. How it writes is its Runner's WritePath.
type RunConfig struct {
	// PageSize is how many changes one change-feed read asks for.
	PageSize int
	// PollInterval is how long a range waits before polling again once it
	// has reached the end of its feed.
	PollInterval time.Duration
	// UntilCaughtUp makes Run return once every range has reached the end
	// of its feed, instead of following the feed until cancelled.
	UntilCaughtUp bool
	// ShutdownTimeout is how long in-flight writes may take to finish after
	// the context is cancelled; pages not finished by then are abandoned
	// (not checkpointed) and will be re-read on resume.
	ShutdownTimeout time.Duration
	// Abandon, when closed after the context is cancelled, ends the
	// shutdown at once: pages still being written are abandoned, as at
	// ShutdownTimeout (a second Ctrl+C). Safe: a page is checkpointed only
	// once durable, so an abandoned page is read again on resume.
	Abandon <-chan struct{}
	// OnShutdown, when set, is called once when the context is cancelled,
	// with the number of pages being written that the shutdown finishes:
	// what the command tells the user it is waiting for.
	OnShutdown func(pagesInFlight int)
	// MaxInFlightMB bounds the bytes of pages read but not yet
	// checkpointed, across all ranges.
	MaxInFlightMB int
	// Owner names this worker in leases (hostname/pid).
	Owner string
	// LeaseTTL is how long a lease stays owned without renewal.
	LeaseTTL time.Duration
	// Shared makes this run one of many workers sharing the leases (a
	// Kubernetes Job's pods on a cosmos:// state): it takes a fair share of
	// the leases, renews them, takes over the leases of workers that died,
	// releases its own when it stops, and with UntilCaughtUp stops once
	// every range of every worker has caught up. Without it the run takes
	// every lease (the file store's lock makes it the only worker).
	Shared bool
}

// withDefaults returns c with zero fields set to their defaults.
func (c RunConfig) withDefaults() RunConfig {
	if c.PageSize == 0 {
		c.PageSize = DefaultPageSize
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.MaxInFlightMB == 0 {
		c.MaxInFlightMB = DefaultMaxInFlightMB
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = DefaultLeaseTTL
	}
	if c.Owner == "" {
		c.Owner = "rekey"
	}
	return c
}

// Validate names the first invalid field.
func (c RunConfig) Validate() error {
	switch {
	case c.PageSize < 0 || c.PageSize > 10000:
		return fmt.Errorf("page size %d: want 1..10000", c.PageSize)
	case c.PollInterval < 0:
		return fmt.Errorf("poll interval %v: must not be negative", c.PollInterval)
	case c.ShutdownTimeout < 0:
		return fmt.Errorf("shutdown timeout %v: must not be negative", c.ShutdownTimeout)
	case c.MaxInFlightMB < 0:
		return fmt.Errorf("max in-flight MB %d: must not be negative", c.MaxInFlightMB)
	}
	return nil
}
