package lease

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Errors every Store returns, decided with errors.Is.
var (
	// ErrLeaseLost: a compare-and-swap write found the lease changed or
	// deleted since it was read; another worker owns it now. Re-read it.
	ErrLeaseLost = errors.New("lease lost: it was changed by another worker")
	// ErrLeaseExists: Create found a lease with the same id.
	ErrLeaseExists = errors.New("lease already exists")
	// ErrLeaseNotFound: Read found no lease with that id.
	ErrLeaseNotFound = errors.New("lease not found")
	// ErrLocked: another process holds the state (a second `rekey run` on
	// the same --state directory).
	ErrLocked = errors.New("state is locked by another rekey process")
	// ErrMetaMismatch: the state belongs to a different migration (source,
	// target or key spec).
	ErrMetaMismatch = errors.New("state belongs to a different migration")
)

// Range is a feed range of effective partition keys [Min, Max).
type Range struct {
	Min string `json:"min"`
	Max string `json:"max"`
}

// Lease is the progress of one feed range: where its change feed was
// checkpointed, who works on it, and what it has copied. Stores persist it
// in the layout of the change feed processor's EPK-based lease documents
// (id, LeaseToken, ContinuationToken, Owner, timestamp, FeedRange), so tools
// that read those leases can read rekey's.
type Lease struct {
	// ID names the lease; stable for its life.
	ID string
	// Range is the feed range the lease covers. A split does not change
	// it: the continuation carries the children.
	Range Range
	// Continuation is the change-feed continuation to resume from; empty
	// before the first checkpoint.
	Continuation string
	// Owner is the worker that holds the lease, empty when free.
	Owner string
	// Timestamp is when the lease was last written (checkpoint or renewal);
	// a lease whose owner has not written it within the lease duration
	// has expired and may be taken over. Stores set it from their clock on
	// every Create and Update, so every write renews the lease.
	Timestamp time.Time

	// HandoffTo names a worker the lease is being handed to. While Owner
	// is set it is a request: that worker asked for the lease (a late
	// joiner balancing the load), and the owner hands it over at its next
	// checkpoint. Once Owner is cleared it is a reservation: the lease is
	// free for HandoffTo alone until its Timestamp is TTL old, then for
	// anyone. See Leaser.
	HandoffTo string

	// Mode is the change feed the range reads, whose position
	// Continuation is: ModeLatest ("" in states written before modes) or
	// ModeAllVersions.
	Mode string
	// Bookmark is the range's position in the other feed. In latest mode:
	// the all-versions bookmark taken before the range's copy started,
	// which the range switches to once its copy has caught up (empty: it
	// does not switch). In all-versions mode: the latest-version
	// continuation the copy had reached when the range switched, which it
	// falls back to if its all-versions position leaves the retention
	// window.
	Bookmark string
	// FallbackAt and Fallback record that deletes and key changes of the
	// range may have been missed: when, and why (its all-versions position
	// left the retention window; its copy started without a bookmark).
	// They are left to reconciliation (verify --fix, cutover) and stay
	// recorded once set.
	FallbackAt time.Time
	Fallback   string
	// Fence names the cutover (its owner) that holds the migration while it
	// drains and verifies: no other worker takes the lease or asks for it,
	// whoever owns it, until the fence is cleared. See Leaser.
	Fence string
	// TTL is the lease duration its last writer worked with, so that a
	// worker with another --lease-ttl judges its expiry the same; zero in
	// leases written before it was kept.
	TTL time.Duration

	// UnansweredAt is when a holder of the lease, as it released it, had
	// last sent a write it got no answer to (it gave up waiting at its
	// shutdown timeout, or the range stopped on an error); zero when every
	// write was answered. Such a write may still take effect later: a
	// cutover waits for it (cutover.Config.MaxRequestTime). A worker that
	// takes over a lease its holder let expire records the last moment
	// that holder may have sent one (TakenBy). Later holders keep it.
	UnansweredAt time.Time

	// Counters, kept with the lease so they survive restarts.
	Items          int64     // items copied (written or verified identical)
	RU             float64   // request units spent on the target for this range
	CheckpointedAt time.Time // last checkpoint that moved the continuation
	CaughtUpAt     time.Time // last time the range reached the end of its feed
	LastChangeTS   int64     // _ts of the newest source change copied

	// ETag is the store's version of the lease, for compare-and-swap.
	// Stores set it; callers pass back what they read. Instants come back
	// from a store in UTC, truncated to 100ns (the documents' precision):
	// keep the Lease a store returns rather than the one passed in.
	ETag string
}

