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

// startShare is the share of a partition's budget it starts at when the
// target's throughput is known: under it, so that an application sharing
// the target meets no burst of 429s.
const startShare = 0.9

// Defaults of AdaptiveConfig.
const (
	// DefaultInitialPartitionRU is the pace a partition starts its slow
	// start at.
	DefaultInitialPartitionRU = 1000
	// DefaultPartitionRefresh is how often the target's partitions are
	// re-read, to notice splits the writes themselves do not report.
	DefaultPartitionRefresh = time.Minute
)

// ControllerMode selects how an AdaptiveLimiter controls each partition.
type ControllerMode int

const (
	// ControllerPaced paces each partition's requests by their request
	// charges at a rate found by AIMD: a slow start doubling it after each
	// clean window until the first 429; then +2% after each clean window
	// in which the pace held requests back and was spent, and x0.95 after a
	// 429 on a request sent since the previous cut, escalating when cuts
	// follow one another within a window. A 429 pauses the whole partition for
	// its retry-after, a cut for at least 50ms. The partition's in-flight limit
	// follows the pace (twice its rate times the latency, over the charge).
	// The default; see partition.go for the reasoning.
	ControllerPaced ControllerMode = iota
	// ControllerWindowed is the .NET bulk executor's congestion control,
	// concurrency only: each partition starts at one request in flight, +1
	// per clean one-second window, minus min(5, limit/2) after a window
	// with a 429. Kept as the baseline `rekey bench` compares with.
	ControllerWindowed
	// ControllerFixed is no per-partition control at all: a fixed limit of
	// MaxConcurrency requests in flight (NewFixedLimiter). A Flow uses it
	// instead of an AdaptiveLimiter; `rekey bench --controller fixed`
	// compares with it. An AdaptiveLimiter given it paces.
	ControllerFixed
)

// String names the mode as --controller takes it.
func (m ControllerMode) String() string {
	switch m {
	case ControllerWindowed:
		return "windowed"
	case ControllerFixed:
		return "fixed"
	}
	return "paced"
}

// AdaptiveConfig configures an AdaptiveLimiter. Zero values take the
// defaults.
type AdaptiveConfig struct {
	// MaxConcurrency bounds the requests in flight across all partitions;
	// 0: no bound but each partition's own. SetMaxConcurrency changes it.
	MaxConcurrency int
	Mode           ControllerMode
	// InitialPartitionRU is a new partition's first pace (paced mode), from which
	// it slow-starts.
	InitialPartitionRU float64
	// ProvisionedRU is the target's provisioned RU/s (the autoscale
	// maximum), when known: each partition of the first map then starts at
	// startShare of its even share (the service divides throughput evenly
	// across partitions), without a slow start. Zero: slow start from
	// InitialPartitionRU.
	ProvisionedRU float64
	// RefreshInterval is how often the partitions are re-read.
	RefreshInterval time.Duration
	Clock           migrate.Clock
	Log             *slog.Logger
}

// AdaptiveLimiter is the writer's congestion control per physical
// partition of the target. Each request's key is hashed to its EPK and
// mapped to the target's partition holding it (one per feed range the
// service lists for the target); each partition has its own
// controller (see ControllerMode), so a hot or throttled partition slows
// down only the requests bound for it, and a shared MaxConcurrency bounds
// the whole. The partition map is read on the first Acquire and re-read every
// RefreshInterval, and after a request answered 410 (a split). It is safe
// for concurrent use.
type AdaptiveLimiter struct {
	cfg    AdaptiveConfig
	target migrate.Partitioning
	global *gate // MaxConcurrency; unboundedConcurrency when there is none
	maxCon atomic.Int64

	loadMu     sync.Mutex // serialises loads of the partition map
	m          atomic.Pointer[partitionMap]
	stale      atomic.Bool
	refreshing atomic.Bool
}

// partitionMap is one view of the target's partitions.
type partitionMap struct {
	def    epk.Definition
	ranges []epk.Range
	ctls   []*partitionCtl
	at     time.Time
}

