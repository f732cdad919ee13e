// Package pipeline is rekey run: it copies a source container into a
// target with a new key and keeps the copy in sync from the source's change
// feed.
//
// A Runner takes the leases of the source's feed ranges (every lease, or
// with a shared state its fair share, see lease.Leaser) and runs one range
// loop per lease (rangeloop.go): a reader fetches the next change-feed page
// while the applier transforms the previous one, writes it and checkpoints
// the lease. The feed a range follows is its lease's mode (modes.go): the
// latest-version feed, or, in all-versions mode, the latest-version feed
// for the copy and then the all-versions-and-deletes feed from a bookmark
// taken before it, whose pages a versionWriter applies (versionwriter.go):
// each item's net change written, deleted copies and the old copies of key
// changes removed with If-Match, only when they are copies of the same
// source item. A heartbeat renews each lease whatever the pages do; writes
// stop at the lease's fence once the hold is lost (leases.go).
//
// Every command that writes to the target does so through a WritePath
// (writepath.go): the target, its flow control (migrate/pacing), the retry
// policy and the command's logger. Its Writer (writer.go) never overwrites
// silently: it creates, reads what exists and replaces only a copy of the
// same source item; anything it cannot write becomes a dead letter.
// Replay (replay.go) writes dead-lettered items again, beside running
// workers: it reads each item's source version again after its write and
// resolves the dead letter only when the write stood. A Runner with an
// Applier writes each page by the Applier's rules instead (a rollback).
//
// A shared Runner looks for a cutover request at each balancing pass: it
// then stops as on a shutdown (every range checkpoints what it wrote and
// releases its lease) and reports StoppedForCutover; it never takes a
// lease a cutover fenced (lease.Leaser).
//
// The checkpoint rule: a page's continuation is written only after every
// item of the page is written or dead-lettered and the dead letters are
// synced. Run and Replay never change the Runner they are called on.
package pipeline
