//go:build race

package sim

// raceEnabled: built with -race, whose runtime shuffles the order in which
// goroutines made runnable together run (runtime.randomizeScheduler), so
// a seed need not replay.
const raceEnabled = true
