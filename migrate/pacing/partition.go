package pacing

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/rekey-dev/rekey/migrate"
)

// Tuning of the paced controller (ControllerPaced), chosen by measurement
// with `rekey bench` (README "Throughput"). A gentle cut and a slow climb
// keep every partition's pace near its budget: a page of changes is done
// only when its slowest partition has written its share, so the pipeline
// runs at about the lowest pace of the partitions, and a deep sawtooth on
// one partition idles the others. The partition's burst capacity absorbs the probe
// past its budget, so the 429s stay far below the 1-5% the service calls
// healthy (docs/cosmos-service.md#throttling).
const (
	// paceWindow is how often a partition's pace is re-evaluated for an
	// increase.
	paceWindow = 500 * time.Millisecond
	// paceDecrease is the cut of the pace after a 429 on a request sent
	// since the previous cut (one cut per generation of requests, as TCP
	// cuts once per window of data). A cut that comes within paceWindow of
	// the previous generation's start says the pace is still far above the
	// budget (the slow start's overshoot, which the partition's burst
	// capacity hides for a while): successive cuts then escalate, 5%, 5%,
	// 10%, 10%, 20%, 20%, 40%, 40%, then 50%; a shallow probe past the
	// budget costs 5%.
	paceDecrease = 0.95
	// cutPause is the least a partition pauses after a cut, whatever the
	// retry-after (which may promise room for a single request): enough
	// for the partition to refill a few requests' worth, so that the next
	// generation tests the new pace, not an empty budget.
	cutPause = 50 * time.Millisecond
	// maxCut is the deepest single cut.
	maxCut = 0.5
	// paceIncrease is the pace added after a clean window in which the pace
	// held requests back, as a share of the pace: small and steady, so the
	// probe past the partition's budget is shallow and rare.
	paceIncrease = 0.02
	// recoverBelow: a pace under this share of the one its last cut came
	// from (after an escalated cut) grows back fast, halving the gap to
	// just under that level each clean window, as CUBIC grows fast toward
	// its last maximum; near it, by paceIncrease.
	recoverBelow = 0.9
	// paceSpent is the share of its pace a partition must have spent in a
	// window for the pace to grow.
	paceSpent = 0.8
	// minPartitionRU and maxPartitionRU bound a partition's pace: a quarter of the
	// smallest container's 400 RU/s, below which a storm of 429s that
	// slowing down does not cure (a throughput bucket, a fault) would only
	// stall the copy; and a physical partition serves at most 10,000 RU/s
	// (docs/cosmos-service.md#limits), while a stale partition map may lump a split parent's
	// children together.
	minPartitionRU = 100
	maxPartitionRU = 40_000
	// initialInFlight is a paced partition's in-flight limit before latencies
	// are known.
	initialInFlight = 4
	// latencyHorizon is how long the least latency of a partition's
	// requests is remembered (fitInFlight), as BBR remembers its least
	// round trip: a lasting change of the network shows within it.
	latencyHorizon = 10 * time.Second
	// partitionBurst is how much unspent pace a partition saves while idle:
	// a tenth of a second, so that a pause does not turn into a burst that
	// the partition answers with 429s. A request reserves at most that
	// much (requestLimit).
	partitionBurst = 100 * time.Millisecond
	// minRequestShare is the smallest share of partitionBurst a request is
	// cut to while 429s come: a 429 on a bulk request throttles its
	// operations past the budget, so each cut halves the requests (as the
	// Java SDK's bulk mode shrinks its micro-batches), and each clean
	// window doubles them back.
	minRequestShare = 1.0 / 32
)

// Tuning of the windowed controller (ControllerWindowed), the .NET SDK's
// BatchAsyncStreamer.RunCongestionControlAsync: a window of a second, +1
// after a window with work done and no 429, minus min(5, limit/2) after a
// window with a 429, which also lengthens the next windows by a second.
const (
	windowStart    = time.Second
	windowGrowth   = time.Second
	windowMaxCut   = 5
	windowInFlight = 1
)

// partitionCtl controls the requests to one physical partition of the target.
type partitionCtl struct {
	min, max string
	mode     ControllerMode
	clock    migrate.Clock
	gate     *gate  // the partition's in-flight limit
	pace     *pacer // RU/s pace; nil in windowed mode
	maxConc  func() int

	mu          sync.Mutex
	rate        float64 // the pace, RU/s
	slowStart   bool    // doubling per window until the first 429
	pausedUntil time.Time
	// generation is when the pace last decreased (after that 429's pause):
	// only a 429 on a request sent since then says the new pace is still
	// too high; the others were sent at the old one.
	generation time.Time
	cuts       int     // consecutive cuts, each within paceWindow of the last
	ceiling    float64 // the pace the last cut came from: too high then
	reqShare   float64 // the share of partitionBurst a request may reserve
	// minLatency is the least latency, in seconds, of the requests
	// answered within the last one or two latencyHorizons; nextMinLatency
	// that of the current horizon, which started at minLatencyFrom.
	minLatency, nextMinLatency float64
	minLatencyFrom             time.Time
	throttles                  int64
	// the current window
	winStart     time.Time
	winLen       time.Duration
	winRU        float64
	winDone      int
	winThrottled int
	winBound     bool // the pace or the in-flight limit held a request back
}

