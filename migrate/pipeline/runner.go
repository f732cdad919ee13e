package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/transform"
)

// Runner copies a source container into a target with a new key and keeps
// the copy in sync from the source's change feed: one reader per feed range,
// each range's pages applied in order, a range's continuation checkpointed
// only after every item of its page is durably written or dead-lettered.
//
// Run and Replay change nothing of the Runner: what they default, they
// default in the state of their own call.
type Runner struct {
	Source      migrate.Source
	Transformer *transform.Transformer
	Store       lease.Store
	DeadLetters migrate.DeadLetterStore
	// Writes is how the run writes to the target (NewWritePath): the flow
	// control, which also paces the source's reads, the retry policy and
	// the logger. Required.
	Writes *WritePath
	// Clock times the run: polls, heartbeats, lease times, checkpoints;
	// the real clock when nil.
	Clock migrate.Clock
	// Stats, when set, counts the run, so that progress output can read it
	// while Run works; each call counts into stats of its own when nil.
	Stats *Stats
	// Observer, when set, is told when each page starts and ends being
	// applied (migrate.Observer); nil in production.
	Observer migrate.Observer
	// Applier, when set, writes each page in place of the Transformer and
	// the write path's Writer: a rollback writes the target's changes back
	// into the source by its own rules. The range loops, leases and
	// checkpoints are the same; such a run follows the latest-version
	// change feed only (RunConfig.Mode auto resolves to latest, and
	// all-versions is refused).
	Applier PageApplier
}

// PageApplier writes one page of changes for a Runner (Runner.Applier).
// ApplyPage writes or dead-letters every item of the page, calling fence
// before every request (it may hold the request back or refuse it, see
// lease.Hold.Fence), and returns the request units it spent; an error
// stops the run and the page is not checkpointed. The Runner syncs the
// dead letters and checkpoints the page after it returns.
type PageApplier interface {
	ApplyPage(ctx context.Context, items [][]byte, fence func(context.Context) error) (ru float64, err error)
}

// Summary is the outcome of Run.
type Summary struct {
	Stats StatsSnapshot
	// DeadLetters is the number of items in the dead-letter store now; -1
	// when a run stopped by its context could not count them in time.
	DeadLetters int
	// CaughtUp: every range reached the end of its feed (UntilCaughtUp).
	CaughtUp bool
	// Interrupted: the context was cancelled; what was durable is
	// checkpointed.
	Interrupted bool
	// StoppedForCutover: a cutover was requested (or recorded) while the
	// run worked: it stopped reading, checkpointed what it had written and
	// released its leases, for the cutover to drain them.
	StoppedForCutover bool
	Ranges            int
	// AllVersions: this run followed the all-versions-and-deletes feed
	// once each range's copy had caught up (RunConfig.Mode, and what the
	// source keeps). Fallbacks counts the ranges whose lease records a
	// fallback: deletes and key changes that feed may not have carried,
	// left to reconciliation (verify --fix, cutover).
	AllVersions bool
	Fallbacks   int
}

// ErrStopped is returned with a Summary when Run stopped before finishing
// its work for a reason other than the context (a range lost its lease).
var ErrStopped = errors.New("migration stopped")

