// Package cutover is rekey cutover: the Gate that decides whether the
// application may switch to the target, and records that it did; a
// rollback's cutover is the same Gate with a reverse check.
//
// It refuses before the initial copy is complete, then requests the
// cutover in the state with a compare-and-swap (a second cutover is
// refused while the request is live, request.go), waits for the running
// workers to stop and fences every lease so that none takes one back. It
// drains every range itself, waits for the source to be quiet, refuses
// pending dead letters unless accepted, runs the final verify with fix,
// and proves the source did not change during that verify by reading the
// change feed past marks taken before it. Only then does it record the
// cutover, with what the application must write from now on and where
// the target's change feed stands (record.go), in the same compare-and-swap
// that removes its request; from then on every command that writes refuses
// (migrate.ErrCutOver). A cutover that does not record withdraws its
// request and fences, and the workers resume.
package cutover
