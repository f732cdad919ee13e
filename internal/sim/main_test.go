package sim

import (
	"os"
	"runtime"
	"runtime/debug"
	"testing"
)

// TestMain runs the simulations on one processor: goroutines that become
// runnable at the same virtual instant then run in the order the scheduler
// queued them, which is the same on every run, so that a seed replays
// exactly. With more processors they race, and a replay may part from
// the first run (TestReplay shows where).
//
// Unless GOGC is set, the collector runs at a quarter of its default pace
// (GOGC=400): a simulation allocates much and keeps little, and it spends
// an eighth less CPU for about 200 MB of heap.
func TestMain(m *testing.M) {
	runtime.GOMAXPROCS(1)
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	os.Exit(m.Run())
}
