package pacing

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rekey-dev/rekey/internal/epk"
	"github.com/rekey-dev/rekey/migrate"
)

// startShare is the share of a range's budget it starts at when the
// target's throughput is known: under it, so that an application sharing
// the target meets no burst of 429s.
const startShare = 0.9

// Defaults of AdaptiveConfig.
const (
	// DefaultMaxConcurrency bounds the writes in flight across all
	// partitions.
	DefaultMaxConcurrency = 32
	// DefaultInitialRangeRU is the pace a range starts its slow start at.
	DefaultInitialRangeRU = 1000
	// DefaultRangeRefresh is how often the target's feed ranges are
	// re-read, to notice splits the writes themselves do not report.
	DefaultRangeRefresh = time.Minute
)

// ControllerMode selects how an AdaptiveLimiter controls each range.
type ControllerMode int

const (
	// ControllerPaced paces each range's requests by their request
	// charges at a rate found by AIMD: a slow start doubling it after each
	// clean window until the first 429; then +2% after each clean window
	// in which the pace held requests back and was spent, and x0.95 after a
	// 429 on a request sent since the previous cut, escalating when cuts
	// follow one another within a window. A 429 pauses the whole range for
	// its retry-after, a cut for at least 50ms. The range's in-flight limit
	// follows the pace (twice its rate times the latency, over the charge).
	// The default; see rangectl.go for the reasoning.
	ControllerPaced ControllerMode = iota
	// ControllerWindowed is the .NET bulk executor's congestion control,
	// concurrency only: each range starts at one request in flight, +1
	// per clean one-second window, minus min(5, limit/2) after a window
	// with a 429. Kept as the baseline `rekey bench` compares with.
	ControllerWindowed
)

// String names the mode as --controller takes it.
func (m ControllerMode) String() string {
	if m == ControllerWindowed {
		return "windowed"
	}
	return "paced"
}

// AdaptiveConfig configures an AdaptiveLimiter. Zero values take the
// defaults.
type AdaptiveConfig struct {
	// MaxConcurrency bounds the requests in flight across all ranges;
	// DefaultMaxConcurrency when zero. SetMaxConcurrency changes it.
	MaxConcurrency int
	Mode           ControllerMode
	// InitialRangeRU is a new range's first pace (paced mode), from which
	// it slow-starts.
	InitialRangeRU float64
	// ProvisionedRU is the target's provisioned RU/s (the autoscale
	// maximum), when known: each range of the first map then starts at
	// startShare of its even share (the service divides throughput evenly
	// across partitions), without a slow start. Zero: slow start from
	// InitialRangeRU.
	ProvisionedRU float64
	// RefreshInterval is how often the feed ranges are re-read.
	RefreshInterval time.Duration
	Clock           migrate.Clock
	Log             *slog.Logger
}

// AdaptiveLimiter is the writer's congestion control per physical
// partition of the target. Each request's key is hashed to its EPK and
// mapped to the target's feed range holding it; each range has its own
// controller (see ControllerMode), so a hot or throttled partition slows
// down only the requests bound for it, and a shared MaxConcurrency bounds
// the whole. The range map is read on the first Acquire and re-read every
// RefreshInterval, and after a request answered 410 (a split). It is safe
// for concurrent use.
type AdaptiveLimiter struct {
	cfg    AdaptiveConfig
	target migrate.Partitioning
	global *gate
	maxCon atomic.Int64

	loadMu     sync.Mutex // serialises loads of the range map
	m          atomic.Pointer[rangeMap]
	stale      atomic.Bool
	refreshing atomic.Bool
}

// rangeMap is one view of the target's partitions.
type rangeMap struct {
	def    epk.Definition
	ranges []epk.Range
	ctls   []*rangeCtl
	at     time.Time
}

