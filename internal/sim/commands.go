package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/migrate/cutover"
	"github.com/rekey-dev/rekey/migrate/deadletter"
	"github.com/rekey-dev/rekey/migrate/pacing"
	"github.com/rekey-dev/rekey/migrate/pipeline"
	"github.com/rekey-dev/rekey/migrate/verify"
)

// The rekey commands a process runs, wired as cmd/rekey wires them (its
// run.go, verify.go, cutover.go, deadletter.go and migration.go's
// openState), over the process's views of the service and the state.
// When cmd/rekey's wiring changes, this file follows it.

// state is what a command opened of the migration's state.
type state struct {
	store    lease.Store
	fs       *lease.FileStore // the file state, to close
	dead     migrate.DeadLetterStore
	file     *deadFile // the file state's dead letters
	defaults *migrate.DefaultUses
}

// openState opens the lease store and the dead letters and checks that
// the state belongs to this migration, as cmd/rekey's openState does.
func (p *process) openState(ctx context.Context, startFrom time.Time) (*state, error) {
	st := &state{}
	if p.w.sc.Shared {
		store, err := lease.NewCosmos(docsView{p: p, d: p.w.docs}, leasePrefix)
		if err != nil {
			return nil, err
		}
		st.store = store
	} else {
		fs, err := lease.OpenFile(p.w.stateDir())
		if err != nil {
			return nil, err
		}
		st.fs, st.store = fs, storeView{Store: fs, p: p}
	}
	want := migrate.NewMeta(sourceName, targetName, p.w.tr, startFrom)
	src, _ := p.views()
	err := migrate.Retry(ctx, func() error {
		ranges, err := src.FeedRanges(ctx)
		want.Ranges = migrate.LeaseRanges(ranges)
		return err
	})
	if err != nil {
		st.close(p)
		return nil, err
	}
	if _, err := migrate.OpenMeta(ctx, st.store, want, "sim"); err != nil {
		st.close(p)
		return nil, err
	}
	if p.w.sc.Shared {
		dead, err := deadletter.OpenDocuments(docsView{p: p, d: p.w.docs}, leasePrefix, "cosmos://state/leases")
		if err != nil {
			st.close(p)
			return nil, err
		}
		st.dead = dead
	} else {
		dead, err := deadletter.OpenFile(p.w.deadLetterPath(), deadletter.WithWriter(func(w io.Writer) io.Writer {
			return fullDisk{w: w, p: p}
		}))
		if err != nil {
			st.close(p)
			return nil, err
		}
		if n := dead.Repaired(); n > 0 {
			p.w.trace.add(p.name, "dl.repaired", "", fmt.Sprintf("cut off a torn last line of %d bytes", n))
		}
		st.file = &deadFile{FileStore: dead, p: p}
		if info, err := os.Stat(dead.Path()); err == nil {
			st.file.synced = info.Size() // what the file holds at open is on disk
		}
		st.dead = st.file
	}
	st.defaults = migrate.NewDefaultUses(st.store, p.w.tr)
	return st, nil
}

// close releases the state as the process ends: a process that exits
// flushes and closes; a crashed one only loses its lock (the OS releases
// it), and a machine crash loses what the dead-letter file had not synced.
func (st *state) close(p *process) {
	if st.file != nil {
		if p.crashed.Load() {
			if p.plan.machine { // the crash took the machine down too
				r := p.w.dice.fixed("torn", p.name)
				if err := st.file.loseUnsynced(func(n int64) int64 { return r.Int64N(n + 1) }); err != nil {
					p.w.trace.add(p.name, "dl.lost", "", "error: "+short(err))
				}
			}
		} else {
			_ = st.dead.Close()
		}
	}
	if st.fs != nil {
		_ = st.fs.Close()
	}
}

// views returns the process's views of the source and the target.
func (p *process) views() (containerView, containerView) {
	return containerView{p: p, side: "src", c: p.w.src}, containerView{p: p, side: "tgt", c: p.w.dst}
}