func newPartitionCtl(lo, hi string, cfg AdaptiveConfig, maxConc func() int, startRU float64) *partitionCtl {
	rc := &partitionCtl{min: lo, max: hi, mode: cfg.Mode, clock: cfg.Clock, maxConc: maxConc,
		winStart: cfg.Clock.Now(), winLen: paceWindow, reqShare: 1}
	switch cfg.Mode {
	case ControllerWindowed:
		rc.gate = newGate(windowInFlight)
		rc.winLen = windowStart
	default:
		rc.rate = min(max(startRU, minPartitionRU), maxPartitionRU)
		rc.slowStart = true
		rc.pace = newPacer(cfg.Clock, rc.rate, partitionBurst)
		rc.gate = newGate(min(initialInFlight, maxConc()))
	}
	return rc
}

// passage is a request's passage through its partition's controller.
type passage struct {
	ticket           // what the pace reserved
	sent   time.Time // when the partition let it go
}

// acquire waits for the partition's turn of a request expected to cost
// expected: a slot under its in-flight limit, the end of a pause ordered
// by a 429's retry-after, and the pace.
func (rc *partitionCtl) acquire(ctx context.Context, expected float64) (passage, error) {
	if used, limit, _ := rc.gate.state(); used >= limit {
		rc.markBound()
	}
	if err := rc.gate.acquire(ctx); err != nil {
		return passage{}, err
	}
	if rc.pace == nil {
		return passage{sent: rc.clock.Now()}, nil
	}
	if err := rc.waitPause(ctx); err != nil {
		rc.gate.release()
		return passage{}, err
	}
	t := rc.pace.reserve(expected)
	waited, err := rc.pace.wait(ctx, t)
	if waited {
		rc.markBound()
		if err == nil {
			err = rc.waitPause(ctx) // a 429 may have come in meanwhile
		}
	}
	if err != nil {
		rc.pace.settle(t, 0)
		rc.gate.release()
		return passage{}, err
	}
	return passage{ticket: t, sent: rc.clock.Now()}, nil
}

// waitPause sleeps until the partition's pause (a 429's retry-after) is
// over.
func (rc *partitionCtl) waitPause(ctx context.Context) error {
	for {
		rc.mu.Lock()
		now := rc.clock.Now()
		rc.roll(now)
		wait := rc.pausedUntil.Sub(now)
		rc.mu.Unlock()
		if wait <= 0 {
			return nil
		}
		rc.markBound()
		if err := rc.clock.Sleep(ctx, wait); err != nil {
			return err
		}
	}
}

func (rc *partitionCtl) markBound() {
	rc.mu.Lock()
	rc.winBound = true
	rc.mu.Unlock()
}

// done records a request's outcome, adjusts the controller, and frees the
// request's slot.
func (rc *partitionCtl) done(o migrate.Outcome, t passage) {
	rc.mu.Lock()
	now := rc.clock.Now()
	latency := now.Sub(t.sent)
	rc.roll(now)
	rc.winDone++
	rc.winRU += o.RU
	switch {
	case o.Throttled:
		rc.winThrottled++
		rc.throttles++
		if rc.pace != nil {
			if until := now.Add(o.RetryAfter); until.After(rc.pausedUntil) {
				rc.pausedUntil = until
			}
			if !t.sent.Before(rc.generation) { // sent since the last cut's pause
				rc.decrease(now)
			}
		}
	case o.RU > 0: // answered (a request given up before it left costs nothing)
		rc.observeLatency(now, latency.Seconds())
	}
	rc.fitInFlight()
	rc.mu.Unlock()
	switch {
	case rc.pace == nil:
	case o.Throttled:
		// What the throttled operations did not cost is no room in the
		// partition's budget: nothing of the reservation comes back, and
		// what the pace saved is given up.
		rc.pace.settle(t.ticket, max(o.RU, t.Reserved))
		rc.pace.drain()
	default:
		rc.pace.settle(t.ticket, o.RU)
	}
	rc.gate.release()
}

