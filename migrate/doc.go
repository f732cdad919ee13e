// Package migrate is the vocabulary of a rekey migration and the rules
// every part of it shares; the parts themselves are its subpackages.
//
// # The pipeline
//
//	source container                                            target container
//	  | FeedRanges: one lease per feed range                          ^
//	  v                                                               |
//	[reader per range] --page--> [transform] --changes--> [writer] ---+  creates, batches per
//	  ^   RU cap (source)                                   |             target key, If-Match
//	  |                                                     |             replaces; RU cap and
//	  +--- checkpoint(continuation) once the whole page ----+             limiter per partition
//	       is durable (lease store: file | lease container)
//
//	feeds   : per range, a bookmark of the all-versions feed, then the copy
//	          from the latest-version feed, then (caught up) the all-versions
//	          feed from the bookmark: creates, replaces, deletes, key changes
//	verify  : scan both sides -> records spilled by source identity -> compare
//	          bucket by bucket -> recheck against the source's current version
//	          -> (--fix) conditional writes through the same writer
//	cutover : refuse before caught up -> request (compare-and-swap) -> workers
//	          stop -> wait for their leases, fence them -> drain -> quiet period
//	          -> final verify with fix -> no change during it -> record (what
//	          the application writes now, where the target's feed stands)
//	rollback: the pipeline from the target's feed (from the cutover's
//	          positions) into the source, by the copy's rules plus a ledger of
//	          its own writes; its cutover fixes the source (deletes included)
//
// # Phases
//
// A migration's state records its phase (lease.Meta): copying and syncing
// until a cutover is requested (lease.CutoverRequest: workers stop and take
// no lease, the cutover fences them), cut over once it is recorded
// (lease.Cutover), and, after a rollback's cutover, rolled back. Every
// command that writes checks the phase first (RefuseAfterCutover,
// RefuseDuringCutover) and refuses with an error that names it and says what
// to do (*CutOverError, *CutoverInProgressError).
//
// # Checkpoint only what is durable
//
// A feed range's continuation moves only after every item of its page is
// written to the target or recorded as a dead letter, and the dead letters
// are synced (DeadLetterStore.Sync). A crash therefore replays at most the
// pages in flight, and a replay is harmless: the writer creates first and
// replaces only a copy of the same source item. The pages of one range are
// applied in order, so an older version never overwrites a newer one.
//
// # Two change feeds
//
// The latest-version feed carries each changed item once, at its latest
// version, and no deletes; an update of a field the new key is built from
// writes the item under a second key. Following it alone leaves deleted
// items (extra) and old copies (orphaned) in the target until verify --fix
// or cutover reconciles them. The all-versions-and-deletes feed carries
// every change, deletes and expiries included, but only from "now" or a
// continuation, and only within the source's retention window.
//
// A run in all-versions mode (pipeline.ModeAuto when the source keeps
// versions, pipeline.ModeAllVersions) uses both: before a range's copy
// reads anything, its lease records an all-versions bookmark; the copy
// reads the latest-version feed; once it reaches the end, the lease
// switches to the all-versions feed from the bookmark, keeping the copy's
// continuation to fall back to. The switch is one lease write, so a crash
// resumes before or after it. Replaying the changes since the bookmark is
// harmless: per range they apply in LSN order, and each item converges to
// its last version. A delete removes the item's copy, and a key change
// the copy under the old key, only when that copy is of the same source
// item, with If-Match. A bookmark that left the retention window falls
// back to the latest-version feed, recorded in the lease (Fallback), and
// leaves what it missed to reconciliation.
//
// # What is where
//
//   - migrate (this package): the ports, every small interface the parts
//     need of the world and of each other (ports.go: Source, Target,
//     Partitioning, Containers, Limiter, RUCap, DeadLetterStore, Clock, and
//     the capabilities VersionSource, CopyFinder, TimeToLive, BulkTarget);
//     the data they carry (container.go, versions.go for the all-versions
//     feed's changes, bulk.go for bulk requests and their answers, the
//     expected charges of requests in charges.go, ranges.go with the one set of range
//     converters, key.go with the one rendering of a key); the error
//     classes (errors.go) and the one retry policy (retry.go); the content
//     digest (content.go); the rule for whether a state is this migration's
//     (meta.go, meta_defaults.go); the lease prefix (leaseprefix.go); the
//     refusal to write after a cutover (aftercutover.go) and during one,
//     and how a stopped worker learns a cutover's outcome (phase.go); the
//     settings a created target gets (settings.go); what the application
//     writes after a cutover (application.go).
//   - migrate/pipeline: rekey run: the Runner, its range loops, lease holds
//     and balancing, the writer, dead-letter replay, and the write path
//     (NewWritePath) every command that writes goes through; the modes
//     (modes.go) and the all-versions feed's writer (versionwriter.go).
//   - migrate/pacing: flow control: the per-partition limiter of the
//     target's writes, the RU caps, the control file.
//   - migrate/deadletter: the dead-letter stores: a file, or documents in
//     the lease container.
//   - migrate/verify: the item-by-item comparison, its recheck and --fix.
//   - migrate/cutover: the gate that records a cutover: its request, the
//     fences, the record.
//   - migrate/rollback: rekey rollback: the reverse Applier, the ledger of
//     its writes, the check of its cutover.
//   - migrate/plan and migrate/status: rekey plan's sample and rekey
//     status's view of a state.
//
// The state itself (leases, meta, locks) is package lease; key specs are
// package transform; the only code that speaks to Cosmos DB is
// internal/cosmos, which implements the ports. The service behaviour the
// code relies on is written down, with Microsoft's pages, in the
// repository's docs/ (docs/cosmos-service.md first).
package migrate
