// Package status is rekey status: a migration's phase and per-range
// progress as its state records them, and, given the source, how far each
// range lags behind it (Read). It reads the state without locking it.
package status
