// Package lease persists the progress of a migration: one lease per feed
// range of the source container (its change-feed continuation, its owner,
// its counters) and the migration's Meta (source, target, key spec).
//
// # Stores
//
// Store is the contract; two implementations satisfy it:
//
//   - FileStore (OpenFile), a directory on one machine for `rekey run
//     --state DIR`: DIR/state.json holds the Meta, DIR/leases/<id>.json one
//     lease each, DIR/lock an OS lock (flock) held while a process uses the
//     directory. A second process fails at once with ErrLocked, told which
//     process holds it; the OS drops the lock when its holder dies, so a
//     kill -9 leaves no stale lock. Every write goes to a temp file that is
//     fsynced and renamed over its target, and the directory is fsynced: a
//     crash leaves each file old or new, never torn.
//   - CosmosStore (NewCosmos), a Cosmos DB lease container for many workers
//     (the pods of a Kubernetes Job), reached through Documents, which
//     internal/cosmos implements.
//
// Both hold the same lease documents: the change feed processor's EPK-based
// lease layout ("id", "LeaseToken", "FeedRange", "Owner",
// "ContinuationToken", "timestamp", "properties"; see document.go), with
// rekey's counters in "properties", so tooling that reads the processor's
// leases reads rekey's.
//
// # Writes are compare-and-swap
//
// Create is create-if-absent (ErrLeaseExists). Update and Delete succeed only
// if the lease still has the ETag the caller read; otherwise they fail with
// ErrLeaseLost, which means another worker has the lease now: stop working
// on it and re-read. Every Create and Update stamps Lease.Timestamp with the
// store's clock, so every checkpoint also renews the lease. Init is
// create-if-absent for the Meta and returns what is recorded; whether that
// is the caller's migration is the caller's rule (rekey's is
// migrate.OpenMeta, which refuses with ErrMetaMismatch).
//
// # Sharing leases
//
// Leaser applies the ownership rule on top of any Store: take free or
// expired leases up to a fair share, ceil(leases / active owners), steal one
// per pass from an overloaded owner, renew, release; never a lease a
// cutover fenced (Lease.Fence). A lease is expired after the longer of the
// judge's TTL and the one its writer recorded (Lease.TTL). See Leaser.
//
// # The phase
//
// The Meta records a migration's phase: a cutover's request
// (CutoverRequest, itself a lease on the migration), the cutover's record
// (Cutover: what the application writes now, where the target's change
// feed stood, the source's newest _ts), a rollback's (RolledBack). Only
// SwapMeta, a compare-and-swap, changes them; UpdateMeta keeps them.
//
// # Errors
//
// Decide with errors.Is: ErrLeaseLost, ErrLeaseExists, ErrLocked (a
// *LockedError carries the holder), ErrMetaMismatch, ErrCorrupt (the error
// names the file or document), ErrNoMeta, ErrReadOnly; and, from
// Documents implementations, ErrDocNotFound, ErrDocExists, ErrDocChanged.
//
// Package leasetest holds an in-memory Documents, a fake clock and the
// conformance suites every Store and Documents implementation must pass.
package lease
