package migrate

import (
	"context"
	"encoding/json"
	"time"
)

// The ports: what the subsystems need of the world outside and of each
// other, as small interfaces. internal/cosmos implements the containers'
// (Source, Target, Containers), migrate/deadletter the DeadLetterStore,
// migrate/pacing the Limiter and the RUCap; tests use in-memory fakes.
// Errors follow the contract in errors.go.

// Partitioning is how a container is partitioned: its partition key
// definition, which hashes each key to its effective partition key (EPK),
// and its feed ranges of EPKs, in order: for the service, one per physical
// partition. Source and Target have it; the flow control needs no more of
// the target (pacing.NewAdaptiveLimiter).
type Partitioning interface {
	// Definition returns the container's partition key definition.
	Definition(ctx context.Context) (Definition, error)
	// FeedRanges lists the container's current feed ranges, in order.
	FeedRanges(ctx context.Context) ([]FeedRange, error)
}

// Source is the container being migrated. Implementations are safe for
// concurrent use; errors follow the contract in errors.go.
type Source interface {
	// Partitioning: the key definition and the feed ranges, which the
	// readers (one per feed range) are cut from.
	Partitioning
	// ReadChanges reads one page of a range's change feed.
	ReadChanges(ctx context.Context, req ChangeRequest) (ChangePage, error)
	// ReadItem reads the current version of an item; ErrNotFound when gone.
	ReadItem(ctx context.Context, key Key, id string) (Item, error)
	// ItemCount is the number of items the container holds, as its usage
	// statistics report it (approximate while it is written to).
	ItemCount(ctx context.Context) (int64, error)
}

// Target is the container being written. Implementations are safe for
// concurrent use; errors follow the contract in errors.go.
type Target interface {
	// Partitioning: the key definition and the feed ranges, one per
	// physical partition, which the write path paces separately.
	Partitioning
	// Create writes a new item; ErrConflict when (id, key) exists.
	Create(ctx context.Context, key Key, body []byte) (WriteResult, error)
	// Read returns an item; ErrNotFound when it does not exist.
	Read(ctx context.Context, key Key, id string) (Item, error)
	// Replace overwrites an existing item when its ETag still equals
	// ifMatch; ErrPreconditionFailed when it changed, ErrNotFound when gone.
	Replace(ctx context.Context, key Key, id string, body []byte, ifMatch string) (WriteResult, error)
	// Delete removes an item when its ETag equals ifMatch (any ETag when
	// ifMatch is empty); ErrNotFound when it does not exist.
	Delete(ctx context.Context, key Key, id string, ifMatch string) (WriteResult, error)
	// CreateBatch creates items of one logical partition atomically.
	CreateBatch(ctx context.Context, key Key, bodies [][]byte) (BatchResult, error)
}

// VersionSource is a Source that can also read the
// all-versions-and-deletes change feed. internal/cosmos implements it;
// the pipeline finds it on its Source with a type assertion.
type VersionSource interface {
	// VersionsBookmark takes the position "now" of a feed range's
	// all-versions feed without reading a change: reading from it later
	// returns every change made after it, while it stays within the
	// container's retention window. ErrAllVersionsNotEnabled when the
	// container does not keep versions.
	VersionsBookmark(ctx context.Context, fr FeedRange) (string, error)
	// ReadVersions reads one page from a bookmark or a continuation.
	// ErrOutOfRetention when the position is older than the retention
	// window; ErrAllVersionsNotEnabled when the container stopped keeping
	// versions (both also match ErrBadRequest: check them first).
	ReadVersions(ctx context.Context, req VersionRequest) (VersionPage, error)
}

// CopyFinder is a Target that can find the copies of one source item
// wherever the new key put them: the items with the id whose source key
// fields (at sourcePaths) hold sourceKey. It answers with an empty list
// when there are none, and with what the search cost. internal/cosmos
// implements it with a cross-partition query.
type CopyFinder interface {
	FindCopies(ctx context.Context, id string, sourcePaths []string, sourceKey Key) ([]Item, float64, error)
}