// writePath is how a command of p writes to the target, as cmd/rekey's
// migration.writePath builds it (flow: rekey run's flags, the defaults
// elsewhere; in bulk requests but for rekey run --bulk=false), with the
// target's provisioned throughput and the process's clock (its retry
// jitter is seeded).
func (p *process) writePath(mode pipeline.WriteMode, flow pacing.Config) *pipeline.WritePath {
	_, tgt := p.views()
	flow.ProvisionedRU = float64(4000 * p.w.sc.TargetPartitions)
	return pipeline.NewWritePath(tgt, pipeline.WritePathConfig{Mode: mode, Flow: flow, Clock: p.clock(), Log: p.logger()})
}

// runCommand is `rekey run`: the write path, the control file watched,
// the Runner with the process's clock and the Observer. Where its ranges
// start is the state's (openState).
func (p *process) runCommand(ctx context.Context, st *state, untilCaughtUp bool) (pipeline.Summary, error) {
	sc := p.w.sc
	src, _ := p.views()
	cfg := pipeline.RunConfig{
		PageSize: sc.PageSize, UntilCaughtUp: untilCaughtUp,
		ShutdownTimeout: sc.ShutdownTimeout, Owner: p.name, LeaseTTL: sc.LeaseTTL, Shared: sc.Shared,
		Mode: sc.Mode,
	}
	// --ttl-expiries left to its default, as cmd/rekey's run.go does: skip
	// when the target carries the source's defaultTtl. The two reads go to
	// the containers directly, without the process's latency and faults:
	// cmd/rekey turns their failure into apply and runs on, so a permanent
	// fault striking them would not be the run's to give up on.
	ttl, err := pipeline.DefaultTTLExpiries(ctx, &migrate.Retrier{Clock: p.clock()}, p.w.src, p.w.dst)
	if err != nil {
		ttl = pipeline.TTLApply
	}
	cfg.TTLExpiries = ttl
	mode := pipeline.WriteBulk // rekey run --bulk
	if !sc.Bulk {
		mode = pipeline.WriteItems
	}
	writes := p.writePath(mode, pacing.Config{}) // as cmd/rekey's run: no global cap on the writes in flight
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go writes.Flow().Controls.Watch(watchCtx, p.w.controlPath(), pacing.DefaultControlPoll)
	clock := p.clock()
	r := &pipeline.Runner{
		Source: src, Transformer: p.w.tr, Store: st.store, DeadLetters: st.dead,
		Writes: writes, Clock: clock, Observer: loopObserver{p},
	}
	// As cmd/rekey's run does: a run that a cutover stops (or that starts
	// while one is requested) waits for it, ends once it is recorded and
	// runs again when it is withdrawn.
	for {
		sum, err := r.Run(ctx, cfg)
		switch {
		case errors.Is(err, migrate.ErrCutoverInProgress):
		case sum.StoppedForCutover && err == nil:
		default:
			return sum, err
		}
		p.stoppedForCutover()
		p.w.trace.add(p.name, "await", "", "waiting for the cutover")
		outcome, err := migrate.AwaitCutover(ctx, st.store, clock, max(sc.LeaseTTL/4, 10*time.Millisecond))
		if err != nil || outcome == migrate.CutoverRecorded {
			return sum, err
		}
	}
}

// verifyCommand is `rekey verify` (with --fix: the state open).
func (p *process) verifyCommand(ctx context.Context, st *state, fix bool) (*verify.Report, error) {
	src, tgt := p.views()
	v := &verify.Verifier{Source: src, Target: tgt, Writer: tgt, Transformer: p.w.tr, DeadLetters: st.dead, Clock: p.clock(), Log: p.logger()}
	if fix {
		v.State, v.Defaults = st.store, st.defaults
		v.Writes = p.writePath(pipeline.WriteBulk, pacing.Config{})
	}
	return v.Verify(ctx, verify.Config{Fix: fix, RecheckDelay: verify.DefaultRecheckDelay, TempDir: p.w.dir})
}

