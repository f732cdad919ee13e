// Package rollback is rekey rollback: after a cutover, it copies what the
// application writes to the target back into the source, so that the
// application can switch back without losing a write, and hands the source
// back with a reverse cutover.
//
// A rollback is a migration of its own from the target to the source, run
// by the same pipeline (pipeline.Runner with an Applier): its own leases,
// one per target feed range, starting where the cutover recorded the
// target's change feed (lease.Cutover.Follow); its own dead letters; its
// own cutover (cutover.Gate with Check as the final check). Target items
// are mapped back by Reverse: the source key is read from the item's own
// fields, which rekey only ever added to. The write rules are the forward
// copy's, with one more: a source item changed after the cutover by anyone
// but the rollback (its _ts after the cutover's SourceHorizon, and not the
// version the rollback's Ledger recorded) is never overwritten or deleted,
// but dead-lettered as a conflict.
//
// The latest-version change feed carries no deletes: a target item the
// application deleted is deleted from the source by the reverse cutover's
// fix (Check), as the forward copy's extra items are. A source item the
// forward migration dead-lettered never reached the target (in its latest
// version): Check leaves it as it is and counts it as dead-lettered.
package rollback