// NewAdaptiveLimiter returns a limiter for writes to target. It does not
// contact the service: the ranges are read on the first Acquire.
func NewAdaptiveLimiter(target migrate.Partitioning, cfg AdaptiveConfig) *AdaptiveLimiter {
	if cfg.MaxConcurrency <= 0 {
		cfg.MaxConcurrency = DefaultMaxConcurrency
	}
	if cfg.InitialRangeRU <= 0 {
		cfg.InitialRangeRU = DefaultInitialRangeRU
	}
	if cfg.RefreshInterval <= 0 {
		cfg.RefreshInterval = DefaultRangeRefresh
	}
	if cfg.Clock == nil {
		cfg.Clock = migrate.SystemClock{}
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	l := &AdaptiveLimiter{cfg: cfg, target: target, global: newGate(cfg.MaxConcurrency)}
	l.maxCon.Store(int64(cfg.MaxConcurrency))
	return l
}

// Acquire waits for the turn of a request under key: its range's in-flight
// limit, pause and pace, then a slot of MaxConcurrency. It fails only when
// ctx ends or the range map cannot be read the first time.
func (l *AdaptiveLimiter) Acquire(ctx context.Context, key migrate.Key) (func(migrate.Outcome), error) {
	m, err := l.rangeMap(ctx)
	if err != nil {
		return nil, err
	}
	rc := m.ctlFor(key)
	t, err := rc.acquire(ctx)
	if err != nil {
		return nil, err
	}
	if err := l.global.acquire(ctx); err != nil {
		rc.done(migrate.Outcome{}, t)
		return nil, err
	}
	t.sent = l.cfg.Clock.Now()
	return func(o migrate.Outcome) {
		l.global.release()
		rc.done(o, t)
		if o.Gone {
			l.stale.Store(true)
		}
	}, nil
}

// SetMaxConcurrency changes the bound on requests in flight across ranges.
func (l *AdaptiveLimiter) SetMaxConcurrency(n int) {
	n = max(n, 1)
	l.maxCon.Store(int64(n))
	l.global.setLimit(n)
}

// RangeState is one range's controller, for progress output and tests.
type RangeState struct {
	Min, Max      string
	PaceRU        float64 // RU/s (paced mode)
	SlowStart     bool
	InFlight      int
	InFlightLimit int
	Waiting       int
	Throttled     int64 // 429s seen
}

// Ranges describes each range's controller, in EPK order; nil before the
// first Acquire.
func (l *AdaptiveLimiter) Ranges() []RangeState {
	m := l.m.Load()
	if m == nil {
		return nil
	}
	out := make([]RangeState, len(m.ctls))
	for i, rc := range m.ctls {
		out[i] = rc.state()
	}
	return out
}

// Summary is a short description for the progress line: the summed pace
// of the ranges (paced mode) or their in-flight limits (windowed mode).
func (l *AdaptiveLimiter) Summary() string {
	states := l.Ranges()
	if len(states) == 0 {
		return ""
	}
	pace, limit := 0.0, 0
	for _, s := range states {
		pace += s.PaceRU
		limit += s.InFlightLimit
	}
	if l.cfg.Mode == ControllerWindowed {
		return fmt.Sprintf("in-flight limit %d over %d ranges", limit, len(states))
	}
	return fmt.Sprintf("pace %.0f RU/s over %d ranges", pace, len(states))
}

// rangeMap returns the current map, loading it the first time and
// refreshing it when due (one caller refreshes, the others go on with the
// map they have).
func (l *AdaptiveLimiter) rangeMap(ctx context.Context) (*rangeMap, error) {
	m := l.m.Load()
	if m == nil {
		l.loadMu.Lock()
		defer l.loadMu.Unlock()
		if m = l.m.Load(); m != nil {
			return m, nil
		}
		return l.load(ctx, nil)
	}
	due := l.cfg.Clock.Now().Sub(m.at) >= l.cfg.RefreshInterval || l.stale.Load()
	if due && l.refreshing.CompareAndSwap(false, true) {
		defer l.refreshing.Store(false)
		l.loadMu.Lock()
		defer l.loadMu.Unlock()
		l.stale.Store(false)
		if fresh, err := l.load(ctx, m); err == nil {
			return fresh, nil
		} else if ctx.Err() == nil {
			l.cfg.Log.Warn("could not re-read the target's feed ranges; keeping the ones known", "err", err)
			retry := *m
			retry.at = l.cfg.Clock.Now()
			l.m.Store(&retry)
		}
	}
	return m, nil
}

// load reads the definition and ranges and builds a map, keeping the
// controllers of ranges that did not change; a new range (a split's child)
// starts its slow start from half the pace of the range it came from.
// l.loadMu must be held.
func (l *AdaptiveLimiter) load(ctx context.Context, old *rangeMap) (*rangeMap, error) {
	var def epk.Definition
	if old != nil {
		def = old.def
	} else {
		d, err := l.target.Definition(ctx)
		if err != nil {
			return nil, fmt.Errorf("read the target's partition key definition: %w", err)
		}
		def = d.EPK()
	}
	frs, err := l.target.FeedRanges(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the target's feed ranges: %w", err)
	}
	if len(frs) == 0 {
		return nil, fmt.Errorf("read the target's feed ranges: none listed")
	}
	m := &rangeMap{def: def, at: l.cfg.Clock.Now()}
	maxConc := func() int { return int(l.maxCon.Load()) }
	for _, fr := range frs {
		r := fr.EPKRange()
		var ctl *rangeCtl
		if old != nil {
			if i, ok := epk.Find(old.ranges, r.Min); ok && old.ranges[i] == r {
				ctl = old.ctls[i]
			} else if ok {
				ctl = newRangeCtl(r.Min, r.Max, l.cfg, maxConc, old.ctls[i].state().PaceRU/2)
			}
		}
		if ctl == nil && old == nil && l.cfg.ProvisionedRU > 0 {
			ctl = newRangeCtl(r.Min, r.Max, l.cfg, maxConc, startShare*l.cfg.ProvisionedRU/float64(len(frs)))
			ctl.slowStart = false
		}
		if ctl == nil {
			ctl = newRangeCtl(r.Min, r.Max, l.cfg, maxConc, l.cfg.InitialRangeRU)
		}
		m.ranges = append(m.ranges, r)
		m.ctls = append(m.ctls, ctl)
	}
	if old != nil && len(old.ranges) != len(m.ranges) {
		l.cfg.Log.Info("the target's partitions changed", "before", len(old.ranges), "now", len(m.ranges))
	}
	l.m.Store(m)
	return m, nil
}

// ctlFor returns the controller of the range holding key. A key that does
// not hash (which a valid target key always does) goes to the first range.
func (m *rangeMap) ctlFor(key migrate.Key) *rangeCtl {
	h, err := key.EPK(m.def)
	if err != nil {
		return m.ctls[0]
	}
	if i, ok := epk.Find(m.ranges, h); ok {
		return m.ctls[i]
	}
	return m.ctls[0]
}
