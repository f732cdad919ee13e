// Package cutover is rekey cutover: the Gate that decides whether the
// application may switch to the target, and records that it did.
//
// It refuses before the initial copy is complete, drains every range,
// waits for the source to be quiet, refuses pending dead letters unless
// accepted, runs the final verify with fix, and proves the source did not
// change during that verify by reading the change feed past marks taken
// before it. Only then does it record the cutover in the state; from then
// on every command that writes refuses (migrate.ErrCutOver).
package cutover
