package migrate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/transform"
)

// Runner copies a source container into a target with a new key and keeps
// the copy in sync from the source's change feed: one reader per feed range,
// each range's pages applied in order, a range's continuation checkpointed
// only after every item of its page is durably written or dead-lettered.
type Runner struct {
	Source      Source
	Target      Target
	Transformer *transform.Transformer
	Store       lease.Store
	DeadLetters DeadLetterStore
	// Limiter decides when each write to the target goes out; a fixed
	// limit of MaxConcurrency when nil. NewAdaptiveLimiter gives per-range
	// congestion control.
	Limiter Limiter
	// TargetBudget caps the RU/s spent on the target, SourceBudget those
	// spent reading the source; from RunConfig.MaxRU and MaxSourceRU when
	// nil. Pass them to adjust the caps while Run works (Controls).
	TargetBudget *Budget
	SourceBudget *Budget
	// Clock is time.Now and real sleeps when nil.
	Clock Clock
	// Log receives progress and warnings; discarded when nil.
	Log *slog.Logger
	// Stats counts the run; Run creates it when nil. Read it while Run
	// works for progress output.
	Stats *Stats
	// Observer, when set, is told when each page starts and ends being
	// applied (observer.go); nil in production.
	Observer Observer
}

// Summary is the outcome of Run.
type Summary struct {
	Stats StatsSnapshot
	// DeadLetters is the number of items in the dead-letter file now.
	DeadLetters int
	// CaughtUp: every range reached the end of its feed (UntilCaughtUp).
	CaughtUp bool
	// Interrupted: the context was cancelled; what was durable is
	// checkpointed.
	Interrupted bool
	Ranges      int
}

// ErrStopped is returned with a Summary when Run stopped before finishing
// its work for a reason other than the context (a range lost its lease).
var ErrStopped = errors.New("migration stopped")

// Run migrates until the context is cancelled or, with UntilCaughtUp, until
// every range has caught up. The store must hold the migration's Meta
// (OpenMeta): ranges without a continuation start at its StartFrom.
//
// Before anything is read, the leases must cover the whole EPK space: gaps
// (a crash while the first leases were created) are filled from the
// migration's feed ranges (Meta.Ranges), so every item has exactly one
// lease. Each lease this worker works on is held (lease.Hold) and renewed
// by a heartbeat independent of page progress; writes stop at its fence,
// and a lease this process already works on is never worked on twice.
//
// On cancellation it stops reading, gives in-flight pages ShutdownTimeout
// to finish, checkpoints those that did, releases its leases and returns a
// Summary with Interrupted set and a nil error. A failure that must stop
// the run (a transient error that outlasted its retries, refused
// credentials, a dead-letter file that cannot be written, a lost lease
// without Shared) stops every range the same way and is returned, naming
// its range, within ShutdownTimeout.
func (r *Runner) Run(ctx context.Context, cfg RunConfig) (Summary, error) {
	if err := refuseAfterCutover(ctx, r.Store, "run"); err != nil {
		return Summary{}, err
	}
	if err := cfg.Validate(); err != nil {
		return Summary{}, err
	}
	cfg = cfg.withDefaults()
	r.defaults(cfg)
	meta, err := r.Store.ReadMeta(ctx)
	if err != nil {
		return Summary{}, fmt.Errorf("read the migration's state: %w", err)
	}
	startFrom, err := meta.StartTime()
	if err != nil {
		return Summary{}, err
	}
	holds, err := r.leases(ctx, cfg, meta)
	if err != nil {
		return Summary{}, err
	}

	// Reading stops with ctx (or when every range caught up, or one
	// failed); writes in flight get ShutdownTimeout more.
	readCtx, stopReading := context.WithCancel(ctx)
	defer stopReading()
	writeCtx, stopWriting := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWriting()
	go func() {
		<-readCtx.Done()
		t := time.NewTimer(cfg.ShutdownTimeout)
		defer t.Stop()
		select {
		case <-t.C:
			stopWriting()
		case <-writeCtx.Done():
		}
	}()

	w := &writer{
		dst: r.Target, tr: r.Transformer, limit: r.Limiter, budget: r.TargetBudget,
		dead: r.DeadLetters, stats: r.Stats, retry: r.retrier(cfg),
		defaults: NewDefaultUses(r.Store, r.Transformer),
	}
	run := &run{
		Runner: r, cfg: cfg, w: w, startFrom: startFrom,
		budget:  semaphore.NewWeighted(int64(cfg.MaxInFlightMB) << 20),
		pending: len(holds),
		allDone: stopReading,
		loops:   map[string]chan struct{}{},
	}
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
				r.Log.Info("a lease was taken over by another worker; stopped working on it", "range", id, "reason", err)
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
	if serr := r.DeadLetters.Sync(); err == nil && serr != nil {
		err = serr
	}
	dead, cerr := r.DeadLetters.Count()
	if err == nil && cerr != nil {
		err = fmt.Errorf("count dead letters: %w", cerr)
	}
	sum := Summary{
		Stats:       r.Stats.Snapshot(),
		DeadLetters: dead,
		CaughtUp:    run.caughtUp(),
		Interrupted: ctx.Err() != nil,
		Ranges:      int(run.started.Load()),
	}
	return sum, err
}