// cutoverCommand is `rekey cutover`, with the flags cmd/rekey passes.
// progress, when set, hears each step the cutover reports.
func (p *process) cutoverCommand(ctx context.Context, st *state, quiet, timeout time.Duration, acceptDead bool, progress func(string)) (*cutover.Report, error) {
	src, tgt := p.views()
	p.accept = acceptDead
	writes := p.writePath(pipeline.WriteBulk, pacing.Config{})
	c := &cutover.Gate{
		Runner: &pipeline.Runner{Source: src, Transformer: p.w.tr, Store: st.store, DeadLetters: st.dead,
			Writes: writes, Clock: p.clock(), Observer: loopObserver{p}},
		Verifier: &verify.Verifier{Source: src, Target: tgt, Writer: tgt, Writes: writes, Transformer: p.w.tr,
			DeadLetters: st.dead, Defaults: st.defaults, Clock: p.clock(), Log: p.logger()},
		Follow:   tgt,
		Progress: progress,
	}
	return c.Run(ctx, cutover.Config{
		LeaseTTL: p.w.sc.LeaseTTL, QuietPeriod: quiet, Timeout: timeout, AcceptDeadLetter: acceptDead,
		MaxRequestTime: p.w.sc.longestRequest(),
		Run:            pipeline.RunConfig{Owner: p.name, PollInterval: 200 * time.Millisecond},
		Verify:         verify.Config{RecheckDelay: time.Second, TempDir: p.w.dir},
	})
}

// replayCommand is `rekey deadletter replay`.
func (p *process) replayCommand(ctx context.Context, st *state) (pipeline.ReplayResult, error) {
	entries, err := st.dead.List()
	if err != nil {
		return pipeline.ReplayResult{}, err
	}
	src, _ := p.views()
	r := &pipeline.Runner{Source: src, Transformer: p.w.tr, Store: st.store, DeadLetters: st.dead,
		Writes: p.writePath(pipeline.WriteBulk, pacing.Config{}), Clock: p.clock()}
	return r.Replay(ctx, entries)
}

// withState runs a command with the state open, and closes it as the
// process ends. A state that a crash left unreadable is a violation.
func (p *process) withState(ctx context.Context, startFrom time.Time, cmd func(*state) error) error {
	st, err := p.openState(ctx, startFrom)
	if err != nil {
		if !errors.Is(err, lease.ErrLocked) && !errors.Is(err, errProcessDead) && ctx.Err() == nil && !isRequestError(err) {
			p.w.check.violate(InvReadable, p.name, "the state does not open: %v", err)
		}
		return err
	}
	defer st.close(p)
	return cmd(st)
}

func isRequestError(err error) bool {
	var re *migrate.RequestError
	return errors.As(err, &re)
}

// logger sends a process's log to the trace.
func (p *process) logger() *slog.Logger {
	return slog.New(&traceHandler{p: p})
}

// traceHandler writes log records of level Info and above to the trace.
type traceHandler struct {
	p     *process
	attrs []slog.Attr
}

func (h *traceHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

// verifyScannedLog is what migrate/verify logs once it has scanned both
// containers: the checks note when (checker.verifyScanned).
const verifyScannedLog = "verify scanned both containers"

func (h *traceHandler) Handle(_ context.Context, r slog.Record) error {
	msg := r.Message
	if msg == verifyScannedLog {
		h.p.w.check.verifyScanned(h.p)
	}
	add := func(a slog.Attr) bool {
		msg += " " + a.Key + "=" + a.Value.String()
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	h.p.w.trace.add(h.p.name, "log", r.Level.String(), msg)
	return nil
}

func (h *traceHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &traceHandler{p: h.p, attrs: append(append([]slog.Attr(nil), h.attrs...), attrs...)}
}

func (h *traceHandler) WithGroup(string) slog.Handler { return h }