// Run migrates until the context is cancelled or, with UntilCaughtUp, until
// every range has caught up. The store must hold the migration's Meta
// (OpenMeta): ranges without a continuation start at its StartFrom.
//
// It refuses once a cutover is recorded (*migrate.CutOverError) or while
// another worker's cutover is requested (*migrate.CutoverInProgressError),
// after withdrawing a request whose cutover died. With Shared, a cutover
// requested while it runs stops it at its next balancing pass, as a
// shutdown does (Summary.StoppedForCutover), and it takes no lease a
// cutover fenced.
//
// Before anything is read, the leases must cover the whole EPK space: gaps
// (a crash while the first leases were created) are filled from the
// migration's feed ranges (Meta.Ranges), so every item has exactly one
// lease. Each lease this worker works on is held (lease.Hold) and renewed
// by a heartbeat independent of page progress; writes stop at its fence,
// and a lease this process already works on is never worked on twice.
//
// On cancellation it stops reading, tells OnShutdown how many pages are in
// flight, gives them ShutdownTimeout (or until Abandon closes) to finish,
// checkpoints those that did, releases its leases and returns a Summary
// with Interrupted set and a nil error. A failure that must stop
// the run (a transient error that outlasted its retries, refused
// credentials, a dead-letter file that cannot be written, a lost lease
// without Shared) stops every range the same way and is returned, naming
// its range, within ShutdownTimeout.
func (r *Runner) Run(ctx context.Context, cfg RunConfig) (Summary, error) {
	if r.Writes == nil {
		return Summary{}, errNoWritePath
	}
	if err := cfg.Validate(); err != nil {
		return Summary{}, err
	}
	cfg = cfg.withDefaults()
	run := r.newRun(cfg)
	run.began = run.clock.Now()
	if err := run.refuseDuringCutover(ctx); err != nil {
		return Summary{}, err
	}
	if err := run.resolveFeed(ctx); err != nil {
		return Summary{}, err
	}
	meta, err := r.Store.ReadMeta(ctx)
	if err != nil {
		return Summary{}, fmt.Errorf("read the migration's state: %w", err)
	}
	startFrom, err := meta.StartTime()
	if err != nil {
		return Summary{}, err
	}
	holds, err := run.leases(ctx, meta)
	if err != nil {
		if cfg.Shared {
			wctx, cancel := wrapUpContext(ctx)
			run.wrapUpLeases(wctx)
			cancel()
		}
		return Summary{}, err
	}

	// Reading stops with ctx (or when every range caught up, or one
	// failed); writes in flight get ShutdownTimeout more.
	readCtx, stopReading := context.WithCancel(ctx)
	defer stopReading()
	writeCtx, stopWriting := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWriting()
	shutdownDone := make(chan struct{})
	go func() {
		defer close(shutdownDone)
		<-readCtx.Done()
		if ctx.Err() != nil && cfg.OnShutdown != nil {
			cfg.OnShutdown(int(run.pages.Load()))
		}
		t := time.NewTimer(cfg.ShutdownTimeout)
		defer t.Stop()
		select {
		case <-t.C:
			stopWriting()
		case <-cfg.Abandon:
			stopWriting()
		case <-writeCtx.Done():
		}
	}()
	// OnShutdown is never called after Run returned.
	defer func() {
		stopReading()
		stopWriting()
		<-shutdownDone
	}()

	run.startFrom, run.pending, run.stopReading = startFrom, len(holds), stopReading
	g := new(errgroup.Group)
	startRange := func(h *lease.Hold) {
		id := h.Lease().ID
		run.mu.Lock()
		prev := run.loops[id]
		done := make(chan struct{})
		run.loops[id] = done
		run.mu.Unlock()
		run.started.Add(1)
		g.Go(func() error {
			defer close(done)
			if prev != nil {
				// Never two loops of one range in a process: the old one
				// lost its hold (it expired) and is on its way out.
				<-prev
			}
			err := run.rangeLoop(readCtx, writeCtx, h)
			if cfg.Shared && errors.Is(err, ErrStopped) {
				run.log.Info("a lease was taken over by another worker; stopped working on it", "range", id, "reason", err)
				return nil
			}
			if err != nil {
				stopReading() // one range failing stops the others, after they checkpoint
			}
			return err
		})
	}
	for _, h := range holds {
		startRange(h)
	}
	if cfg.Shared {
		g.Go(func() error { return run.balance(readCtx, startRange) })
	}
	err = g.Wait()
	run.deadLog.flush()
	if serr := r.DeadLetters.Sync(); err == nil && serr != nil {
		err = serr
	}
	wctx, cancel := wrapUpContext(ctx)
	defer cancel()
	dead, cerr := run.countDeadLetters(wctx)
	switch {
	case cerr == nil:
	case err == nil && ctx.Err() != nil:
		// Stopped cleanly: the count is only for the summary, and no
		// reason to turn the stop into a failure.
		run.log.Warn("could not count the dead letters as the run stopped; rekey status counts them", "err", cerr)
		dead = -1
	case err == nil:
		err = fmt.Errorf("count dead letters: %w", cerr)
	}
	fallbacks := run.wrapUpLeases(wctx)
	sum := Summary{
		Stats:       run.stats.Snapshot(),
		DeadLetters: dead,
		CaughtUp:    run.caughtUp(),
		Interrupted: ctx.Err() != nil,
		Ranges:      int(run.started.Load()),
		AllVersions: run.versions != nil,
		Fallbacks:   fallbacks,

		StoppedForCutover: run.stoppedForCutover.Load(),
	}
	return sum, err
}

// How long Run may take to end once its work stopped: each lease's release
// (its loops release in parallel) and then the wrap-up, the final count of
// the dead letters and, shared, the release of leases left in this
// worker's name. Each request is retried within its bound, then given up.
const (
	releaseTimeout = 2 * time.Second
	wrapUpTimeout  = 3 * time.Second
	// ExitGrace is how long Run may take, past its ShutdownTimeout (or a
	// fatal error's retries), to return.
	ExitGrace = releaseTimeout + wrapUpTimeout
)

// wrapUpContext bounds the wrap-up of a run, whether or not ctx, the
// run's, was cancelled: a run stopped by SIGTERM still wraps up.
func wrapUpContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), wrapUpTimeout)
}

