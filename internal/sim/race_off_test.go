//go:build !race

package sim

// raceEnabled: built with -race (see race_on_test.go).
const raceEnabled = false
