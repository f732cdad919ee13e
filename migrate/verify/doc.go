// Package verify proves a copy item by item: rekey verify, and the final
// check of a cutover.
//
// Verifier.Verify scans both containers through their change feeds
// (verify.go), spills a record of each item (id, keys, a content digest) to
// bucket files by source identity (spill.go), compares one bucket at a time
// (compare.go), so memory does not grow with the containers, and reports
// the differences by kind (report.go). Each difference is examined again
// against the source item's current version (recheck.go): it settles only
// when the target then matches it. With Fix (fix.go), what remains is
// repaired through the pipeline's write path, each write conditional on the
// version examined, and examined once more.
package verify