func (r *Runner) defaults(cfg RunConfig) {
	if r.Limiter == nil {
		r.Limiter = NewFixedLimiter(cfg.MaxConcurrency)
	}
	if r.Clock == nil {
		r.Clock = SystemClock{}
	}
	if r.TargetBudget == nil {
		r.TargetBudget = newBudget(r.Clock, cfg.MaxRU)
	}
	if r.SourceBudget == nil {
		r.SourceBudget = newBudget(r.Clock, cfg.MaxSourceRU)
	}
	if r.Log == nil {
		r.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if r.Stats == nil {
		r.Stats = &Stats{}
	}
	r.Stats.start(time.Now())
}

func (r *Runner) retrier(cfg RunConfig) *retrier {
	return &retrier{
		clock:      r.Clock,
		tries:      cfg.TransientTries,
		onThrottle: func(time.Duration) { r.Stats.throttled.Add(1) },
		onRetry: func(err error) {
			r.Stats.retries.Add(1)
			r.Log.Warn("retrying after a transient failure", "err", err)
		},
	}
}

// leases makes sure the leases cover the source and returns the holds this
// worker starts with: every lease (the file store's lock makes this
// process the only worker), or with Shared its fair share.
func (r *Runner) leases(ctx context.Context, cfg RunConfig, meta lease.Meta) ([]*lease.Hold, error) {
	if err := r.coverSource(ctx, meta); err != nil {
		return nil, err
	}
	lr := r.leaser(cfg)
	if cfg.Shared {
		taken, err := lr.Acquire(ctx)
		if err != nil {
			return nil, err
		}
		r.Log.Info("took leases", "owner", cfg.Owner, "leases", len(taken))
		holds := make([]*lease.Hold, len(taken))
		for i, l := range taken {
			holds[i] = lr.Hold(l, l.Timestamp)
		}
		return holds, nil
	}
	existing, err := r.Store.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list leases: %w", err)
	}
	holds := make([]*lease.Hold, 0, len(existing))
	for _, l := range existing {
		l.Owner, l.HandoffTo = cfg.Owner, ""
		sent := r.Clock.Now()
		got, err := r.Store.Update(ctx, l)
		if err != nil {
			return nil, fmt.Errorf("take lease %s: %w", l.ID, err)
		}
		holds = append(holds, lr.Hold(got, sent))
	}
	return holds, nil
}

// coverSource creates the leases that are missing: on a first start, one
// per feed range of the migration; after a crash while they were created,
// those of the gaps left. Leases are cut from the feed ranges recorded in
// the migration's Meta (the source's current ones for a state that has
// none), so workers that do this at the same time create the same leases.
func (r *Runner) coverSource(ctx context.Context, meta lease.Meta) error {
	existing, err := r.Store.List(ctx)
	if err != nil {
		return fmt.Errorf("list leases: %w", err)
	}
	gaps, err := lease.Gaps(existing)
	if err != nil || len(gaps) == 0 {
		return err
	}
	ranges := meta.Ranges
	if len(ranges) == 0 {
		current, err := r.Source.FeedRanges(ctx)
		if err != nil {
			return fmt.Errorf("read the source's feed ranges: %w", err)
		}
		ranges = LeaseRanges(current)
	}
	created := 0
	for _, gap := range gaps {
		for _, rng := range lease.Clip(ranges, gap) {
			l := lease.Lease{ID: lease.TokenFor(rng), Range: rng}
			_, err := r.Store.Create(ctx, l)
			switch {
			case errors.Is(err, lease.ErrLeaseExists): // another worker was first
			case err != nil:
				return fmt.Errorf("create lease for feed range [%s, %s): %w", rng.Min, rng.Max, err)
			default:
				created++
			}
		}
	}
	after, err := r.Store.List(ctx)
	if err != nil {
		return fmt.Errorf("list leases: %w", err)
	}
	if gaps, err = lease.Gaps(after); err != nil {
		return err
	}
	if len(gaps) > 0 {
		return fmt.Errorf("%w: the feed ranges %v do not cover [%s, %s)", lease.ErrCorrupt, ranges, gaps[0].Min, gaps[0].Max)
	}
	if len(existing) > 0 {
		r.Log.Warn("created the leases an interrupted start left out", "created", created, "leases", len(after))
	} else {
		r.Log.Debug("created leases", "created", created, "leases", len(after))
	}
	return nil
}

// run is the shared state of one Run.
type run struct {
	*Runner
	cfg       RunConfig
	w         *writer
	startFrom time.Time           // where ranges without a continuation start
	budget    *semaphore.Weighted // bytes of pages read and not yet checkpointed

	mu      sync.Mutex
	pending int // ranges not yet caught up
	allDone func()
	loops   map[string]chan struct{} // lease id -> closed when its loop ended

	started     atomic.Int64 // ranges this run worked on
	allCaughtUp atomic.Bool  // shared: every lease of every worker caught up
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
		run.Log.Info("every range has caught up")
		run.allDone()
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