// NewAdaptiveLimiter returns a limiter for writes to target. It does not
// contact the service: the partitions are read on the first Acquire.
func NewAdaptiveLimiter(target migrate.Partitioning, cfg AdaptiveConfig) *AdaptiveLimiter {
	if cfg.InitialPartitionRU <= 0 {
		cfg.InitialPartitionRU = DefaultInitialPartitionRU
	}
	if cfg.RefreshInterval <= 0 {
		cfg.RefreshInterval = DefaultPartitionRefresh
	}
	if cfg.Clock == nil {
		cfg.Clock = migrate.SystemClock{}
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	l := &AdaptiveLimiter{cfg: cfg, target: target, global: newGate(concurrencyBound(cfg.MaxConcurrency))}
	l.maxCon.Store(int64(concurrencyBound(cfg.MaxConcurrency)))
	return l
}

// unboundedConcurrency stands for "no bound" in a gate: more requests
// than a process could have in flight.
const unboundedConcurrency = 1 << 30

// concurrencyBound is a gate's limit for --max-concurrency n (0: none).
func concurrencyBound(n int) int {
	if n <= 0 {
		return unboundedConcurrency
	}
	return n
}

// Acquire waits for the turn of a request under key expected to cost
// expectedRU: its partition's in-flight limit, pause and pace, then a slot
// of MaxConcurrency. It fails only when ctx ends or the partition map
// cannot be read the first time.
func (l *AdaptiveLimiter) Acquire(ctx context.Context, key migrate.Key, expectedRU float64) (func(migrate.Outcome), error) {
	m, err := l.partitionMap(ctx)
	if err != nil {
		return nil, err
	}
	rc := m.ctlFor(key)
	t, err := rc.acquire(ctx, expectedRU)
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

// RequestLimit is the largest charge a request to key's partition should
// be expected to cost: what the partition's pace saves while idle (a
// tenth of a second of it), so that one bulk request meets the partition's
// budget as gently as a few single writes. 0 in windowed mode, which has
// no pace, and while the target's partitions cannot be read.
func (l *AdaptiveLimiter) RequestLimit(ctx context.Context, key migrate.Key) float64 {
	if l.cfg.Mode == ControllerWindowed {
		return 0
	}
	m, err := l.partitionMap(ctx)
	if err != nil {
		return 0
	}
	return m.ctlFor(key).requestLimit()
}

// SetMaxConcurrency changes the bound on requests in flight across
// partitions; 0 removes it.
func (l *AdaptiveLimiter) SetMaxConcurrency(n int) {
	n = concurrencyBound(n)
	l.maxCon.Store(int64(n))
	l.global.setLimit(n)
}

// PartitionState is one partition's controller, for progress output and
// tests.
type PartitionState struct {
	Min, Max      string
	PaceRU        float64 // RU/s (paced mode)
	SlowStart     bool
	InFlight      int
	InFlightLimit int
	Waiting       int
	Throttled     int64 // 429s seen
}

// Partitions describes each partition's controller, in EPK order; nil before the
// first Acquire.
func (l *AdaptiveLimiter) Partitions() []PartitionState {
	m := l.m.Load()
	if m == nil {
		return nil
	}
	out := make([]PartitionState, len(m.ctls))
	for i, rc := range m.ctls {
		out[i] = rc.state()
	}
	return out
}

// Summary is a short description for the progress line: the summed pace
// of the partitions (paced mode) or their in-flight limits (windowed mode).
func (l *AdaptiveLimiter) Summary() string {
	states := l.Partitions()
	if len(states) == 0 {
		return ""
	}
	pace, limit := 0.0, 0
	for _, s := range states {
		pace += s.PaceRU
		limit += s.InFlightLimit
	}
	if l.cfg.Mode == ControllerWindowed {
		return fmt.Sprintf("in-flight limit %d over %d partitions", limit, len(states))
	}
	return fmt.Sprintf("pace %.0f RU/s over %d partitions", pace, len(states))
}

// partitionMap returns the current map, loading it the first time and
// refreshing it when due (one caller refreshes, the others go on with the
// map they have).
func (l *AdaptiveLimiter) partitionMap(ctx context.Context) (*partitionMap, error) {
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
			l.cfg.Log.Warn("could not re-read the target's partitions (its feed ranges); keeping the ones known", "err", err)
			retry := *m
			retry.at = l.cfg.Clock.Now()
			l.m.Store(&retry)
		}
	}
	return m, nil
}

// load reads the definition and the partitions and builds a map, keeping
// the controllers of partitions that did not change; a new partition (a
// split's child) starts its slow start from half the pace of the one it
// came from.
// l.loadMu must be held.
func (l *AdaptiveLimiter) load(ctx context.Context, old *partitionMap) (*partitionMap, error) {
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
	m := &partitionMap{def: def, at: l.cfg.Clock.Now()}
	maxConc := func() int { return int(l.maxCon.Load()) }
	for _, fr := range frs {
		r := fr.EPKRange()
		var ctl *partitionCtl
		if old != nil {
			if i, ok := epk.Find(old.ranges, r.Min); ok && old.ranges[i] == r {
				ctl = old.ctls[i]
			} else if ok {
				ctl = newPartitionCtl(r.Min, r.Max, l.cfg, maxConc, old.ctls[i].state().PaceRU/2)
			}
		}
		if ctl == nil && old == nil && l.cfg.ProvisionedRU > 0 {
			ctl = newPartitionCtl(r.Min, r.Max, l.cfg, maxConc, startShare*l.cfg.ProvisionedRU/float64(len(frs)))
			ctl.slowStart = false
		}
		if ctl == nil {
			ctl = newPartitionCtl(r.Min, r.Max, l.cfg, maxConc, l.cfg.InitialPartitionRU)
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

// ctlFor returns the controller of the partition holding key. A key that
// does not hash (which a valid target key always does) goes to the first
// partition.
func (m *partitionMap) ctlFor(key migrate.Key) *partitionCtl {
	h, err := key.EPK(m.def)
	if err != nil {
		return m.ctls[0]
	}
	if i, ok := epk.Find(m.ranges, h); ok {
		return m.ctls[i]
	}
	return m.ctls[0]
}