// TimeToLive is a container that can say its default time to live
// (defaultTtl): 0 when time to live is off, -1 when it is on without a
// default, else seconds.
type TimeToLive interface {
	DefaultTTL(ctx context.Context) (int, error)
}

// BulkTarget is a Target that also takes bulk requests: up to
// MaxBulkOperations independent operations, each with its own key and its
// own answer, bound for one physical partition, in one request
// (docs/cosmos-bulk.md). The write path uses it when the target has it
// (WritePathConfig.Mode); internal/cosmos implements it.
type BulkTarget interface {
	Target
	// PartitionsOf returns, for each key, the id of the physical partition
	// holding it, from the partitions the target knows (read once, and
	// again after a 410): keys of one id may share a bulk request. It
	// fails when the partitions cannot be read or a key does not fit the
	// target's definition.
	PartitionsOf(ctx context.Context, keys []Key) ([]string, error)
	// Bulk sends ops, at most MaxBulkOperations whose keys all belong to
	// partition, as one request. Each operation succeeds or fails alone:
	// BulkResponse.Results holds one answer per operation, in order. The
	// error is the request's, classified as in errors.go: ErrThrottled
	// (resend it all after RetryAfter), ErrGone (the partition split or
	// merged: route every operation again), ErrTooLarge (the request was
	// over the service's limit, or would have been: split it; for one
	// operation, the item is too large), ErrBadRequest, ErrTransient.
	Bulk(ctx context.Context, partition string, ops []BulkOp) (BulkResponse, error)
}

// Containers manages containers of an account: what --create-target needs.
type Containers interface {
	// ContainerDefinition returns a container's partition key definition;
	// ErrNotFound when the container (or its database) does not exist.
	ContainerDefinition(ctx context.Context, database, container string) (Definition, error)
	// CreateContainer creates a container (and its database when absent)
	// with the key definition and either manual or autoscale throughput
	// (neither: the service's default).
	CreateContainer(ctx context.Context, database, container string, def Definition, manualRU, autoscaleMaxRU int) error
	// ContainerSettings returns a container's settings (its indexing
	// policy, default TTL, unique keys, ...); ErrNotFound when it does not
	// exist.
	ContainerSettings(ctx context.Context, database, container string) (ContainerSettings, error)
	// CreateContainerWith is CreateContainer with settings in the new
	// container's definition.
	CreateContainerWith(ctx context.Context, database, container string, def Definition, settings ContainerSettings, manualRU, autoscaleMaxRU int) error
}

// Limiter decides when a request to the target may start. Acquire blocks
// until a request under key, expected to cost expectedRU (ExpectedCharge),
// may go out (or ctx ends, returning ctx.Err()); the returned release must
// be called exactly once, when the request's answer is in, with what the
// answer says: an adaptive limiter paces by the charges, reserving the
// expected one before the request and settling the difference after it,
// backs off on throttling and honours the retry-after, and refreshes its
// view of the target's partitions when one is gone (split or merged).
// pacing implements it.
//
// The writer calls Acquire once per attempt, so a retried request acquires
// again after its retry-after wait. A bulk request acquires once, under
// the key of any of its operations (they share a partition), expecting
// the sum of their charges.
//
// The contract was release(throttled bool) before the per-partition
// controller: it grew into an Outcome because pacing needs the charge, the
// pause needs the retry-after and the partition map needs to hear of
// splits; the expected charge came with bulk requests, whose charges are
// a hundred times a single write's.
type Limiter interface {
	Acquire(ctx context.Context, key Key, expectedRU float64) (release func(Outcome), err error)
}

// Outcome is what a request's answer tells a Limiter.
type Outcome struct {
	// RU is the request charge, of a failed request too (zero when the
	// answer never came).
	RU float64
	// Throttled: the service answered 429, to the request or to any
	// operation of a bulk request.
	Throttled bool
	// RetryAfter is the 429's x-ms-retry-after-ms (of a bulk request, the
	// longest of its operations').
	RetryAfter time.Duration
	// Gone: the service answered 410 (to the request or to an operation),
	// the partition was split or merged.
	Gone bool
}