// TakenBy returns l owned by owner, who works with ttl. A previous holder
// that let it expire (it died, or lost its hold) may have sent a write
// until half its TTL past its last renewal (Hold.Fence stops it there),
// and that write may still take effect: UnansweredAt keeps that moment,
// so that a cutover waits for it even after the lease changed hands.
func (l Lease) TakenBy(owner string, ttl time.Duration) Lease {
	if l.Owner != "" {
		if sent := l.Timestamp.Add(max(ttl, l.TTL) / 2); sent.After(l.UnansweredAt) {
			l.UnansweredAt = sent.UTC()
		}
	}
	l.Owner, l.HandoffTo, l.TTL = owner, "", ttl
	return l
}

// Expired reports whether the lease's owner has not renewed it within ttl,
// or within the TTL its writer recorded when that is longer.
func (l Lease) Expired(now time.Time, ttl time.Duration) bool {
	return l.Owner == "" || now.Sub(l.Timestamp) > max(ttl, l.TTL)
}

// ReservedFor reports whether the lease was released for worker (or for
// another worker, who may take it first) and the reservation still holds:
// it holds for ttl after the release.
func (l Lease) ReservedFor(now time.Time, ttl time.Duration) (worker string, ok bool) {
	if l.Owner != "" || l.HandoffTo == "" || now.Sub(l.Timestamp) > ttl {
		return "", false
	}
	return l.HandoffTo, true
}

// Modes of a lease: the change feed its range reads.
const (
	// ModeLatest: the latest-version change feed, each changed item once
	// at its latest version, no deletes.
	ModeLatest = "latest"
	// ModeAllVersions: the all-versions-and-deletes change feed.
	ModeAllVersions = "all-versions"
)

// ReadsAllVersions reports whether the range reads the all-versions feed.
func (l Lease) ReadsAllVersions() bool { return l.Mode == ModeAllVersions }

