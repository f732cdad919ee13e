//go:build race

package transform

// raceEnabled: the race detector makes sync.Pool drop entries on purpose, so
// allocation counts are not meaningful.
const raceEnabled = true
