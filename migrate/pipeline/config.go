package pipeline

import (
	"fmt"
	"time"

	"github.com/rekey-dev/rekey/lease"
)

// Defaults of RunConfig.
const (
	DefaultPageSize        = 1000
	DefaultPollInterval    = time.Second
	DefaultShutdownTimeout = 10 * time.Second
	DefaultMaxInFlightMB   = 256
	DefaultLeaseTTL        = 60 * time.Second
)

// Modes of RunConfig.Mode: which change feed the ranges follow.
const (
	// ModeAuto follows the all-versions feed when the source keeps one
	// (a change feed policy or continuous backup), else the latest-version
	// feed.
	ModeAuto = "auto"
	// ModeLatest copies and syncs from the latest-version change feed:
	// each changed item once at its latest version, no deletes; deletes
	// and key changes are left to reconciliation (verify --fix, cutover).
	ModeLatest = lease.ModeLatest
	// ModeAllVersions copies from the latest-version feed, then follows
	// the all-versions-and-deletes feed from a bookmark taken before the
	// copy, applying creates, replaces, deletes and key changes; it fails
	// when the source does not keep versions.
	ModeAllVersions = lease.ModeAllVersions
)

// What RunConfig.TTLExpiries does with a source item's deletion by its
// time to live (all-versions mode only).
const (
	// TTLApply deletes the item's copy, as for any delete.
	TTLApply = "apply"
	// TTLSkip leaves the copy to expire by the target's own time to live.
	TTLSkip = "skip"
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
	// what the command tells the user it is waiting for. It returns before
	// Run does.
	OnShutdown func(pagesInFlight int)
	// MaxInFlightMB bounds the bytes of pages read but not yet
	// checkpointed, across all ranges.
	MaxInFlightMB int
	// Owner names this worker in leases (hostname/pid).
	Owner string
	// LeaseTTL is how long a lease stays owned without renewal.
	LeaseTTL time.Duration
	// Mode is the change feed the ranges follow: ModeAuto (the default),
	// ModeLatest or ModeAllVersions.
	Mode string
	// TTLExpiries says what a source item's expiry by its time to live
	// does to its copy: TTLApply (the default) or TTLSkip. See
	// DefaultTTLExpiries.
	TTLExpiries string
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
	if c.Mode == "" {
		c.Mode = ModeAuto
	}
	if c.TTLExpiries == "" {
		c.TTLExpiries = TTLApply
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
	case c.Mode != "" && c.Mode != ModeAuto && c.Mode != ModeLatest && c.Mode != ModeAllVersions:
		return fmt.Errorf("mode %q: want %s, %s or %s", c.Mode, ModeAuto, ModeLatest, ModeAllVersions)
	case c.TTLExpiries != "" && c.TTLExpiries != TTLApply && c.TTLExpiries != TTLSkip:
		return fmt.Errorf("ttl expiries %q: want %s or %s", c.TTLExpiries, TTLApply, TTLSkip)
	}
	return nil
}
