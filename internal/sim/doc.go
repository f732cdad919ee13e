// Package sim is a deterministic simulator of a whole rekey migration:
// the real Runner, Leaser, lease stores, writer, Verifier and Cutover, run
// unchanged over in-memory containers (migrate/migratetest) and a lease
// container (lease/leasetest), with crashes, faults, workers coming and
// going, and an application that keeps writing. A seed decides everything;
// a failing seed prints itself and replays.
//
// # Time and determinism
//
// A simulation runs inside a testing/synctest bubble: time.Now, timers and
// sleeps are virtual, and time moves only when every goroutine waits, so
// hours of a migration take a fraction of a second and the pipeline runs
// on migrate.SystemClock as it does in production. Every request to the
// service, the lease store and the dead-letter store gets a latency drawn
// from the seed, to the nanosecond, so that requests take effect at
// distinct instants, one at a time. (The code under test holds no lock
// across a request: lease.Hold and migrate.DefaultUses serialize theirs
// with a one-slot semaphore, a wait the bubble sees. A seed that stalls
// all the same is stopped after stallAfter with the goroutines that wait
// on a mutex.)
//
// Randomness is drawn per identity (seed, process, request kind, item or
// range, and how often that identity drew before: dice.go), never from one
// stream consumed in goroutine order; a crash point is such a draw per
// request, not a count of requests, since two requests of one instant (two
// leases' heartbeats) go in no fixed order; the retry policy's jitter comes
// from each process's seeded clock (migrate.Jitter); verify compares,
// rechecks and fixes in the order of the items. The simulations run on one
// processor (main_test.go), so that goroutines woken at one instant mostly
// run in the same order. The trace's hash covers what has effects
// (writes, faults, crashes, starts, exits, violations), with the lines of
// one instant sorted (trace.go). TestReplay runs seeds twice and shows
// where two runs part.
//
// Definition and FeedRanges are answered at once, as the SDK answers them
// from its caches (proc.go, cached); the AdaptiveLimiter holds a mutex
// while it reads the target's feed ranges.
//
// # The model
//
// world.go holds what the processes share: the source and target
// containers, the lease container (shared state) or the state directory
// (file state), the application, the trace and the checks.
//
// A process (proc.go) is one run of a rekey command, wired as cmd/rekey
// wires it (commands.go): a worker in a slot (workers.go), or an
// operator's cutover, verify --fix or deadletter replay. Every request it
// makes to the service, the lease store or the dead-letter store goes
// through process.do, which waits the request's latency, may fail it
// (faults.go), and crashes the process where its crash plan says: before
// a request is sent, while it travels, or after it took effect; at its
// nth lease creation, target write, checkpoint, dead-letter append or
// change-feed read, or at a time.
//
// A crash ends the process's context, and every later request of it fails
// without effect. Requests already sent to the service land at their
// instant or are lost (the seed decides); local writes (the lease files,
// the dead-letter file) do not happen. A process crash loses what the
// dead-letter file had buffered; a machine crash also loses what was
// written but not synced, and may leave a torn last line. The file state's
// lock is released, as the OS releases it.
//
// A scenario (scenario.go) expands the seed: file state with one worker,
// or shared state with 1 to 4 workers joining (some late) and leaving;
// the key spec; partitions; page size, lease TTL and shutdown timeout;
// and, enabled or not per seed (swarm testing), crashes, machine crashes,
// 429s with retry-after, 503/408s, 408s after the write took effect, 410s,
// requests slower than the lease TTL, a 503 that outlasts every retry, a
// full disk under the dead letters, splits of both containers, control-file
// changes, cutover attempts while the application writes (now and then
// right while the cutover's final verify runs; on a lease container mostly
// while the workers run, which the fenced cutover stops and which wait for
// its outcome as cmd/rekey's run does, and now and then with a second
// cutover at the same time, which must be refused), a start from now over a
// preloaded target, deletes, key-field changes and time to live; and the
// change feed the runs follow: --mode auto, latest or all-versions, a
// source that keeps the all-versions feed or not, for an hour or for less
// than a copy takes (ranges fall back), with previous images or not; and
// how rekey run writes: in bulk requests (most seeds, as the product's
// default) or not (--bulk=false), and now and then a bigger copy whose
// pages fill bulk requests. Every command's bulk requests (ports_bulk.go)
// are one request to one physical partition, routed by the process's map
// of the target's partitions (stale after a split: 410), and meet faults
// of the whole request (429, 503/408, an answer lost after it took effect,
// 410, slow) or of single operations inside it (429 for the rest of the
// request, 503, 410, 413 "response too large"); their operations take
// effect one by one, in order, also when the request lands after its
// process stopped waiting. Scenario.String prints it all.
//
// The application (app.go) creates, updates and deletes items, changes the
// fields the target key is built from, makes twins (one id under two source
// keys) and items without the key field, and writes a version "v" that only
// grows into every item.
//
// A simulation has three phases (sim.go). Chaos, where all of the above
// happens. Healthy: the faults stop, the application stops writing, a
// final `run --until-caught-up` must catch up, and a cutover accepting the
// dead letters must succeed. After the cutover: the application writes to
// the target, and run, verify --fix and deadletter replay run again.
//
// # Invariants (checks.go)
//
//   - complete-after-catch-up: once the final run (started after the last
//     write) says it caught up, every source item is in the target under
//     its new key at its latest version, or is dead-lettered (extra and
//     orphaned copies are left to the cutover).
//   - exact-after-catch-up: when that run followed the all-versions feed
//     and no range fell back (and the run did not start from now over a
//     preloaded target), the target also holds nothing no source item maps
//     to: no extra, no orphaned copy (but for dead-lettered items' earlier
//     copies, copies that expire by themselves, and a write that landed
//     after its process gave up on it).
//   - equal-after-cutover: once cut over, the target is the transformed
//     source; every difference is a counted and accepted dead letter.
//   - lease-coverage: every EPK is owned by exactly one lease.
//   - one-loop-per-range: no two loops, in one process or two, apply pages
//     of overlapping ranges at once, as the Runner tells its
//     migrate.Observer (a page is applied from before its first write
//     until it is checkpointed or abandoned).
//   - no-older-over-newer: no write replaces a version of a source item
//     with an older one (requests that land after their process died are
//     the network's doing and are not judged).
//   - exit-within-shutdown-timeout: a run returns within its shutdown
//     timeout (or, after a permanent fault, its retries) plus
//     pipeline.ExitGrace and a request's latency.
//   - cutover-only-when-equal: at the instant a cutover is recorded, the
//     copy equals the source, but for what the cutover could not see: a
//     create or update after it last read the item's range of the feed, a
//     delete after it last read the item itself, where only reads after its
//     final verify scanned the source count (the feed carries no deletes,
//     so the proof must look at the items again), a write that landed on
//     the target after its process gave up on it and after the cutover
//     last read that range of the target's feed; and no second cutover is
//     recorded.
//   - quiet-after-cutover: once a cutover is recorded, no worker sends a
//     write to the target or writes a lease in its name (it stopped for
//     the cutover, which fenced every lease).
//   - post-cutover-untouched: no rekey command writes an item the
//     application wrote to the target after the cutover.
//   - leases-released-on-shutdown: a worker that stops gracefully owns no
//     lease when it has returned (unless the lease container throttled or
//     failed it meanwhile: the release is bounded and may give up; or a
//     write of the worker's landed after it last listed the leases).
//   - state-readable-after-crash: a crash never leaves state a restart
//     cannot open.
//   - liveness: in the healthy phase the final run catches up and the
//     cutover succeeds.
//
// # Running it
//
//	go test ./internal/sim                                  # 200 seeds, the regressions, 6 replays
//	go test -short ./internal/sim                           # 20 seeds, 2 replays (the race run)
//	REKEY_SIM_SEEDS=50000 REKEY_SIM_START=1 go test -run 'TestSimulation$' -timeout 0      # in internal/sim: one shard
//	REKEY_SIM_SEEDS=50000 REKEY_SIM_START=50001 go test -run 'TestSimulation$' -timeout 0  # the other core's
//	REKEY_SIM_SEEDS=200 go test ./internal/sim -run TestReplay
//	REKEY_SIM_SEED=1234 go test ./internal/sim -run TestSimulation -v
//	REKEY_SIM_SEED=1234 REKEY_SIM_TRACE=/tmp/t go test ./internal/sim -run TestSimulation
//
// A failing seed prints its scenario, the broken invariants and the end of
// its trace: every request as it took effect (virtual time, process,
// request, item or range, outcome), every process's start, crash and exit,
// and its log. REKEY_SIM_TRACE writes the whole trace of one seed. A run
// of 1,000 seeds or more prints progress to stderr every 100 seeds
// (REKEY_SIM_PROGRESS=N), and each failing seed as it fails.
// TestRegressionSeeds runs the seeds that found bugs (sim_test.go).
//
// The approach follows FoundationDB's deterministic simulation (one seed,
// all randomness and time under the simulator's control, swarm testing of
// fault kinds, fault points where they hurt most), TigerBeetle's VOPR (a
// safety phase of faults, then a liveness phase in a healthy world; the
// options a seed expands to, printed) and Jepsen's checkers (invariants
// over the history of what took effect, such as a version that must never
// go back).
package sim