// RequestSizer is a Limiter that says how large a request to key's
// partition should be: expected to cost at most RequestLimit RU, a small
// share of what the partition serves per second, so that a bulk request
// does not overshoot the partition's budget by much more than a single
// write would. 0 means any size.
type RequestSizer interface {
	RequestLimit(ctx context.Context, key Key) float64
}

// ConcurrencyAdjuster is a Limiter whose bound on requests in flight across
// all keys can change while it runs (--max-concurrency from the control
// file); n = 0 removes the bound.
type ConcurrencyAdjuster interface {
	SetMaxConcurrency(n int)
}

// RUCap caps the request units spent per second on one side of a
// migration: the target's writes or the source's change-feed reads. Before
// each request Acquire waits until the request's expected charge
// (ExpectedCharge, the sum of its operations' for a bulk request) fits
// the cap and reserves it (it fails only when ctx ends); once the answer
// is in, Settle charges what the request actually cost (0 when it was
// never sent), so the spending follows the real charges. A request should
// expect at most RequestLimit, so that no second spends more than a tenth
// over the cap. pacing.RUCap implements it; the write path always has one
// (unlimited when there is no cap).
type RUCap interface {
	Acquire(ctx context.Context, expectedRU float64) (Reservation, error)
	Settle(r Reservation, actualRU float64)
	// RequestLimit is the largest charge one request should be expected
	// to cost under the cap in force; 0 when there is no cap.
	RequestLimit() float64
}

// Reservation is what an RUCap or a pacer holds for one request: the
// charge the cost model expected and the request units reserved for it
// (the expected charge corrected by what earlier requests cost).
type Reservation struct {
	Expected float64
	Reserved float64
}

// DeadLetterStore keeps the items a migration could not write: one record
// per dead source item, its latest failure. The file store (DeadLetters)
// serves one process; DocDeadLetters keeps them as documents in the lease
// container, so the pods of a Kubernetes Job share them and none is lost
// with a pod. Memory is bounded by the number of dead items (their ids),
// never by the size of what was recorded. Implementations are safe for
// concurrent use.
//
// Errors are never swallowed: a store that cannot be read (a corrupt line,
// see ErrDeadLettersCorrupt) or written (a full disk) says so, naming the
// file or container, from every method that touches it.
type DeadLetterStore interface {
	// Add records a failed item, replacing an earlier record of it.
	Add(DeadLetter) error
	// Resolve records that an item that had failed was written after all;
	// a no-op for items that never failed.
	Resolve(sourceID string, sourceKey json.RawMessage) error
	// Sync makes every record added so far durable. The pipeline calls it
	// before it checkpoints a page; an error means the page must not be
	// checkpointed.
	Sync() error
	// Count is the number of items currently dead, or why it cannot be
	// known.
	Count() (int, error)
	// Each calls fn with every item currently dead, its latest failure,
	// one at a time (memory holds one record), stopping at fn's first
	// error, which it returns. Records added while it runs may or may not
	// be seen. The file store goes in the order items were recorded; the
	// documents store in the container's order.
	Each(fn func(DeadLetter) error) error
	// List returns every item currently dead, oldest first. It holds them
	// all in memory; prefer Each for anything that may be large.
	List() ([]DeadLetter, error)
	// Where names the store for messages: a path or a container.
	Where() string
	Close() error
}

// Clock is the time the pipeline waits by; tests replace it so that waits
// take no time.
type Clock interface {
	Now() time.Time
	// Sleep waits d or until ctx ends, returning ctx.Err() then.
	Sleep(ctx context.Context, d time.Duration) error
}

// Jitter is implemented by a Clock that also draws the retry policy's
// random waits, so that a run on a simulated clock with a seeded source
// (internal/sim) replays exactly. Int64N returns a number in [0, n). With
// any other Clock the waits come from math/rand/v2.
type Jitter interface {
	Int64N(n int64) int64
}
