package status

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/migrate"
)

// Poller re-reads a migration's status from its state while a command
// works, for the progress output and the metrics of a long-running worker:
// the ranges' checkpointed items (all workers' on a shared state), their
// phase, and the lag of the ranges that have caught up, probed in the
// source (ProbeCaughtUp: a range still copying is not probed, its lag in
// items is the copy itself).
//
// Run polls until its context ends; Latest may be called from any
// goroutine meanwhile. A failed read is logged at debug level and the
// previous report kept: the run's own errors are what stop it.
type Poller struct {
	Store lease.Store
	// Source, when set, is probed for the lag of the caught-up ranges.
	Source   migrate.Source
	Interval time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time

	mu     sync.Mutex
	latest Report
	at     time.Time
	ok     bool
}

// Latest returns the last report read and when it was read; ok is false
// before the first read succeeds.
func (p *Poller) Latest() (rep Report, at time.Time, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.latest, p.at, p.ok
}

// Poll reads the status once and keeps it for Latest.
func (p *Poller) Poll(ctx context.Context) error {
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	meta, err := p.Store.ReadMeta(ctx)
	if err != nil {
		return err
	}
	at := now()
	rep, err := ReadProbing(ctx, meta, p.Store, 0, p.Source, ProbeCaughtUp, at)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.latest, p.at, p.ok = rep, at, true
	p.mu.Unlock()
	return nil
}

// Run polls every Interval until ctx ends, the first time after one
// Interval (call Poll first for a read at once).
func (p *Poller) Run(ctx context.Context) {
	t := time.NewTicker(max(p.Interval, 100*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := p.Poll(ctx); err != nil && ctx.Err() == nil {
			slog.Debug("read the migration's status for progress", "err", err)
		}
	}
}

// Totals are the figures of a report the progress output and the metrics
// show: items checkpointed across all ranges, ranges caught up, and the
// largest lag probed among the caught-up ranges.
type Totals struct {
	Items      int64
	Ranges     int
	CaughtUp   int
	LagItems   int64   // summed over the probed ranges
	LagAtLeast bool    // a probe stopped at its cap: LagItems is a floor
	LagSeconds float64 // the oldest change waiting, over the probed ranges
	Probed     bool    // at least one range was probed
}

// Totals sums the report's ranges.
func (r Report) Totals() Totals {
	t := Totals{Items: r.Items, Ranges: len(r.Ranges)}
	for _, rg := range r.Ranges {
		if !rg.CaughtUpAt.IsZero() {
			t.CaughtUp++
		}
		if rg.LagItems != nil {
			t.Probed = true
			t.LagItems += *rg.LagItems
			t.LagAtLeast = t.LagAtLeast || rg.LagItemsAtLeast
		}
		if rg.LagSeconds != nil {
			t.LagSeconds = max(t.LagSeconds, *rg.LagSeconds)
		}
	}
	return t
}
