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
// every range has caught up. On cancellation it stops reading, gives
// in-flight pages ShutdownTimeout to finish, checkpoints those that did and
// returns a Summary with Interrupted set and a nil error. A failure that
// must stop the run (a transient error that outlasted its retries, refused
// credentials, a lost lease) is returned after the other ranges checkpointed
// what they had written.
func (r *Runner) Run(ctx context.Context, cfg RunConfig) (Summary, error) {
	if err := cfg.Validate(); err != nil {
		return Summary{}, err
	}
	cfg = cfg.withDefaults()
	r.defaults(cfg)
	leases, err := r.leases(ctx, cfg)
	if err != nil {
		return Summary{}, err
	}

	// Reading stops with ctx (or when every range caught up); writes in
	// flight get ShutdownTimeout more.
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
	}
	run := &run{
		Runner: r, cfg: cfg, w: w,
		budget:  semaphore.NewWeighted(int64(cfg.MaxInFlightMB) << 20),
		pending: len(leases),
		allDone: stopReading,
	}
	g := new(errgroup.Group)
	startRange := func(l lease.Lease) {
		run.started.Add(1)
		g.Go(func() error {
			err := run.rangeLoop(readCtx, writeCtx, l)
			if cfg.Shared && errors.Is(err, ErrStopped) {
				r.Log.Info("a lease was taken over by another worker; stopped working on it", "range", l.ID)
				return nil
			}
			if err != nil {
				stopReading() // one range failing stops the others, after they checkpoint
			}
			return err
		})
	}
	for _, l := range leases {
		startRange(l)
	}
	if cfg.Shared {
		g.Go(func() error { return run.balance(readCtx, startRange) })
	}
	err = g.Wait()
	if cfg.Shared {
		run.releaseLeases(writeCtx)
	}
	if serr := r.DeadLetters.Sync(); err == nil && serr != nil {
		err = serr
	}
	sum := Summary{
		Stats:       r.Stats.Snapshot(),
		DeadLetters: r.DeadLetters.Count(),
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

// leases returns this worker's leases: one per feed range, created on the
// first run; on a resume, the ones recorded, whatever splits happened since
// (their continuations carry the children).
func (r *Runner) leases(ctx context.Context, cfg RunConfig) ([]lease.Lease, error) {
	existing, err := r.Store.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list leases: %w", err)
	}
	if len(existing) == 0 {
		ranges, err := r.Source.FeedRanges(ctx)
		if err != nil {
			return nil, fmt.Errorf("read the source's feed ranges: %w", err)
		}
		for _, fr := range ranges {
			rng := lease.Range{Min: fr.Min, Max: fr.Max}
			l := lease.Lease{ID: lease.TokenFor(rng), Range: rng}
			if _, err := r.Store.Create(ctx, l); err != nil && !errors.Is(err, lease.ErrLeaseExists) {
				return nil, fmt.Errorf("create lease for feed range [%s, %s): %w", fr.Min, fr.Max, err)
			}
		}
		if existing, err = r.Store.List(ctx); err != nil {
			return nil, fmt.Errorf("list leases: %w", err)
		}
		r.Log.Debug("created leases", "ranges", len(existing))
	}
	if cfg.Shared {
		taken, err := r.leaser(cfg).Acquire(ctx)
		if err != nil {
			return nil, err
		}
		r.Log.Info("took leases", "owner", cfg.Owner, "leases", len(taken), "of", len(existing))
		return taken, nil
	}
	owned := make([]lease.Lease, 0, len(existing))
	for _, l := range existing {
		l.Owner, l.Timestamp = cfg.Owner, r.Clock.Now().UTC()
		l, err := r.Store.Update(ctx, l)
		if err != nil {
			return nil, fmt.Errorf("take lease %s: %w", l.ID, err)
		}
		owned = append(owned, l)
	}
	return owned, nil
}

// run is the shared state of one Run.
type run struct {
	*Runner
	cfg    RunConfig
	w      *writer
	budget *semaphore.Weighted // bytes of pages read and not yet checkpointed

	mu      sync.Mutex
	pending int // ranges not yet caught up
	allDone func()

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