// countDeadLetters counts the dead letters for the Summary under the run's
// retry policy: a lease container throttles like any other.
func (run *run) countDeadLetters(ctx context.Context) (int, error) {
	var n int
	err := run.retry.Do(ctx, func() error {
		var err error
		n, err = run.dead.Count()
		return err
	})
	return n, err
}

// errNoWritePath is returned by a Runner without a WritePath.
var errNoWritePath = errors.New("the runner has no write path (NewWritePath)")

// newRun is the state of one call of Run or Replay: what the Runner leaves
// unset resolved to its default here, never in the Runner.
func (r *Runner) newRun(cfg RunConfig) *run {
	clock := r.Clock
	if clock == nil {
		clock = migrate.SystemClock{}
	}
	stats := r.Stats
	if stats == nil {
		stats = &Stats{}
	}
	stats.start(time.Now())
	wp := r.Writes
	dead := newLoggedDeadLetters(r.DeadLetters, wp.log, clock)
	w := wp.writer(r.Transformer, dead, migrate.NewDefaultUses(r.Store, r.Transformer), stats)
	rn := &run{
		readAtStart: stats.read.Load(),
		source:      r.Source, tr: r.Transformer, store: r.Store, dead: dead, deadLog: dead,
		clock: clock, log: wp.log, stats: stats, retry: wp.retrier(stats), sourceCap: wp.flow.SourceCap,
		w:          w,
		applier:    r.Applier,
		cfg:        cfg,
		observer:   r.Observer,
		inFlight:   semaphore.NewWeighted(int64(cfg.MaxInFlightMB) << 20),
		loops:      map[string]chan struct{}{},
		unanswered: map[string]time.Time{},
	}
	rn.vw = newVersionWriter(rn, w, r.Transformer, cfg.TTLExpiries == TTLSkip)
	return rn
}

// run is the shared state of one Run.
type run struct {
	source  migrate.Source
	tr      *transform.Transformer
	store   lease.Store
	dead    migrate.DeadLetterStore
	deadLog *loggedDeadLetters // dead, logging each item; flushed when the call ends
	clock   migrate.Clock
	log     *slog.Logger
	stats   *Stats
	// readAtStart is stats' changes read when this Run started: the
	// Runner's Stats may count earlier calls too.
	readAtStart int64
	retry       *migrate.Retrier // the write path's policy, counting into stats
	sourceCap   migrate.RUCap    // the RU cap of the source's reads
	// sourcePages sizes the source's pages to its RU cap.
	sourcePages sourcePages
	w           *Writer
	vw          *versionWriter // applies the all-versions feed through w
	applier     PageApplier    // writes pages in place of w, when set
	// versions is the source's all-versions feed when this run follows it
	// (resolveFeed); nil: the latest-version feed only.
	versions migrate.VersionSource

	cfg       RunConfig
	began     time.Time           // when Run started, by clock
	observer  migrate.Observer    // nil in production
	startFrom time.Time           // where ranges without a continuation start
	inFlight  *semaphore.Weighted // bytes of pages read and not yet checkpointed
	pages     atomic.Int64        // pages with items read and not yet applied or dropped

	mu      sync.Mutex
	pending int // ranges not yet caught up
	// stopReading ends the run's reading: every range applies and
	// checkpoints the page in hand, and writes get ShutdownTimeout more.
	// Called once every range caught up (UntilCaughtUp), and at once when
	// a range fails, so that a failure stops the run within its shutdown
	// timeout however long the page in hand takes.
	stopReading func()
	loops       map[string]chan struct{} // lease id -> closed when its loop ended
	// unanswered is, per lease id, when a loop last sent a write it got
	// no answer to and could not record it in the lease (its release
	// failed, or its hold was lost): the wrap-up's release records it.
	unanswered map[string]time.Time

	started           atomic.Int64 // ranges this run worked on
	allCaughtUp       atomic.Bool  // shared: every lease of every worker caught up
	stoppedForCutover atomic.Bool  // shared: stopped because a cutover was requested
}

// markCaughtUp records that a range reached the end of its feed; with
// UntilCaughtUp the run stops once all have.
func (run *run) markCaughtUp(first bool) {
	if !first {
		return
	}
	run.mu.Lock()
	run.pending--
	done := run.pending == 0
	run.mu.Unlock()
	if done && run.cfg.UntilCaughtUp && !run.cfg.Shared { // shared: balance decides, for every worker
		// Logged when it is news: a run that read nothing was caught up
		// before it started (a cutover's drains run one after another
		// while they wait for the source to be quiet).
		level := slog.LevelInfo
		if run.stats.read.Load() == run.readAtStart {
			level = slog.LevelDebug
		}
		run.log.Log(context.Background(), level, "every range has caught up")
		run.stopReading()
	}
}

func (run *run) caughtUp() bool {
	if run.cfg.Shared {
		return run.allCaughtUp.Load()
	}
	run.mu.Lock()
	defer run.mu.Unlock()
	return run.pending == 0
}
