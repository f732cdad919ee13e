package sim

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rekey-dev/rekey/lease/leasetest"
	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/migrate/migratetest"
	"github.com/rekey-dev/rekey/migrate/pacing"
	"github.com/rekey-dev/rekey/transform"
)

// Names the simulated migration uses, as the CLI would derive them.
const (
	sourceName = "sim/db/source"
	targetName = "sim/db/target"
)

// leasePrefix names the migration's documents in the lease container.
var leasePrefix = migrate.LeasePrefix(migrate.ContainerRef{Database: "db", Container: "source"}, migrate.ContainerRef{Database: "db", Container: "target"})

// world is everything the processes of one simulation share: the service
// (source and target containers, the lease container), the machine's
// state directory, the application, the trace and the checks. Requests take
// effect one at a time under mu, at the virtual instant their latency ends.
type world struct {
	sc    Scenario
	dice  *dice
	t0    time.Time
	dir   string // the state directory (file state) and temp files
	src   *migratetest.Container
	dst   *migratetest.Container
	docs  *leasetest.MemDocuments // the lease container (shared state)
	tr    *transform.Transformer
	trace *trace
	check *checker
	app   *app

	mu       sync.Mutex     // the service applies one request at a time
	landings sync.WaitGroup // requests landing after their process stopped waiting
	healed   atomic.Bool    // the chaos phase is over: no more faults or crashes
	// What the final run followed: the all-versions feed, and how many of
	// its ranges had fallen back (Result.AllVersions, Result.FellBack).
	finalAllVersions bool
	finalFellBack    int
	loseCreate       func(addr string) bool // Options.loseCreate
}

// Options adjust a simulation.
type Options struct {
	// Dir is where the state directory and temp files go; a new
	// directory under the system's temp dir (or /dev/shm) when empty.
	Dir string
	// Trace, when set, receives every line of the trace.
	Trace io.Writer

	// loseCreate, when set, makes the target acknowledge a create it
	// decides on without storing it: the simulator's self-test of a
	// pipeline that loses writes.
	loseCreate func(addr string) bool
}

func newWorld(sc Scenario, opts Options) (*world, error) {
	dir, err := simDir(opts.Dir)
	if err != nil {
		return nil, err
	}
	w := &world{sc: sc, dice: newDice(sc.Seed), t0: time.Now(), dir: dir, docs: leasetest.NewMemDocuments(), loseCreate: opts.loseCreate}
	w.trace = newTrace(w.t0, dir, opts.Trace)
	w.check = newChecker(w)
	srcOpts := []migratetest.Option{migratetest.WithPartitions(sc.SourcePartitions)}
	if sc.SourceTTL {
		srcOpts = append(srcOpts, migratetest.WithDefaultTTL(time.Hour))
	}
	if sc.SourceVersions {
		srcOpts = append(srcOpts, migratetest.WithAllVersions(sc.Retention, sc.PreviousImages))
	}
	w.src, err = migratetest.New(migrate.Definition{Paths: []string{"/tenant"}, Kind: "Hash", Version: sc.SourceVersion}, srcOpts...)
	if err != nil {
		return nil, err
	}
	spec, err := transform.ParseSpec(sc.Keys)
	if err != nil {
		return nil, fmt.Errorf("key spec %q: %w", sc.Keys, err)
	}
	if w.tr, err = transform.New(spec, []string{"/tenant"}); err != nil {
		return nil, err
	}
	// A target created for a source with a time to live carries it
	// (--create-target does), so copies of expiring items expire too.
	dstOpts := []migratetest.Option{migratetest.WithPartitions(sc.TargetPartitions)}
	if sc.SourceTTL {
		dstOpts = append(dstOpts, migratetest.WithDefaultTTL(time.Hour))
	}
	w.dst, err = migratetest.New(migrate.TargetDefinition(w.tr.TargetPaths()), dstOpts...)
	if err != nil {
		return nil, err
	}
	w.app = newApp(w)
	return w, nil
}

// simDir makes the simulation's directory: under dir when given, else in
// memory (/dev/shm) when the machine has it, so that fsyncs cost nothing.
func simDir(dir string) (string, error) {
	if dir == "" {
		if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
			dir = "/dev/shm"
		}
	}
	d, err := os.MkdirTemp(dir, "rekey-sim-")
	if err != nil {
		return "", fmt.Errorf("simulation directory: %w", err)
	}
	return d, nil
}

// stateDir is the file state's directory; deadLetterPath its dead-letter
// file; controlPath the control file every worker watches.
func (w *world) stateDir() string       { return filepath.Join(w.dir, "state") }
func (w *world) deadLetterPath() string { return filepath.Join(w.stateDir(), "deadletter.jsonl") }
func (w *world) controlPath() string    { return filepath.Join(w.dir, pacing.ControlFileName) }

// elapsed is the virtual time since the simulation began.
func (w *world) elapsed() time.Duration { return time.Since(w.t0) }

// apply runs fn as the service: alone, at this virtual instant.
func (w *world) apply(fn func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	fn()
}

// sleepUntil waits until the virtual time at, or ctx's end.
func sleepUntil(ctx context.Context, w *world, at time.Duration) error {
	return migrate.SystemClock{}.Sleep(ctx, at-w.elapsed())
}

// close removes the simulation's directory.
func (w *world) close() { os.RemoveAll(w.dir) }
