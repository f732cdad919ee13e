// Package pacing is the flow control of a migration's requests: how fast
// the target is written and the source read.
//
//   - AdaptiveLimiter (limiter.go) paces the target's writes per physical
//     partition: each request's key is hashed to the partition that holds
//     it, and each partition has its own controller (partition.go), paced by
//     the request charges at a rate found by AIMD (ControllerPaced), or the
//     .NET bulk executor's concurrency window (ControllerWindowed). A
//     throttled partition slows down only the writes bound for it.
//   - RUCap (rucap.go, over the pacer in pacer.go) caps the RU/s one side
//     spends, accounted from the actual charges: --max-ru, --max-source-ru.
//   - NewFixedLimiter (fixed.go) and the resizable gate (gate.go) bound the
//     requests in flight.
//   - Controls (controls.go) apply the control file's changes to a running
//     migration.
//   - Flow (flow.go) puts them together for one command; the pipeline's
//     write path is its one user.
//
// "Partition" always means a physical partition of the target (one of its
// feed ranges, as the service lists them); "range" is left to the source's
// feed ranges, which the pipeline reads.
package pacing