// Meta identifies the migration a state belongs to. It holds no secrets.
type Meta struct {
	Version        int      `json:"version"`
	Source         string   `json:"source"` // account host/database/container
	Target         string   `json:"target"`
	KeySpec        []string `json:"keySpec"`
	SourceKeyPaths []string `json:"sourceKeyPaths"`
	StartFrom      string   `json:"startFrom,omitempty"`
	// Ranges are the source's feed ranges when the migration started.
	// Every lease is one of them, so workers that create leases at the same
	// time (or fill the gaps a crash left) create the same ones. States
	// written before it was recorded have none.
	Ranges    []Range   `json:"ranges,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	// CutoverRequest is set while a cutover runs: workers stop and take no
	// lease (see CutoverRequest). Only SwapMeta changes it.
	CutoverRequest *CutoverRequest `json:"cutoverRequest,omitempty"`
	// Cutover is set once `rekey cutover` recorded a clean switch. Only
	// SwapMeta changes it.
	Cutover *Cutover `json:"cutover,omitempty"`
	// RolledBack is set once a rollback handed the source back to the
	// application (the reverse cutover). Only SwapMeta changes it.
	RolledBack *Cutover `json:"rolledBack,omitempty"`
	// DefaultsUsed lists the placeholder defaults that keys of items
	// written to the target were built with, recorded before the writes.
	// It only grows: UpdateMeta keeps every use already recorded.
	DefaultsUsed []DefaultUse `json:"defaultsUsed,omitempty"`
}

// DefaultUse records that items were written with a key built from a
// placeholder's default: placeholder Placeholder (from 0) of the template
// of key Key (from 0) of the key spec, which reads Field and had Default.
type DefaultUse struct {
	Key         int    `json:"key"`
	Placeholder int    `json:"placeholder"`
	Field       string `json:"field"`
	Default     string `json:"default"`
}

// StartTime is where the migration's change feeds start: the zero time for
// the beginning of the feed, else the recorded StartFrom. Every range
// without a continuation starts there, whenever its lease was created.
func (m Meta) StartTime() (time.Time, error) {
	if m.StartFrom == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, m.StartFrom)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: the state's startFrom %q: %w", ErrCorrupt, m.StartFrom, err)
	}
	return t, nil
}

// Cutover records a completed cutover.
type Cutover struct {
	At           time.Time `json:"at"`
	Items        int64     `json:"items"`
	VerifyDigest string    `json:"verifyDigest"`
	// Application is what the application must write from the cutover on;
	// cutovers recorded before it was kept have none.
	Application *ApplicationWrites `json:"application,omitempty"`
	// Follow is where the change feed of the container the application
	// writes from now on stood, per feed range, when the cutover was
	// recorded: a rollback reads it from there.
	Follow []FeedPosition `json:"follow,omitempty"`
	// SourceHorizon is the newest _ts (epoch seconds) of the items the
	// cutover left in the container it switched away from: one with a
	// later _ts was written after the cutover.
	SourceHorizon int64 `json:"sourceHorizon,omitempty"`
}

// FeedPosition is a position in one feed range's change feed.
type FeedPosition struct {
	Range        Range  `json:"range"`
	Continuation string `json:"continuation"`
}

// Store persists a migration's meta and leases. Writes are compare-and-swap
// on the lease's ETag, so two workers never both advance one lease.
// Implementations are safe for concurrent use.
type Store interface {
	// Init records m when the store is fresh and returns it; otherwise it
	// returns the meta already recorded (the caller compares).
	Init(ctx context.Context, m Meta) (Meta, error)
	// ReadMeta returns the recorded meta; ErrNoMeta when there is none.
	ReadMeta(ctx context.Context) (Meta, error)
	// UpdateMeta replaces the recorded meta, keeping every DefaultUse
	// already recorded (m's list is merged into the stored one) and the
	// recorded phase (CutoverRequest, Cutover, RolledBack), which only
	// SwapMeta changes.
	UpdateMeta(ctx context.Context, m Meta) error
	// SwapMeta is a compare-and-swap of the meta: it reads the recorded
	// meta, lets change edit it, and writes the result only if no other
	// write landed in between; otherwise it reads again and calls change
	// again. An error from change is returned as it is and nothing is
	// written. It returns the meta written; ErrNoMeta when there is none.
	SwapMeta(ctx context.Context, change func(*Meta) error) (Meta, error)
	// List returns every lease, ordered by Range.Min.
	List(ctx context.Context) ([]Lease, error)
	// Read returns one lease; ErrLeaseNotFound when there is none.
	Read(ctx context.Context, id string) (Lease, error)
	// Create stores a new lease; ErrLeaseExists when its id is taken.
	Create(ctx context.Context, l Lease) (Lease, error)
	// Update replaces the lease if its ETag still equals l.ETag and returns
	// it with its new ETag; ErrLeaseLost otherwise.
	Update(ctx context.Context, l Lease) (Lease, error)
	// Delete removes the lease if its ETag still equals l.ETag; ErrLeaseLost
	// otherwise.
	Delete(ctx context.Context, l Lease) error
	// Close releases what the store holds (the file store's lock).
	Close() error
}
