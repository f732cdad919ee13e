package sim

import (
	"os"
	"runtime"
	"testing"
)

// TestMain runs the simulations on one processor: goroutines that become
// runnable at the same virtual instant then run in the order the scheduler
// queued them, which is the same on every run, so that a seed replays
// exactly. With more processors they race, and a replay may part from
// the first run (TestReplay shows where).
func TestMain(m *testing.M) {
	runtime.GOMAXPROCS(1)
	os.Exit(m.Run())
}