// decrease cuts the pace after a 429 on a request of the current
// generation, ending the slow start; the cut escalates while cuts come
// within paceWindow of one another (see paceDecrease). The partition pauses at
// least cutPause, and the next generation starts when the pause is over.
// rc.mu must be held.
func (rc *partitionCtl) decrease(now time.Time) {
	rc.slowStart = false
	if !rc.generation.IsZero() && now.Sub(rc.generation) < paceWindow {
		rc.cuts++
	} else {
		rc.cuts = 1
	}
	rc.ceiling = rc.rate
	rc.rate *= cutFactor(rc.cuts)
	rc.reqShare = max(rc.reqShare/2, minRequestShare)
	rc.rate = max(rc.rate, minPartitionRU)
	if until := now.Add(cutPause); until.After(rc.pausedUntil) {
		rc.pausedUntil = until
	}
	rc.generation = rc.pausedUntil
	rc.pace.setRate(rc.rate)
}

// cutFactor is what the k-th consecutive cut multiplies the pace by.
func cutFactor(k int) float64 {
	step := (1 - paceDecrease) * math.Pow(2, float64((k-1)/2))
	return max(1-step, maxCut)
}

// roll closes the current window when it is over and applies its
// additive increase; rc.mu must be held.
func (rc *partitionCtl) roll(now time.Time) {
	if now.Sub(rc.winStart) < rc.winLen {
		return
	}
	switch rc.mode {
	case ControllerWindowed:
		_, limit, _ := rc.gate.state()
		switch {
		case rc.winThrottled > 0:
			rc.gate.setLimit(limit - min(windowMaxCut, limit/2))
			rc.winLen += windowGrowth
		case rc.winDone > 0 && limit < rc.maxConc():
			rc.gate.setLimit(limit + 1)
		}
	default:
		// Grow only a pace that held requests back and was spent: a partition
		// with less demand than its pace learns nothing about its
		// partition's budget (TCP's congestion window validation, RFC 7661).
		spent := rc.winRU / now.Sub(rc.winStart).Seconds()
		if rc.winThrottled == 0 && rc.winDone > 0 {
			rc.reqShare = min(rc.reqShare*2, 1)
		}
		if rc.winThrottled == 0 && rc.winBound && spent >= paceSpent*rc.rate {
			switch {
			case rc.slowStart:
				rc.rate *= 2
			case rc.rate < recoverBelow*rc.ceiling:
				rc.rate += max(rc.rate*paceIncrease, (paceDecrease*rc.ceiling-rc.rate)/2)
			default:
				rc.rate *= 1 + paceIncrease
			}
			rc.rate = min(rc.rate, maxPartitionRU)
			rc.pace.setRate(rc.rate)
		}
	}
	rc.winStart, rc.winRU, rc.winDone, rc.winThrottled, rc.winBound = now, 0, 0, 0, false
}

// observeLatency records an answered request's latency; rc.mu must be
// held.
func (rc *partitionCtl) observeLatency(now time.Time, s float64) {
	if s <= 0 {
		return
	}
	if rc.minLatency == 0 || s < rc.minLatency {
		rc.minLatency = s
	}
	if rc.nextMinLatency == 0 || s < rc.nextMinLatency {
		rc.nextMinLatency = s
	}
	if now.Sub(rc.minLatencyFrom) >= latencyHorizon {
		rc.minLatency, rc.nextMinLatency, rc.minLatencyFrom = rc.nextMinLatency, 0, now
	}
}

// fitInFlight sets a paced partition's in-flight limit to twice what its
// pace keeps busy at the least recent latency (Little's law), plus one:
// enough to never be the bottleneck, few enough that a 429 finds little in
// flight. The least latency is the network's round trip and the service's
// work; an average would also hold the time requests queue in a busy
// client, which more requests in flight only lengthen. rc.mu must be held.
func (rc *partitionCtl) fitInFlight() {
	if rc.pace == nil || rc.minLatency == 0 {
		return
	}
	est := rc.pace.averageReserved()
	if est <= 0 {
		return
	}
	n := int(math.Ceil(2*rc.rate*rc.minLatency/est)) + 1
	rc.gate.setLimit(min(max(n, 1), rc.maxConc()))
}

// requestLimit is the largest charge one request should reserve: the
// pace's burst, less after 429s (reqShare).
func (rc *partitionCtl) requestLimit() float64 {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.rate * partitionBurst.Seconds() * rc.reqShare
}

// state describes the partition for AdaptiveLimiter.Partitions.
func (rc *partitionCtl) state() PartitionState {
	used, limit, waiting := rc.gate.state()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return PartitionState{Min: rc.min, Max: rc.max, PaceRU: rc.rate, SlowStart: rc.slowStart,
		InFlight: used, InFlightLimit: limit, Waiting: waiting, Throttled: rc.throttles}
}
