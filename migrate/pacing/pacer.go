package pacing

import (
	"math"
	"sync"
	"time"

	"github.com/rekey-dev/rekey/migrate"
	"golang.org/x/time/rate"
)

// tokensPerRU: rate.Limiter counts whole tokens, request charges are
// fractional (5.52 RU); a token is a hundredth of a request unit.
const tokensPerRU = 100

// pacerBurst is how much unspent budget a pacer saves up while idle: a tenth
// of a second at its rate, so that a pause does not turn into a burst that
// overshoots the rate (or that a partition answers with 429s).
const pacerBurst = 100 * time.Millisecond

// chargeEWMA is the weight of the newest charge in a pacer's estimate.
const chargeEWMA = 0.1

// pacer spends request units at a set rate, accounted from the actual
// charges with debt allowed, as the Java SDK's throughput control does
// (ThroughputRequestThrottler: admit while the budget is positive, deduct
// each response's charge, carry an overdraft into the next cycle). Before a
// request it reserves the charge it expects (an average of the recent ones)
// and waits until that much is paid for; once the request's real charge is
// known, settle takes the difference: more is taken as debt that delays the
// requests after it, less is credited to the next reservation. Over any
// period the pacer spends its rate plus at most one burst.
//
// The expected charge spaces requests evenly instead of letting every
// waiter go the moment a debt is paid.
type pacer struct {
	mu        sync.Mutex
	clock     migrate.Clock
	lim       *rate.Limiter
	ruPerSec  float64 // 0: unlimited, lim unused
	est       float64 // expected charge of the next request
	credit    float64 // reserved beyond what was charged, owed back
	unlimited bool
}

func newPacer(clock migrate.Clock, ruPerSec float64) *pacer {
	p := &pacer{clock: clock, est: 1}
	p.setRate(ruPerSec)
	return p
}

// setRate changes the rate; 0 or less means unlimited.
func (p *pacer) setRate(ruPerSec float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ruPerSec = max(ruPerSec, 0)
	if ruPerSec <= 0 {
		p.unlimited = true
		return
	}
	limit := rate.Limit(ruPerSec * tokensPerRU)
	burst := max(1, int(ruPerSec*tokensPerRU*pacerBurst.Seconds()))
	if p.unlimited || p.lim == nil {
		// rate.Inf is avoided: its token arithmetic yields NaN when it
		// turns finite again. A fresh limiter starts with one burst.
		p.lim = rate.NewLimiter(limit, burst)
		p.unlimited = false
		return
	}
	now := p.clock.Now()
	p.lim.SetLimitAt(now, limit)
	p.lim.SetBurstAt(now, burst)
}

// drain gives up what the pacer saved while idle, so that the requests
// held back by a pause do not leave in a burst when it ends.
func (p *pacer) drain() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.unlimited {
		return
	}
	now := p.clock.Now()
	if n := int(p.lim.TokensAt(now)); n > 0 {
		p.lim.ReserveN(now, min(n, p.lim.Burst()))
	}
	p.credit = 0
}

// rate is the current rate, 0 when unlimited.
func (p *pacer) rate() float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ruPerSec
}

// expected is the charge the next request is expected to cost.
func (p *pacer) expected() float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.est
}

// reserve takes the expected charge of one request, from what earlier
// requests were credited and then from the limiter, and returns it with how
// long the caller must wait before sending the request.
func (p *pacer) reserve() (reserved float64, delay time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.unlimited {
		return 0, 0
	}
	// What the request holds is its expected charge, taken from the credit
	// first; settle compares the actual charge with all of it.
	held := p.est
	fromCredit := min(held, p.credit)
	p.credit -= fromCredit
	return held, p.takeLocked(held - fromCredit)
}

// settle records a request's actual charge against what reserve took for
// it (0 when the request was never sent).
func (p *pacer) settle(reserved, actual float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if actual > 0 {
		p.est += chargeEWMA * (actual - p.est)
	}
	if p.unlimited {
		return
	}
	switch diff := actual - reserved; {
	case diff > 0:
		p.takeLocked(diff)
	case diff < 0:
		p.credit -= diff
	}
}

// takeLocked takes ru from the limiter, as debt when there is not enough,
// and returns how long until it is paid for; p.mu must be held.
func (p *pacer) takeLocked(ru float64) time.Duration {
	n := int(math.Round(ru * tokensPerRU))
	if n <= 0 {
		return 0
	}
	now := p.clock.Now()
	var delay time.Duration
	// ReserveN refuses more than a burst at once: take it in bursts.
	for burst := p.lim.Burst(); n > 0; {
		chunk := min(n, burst)
		delay = p.lim.ReserveN(now, chunk).DelayFrom(now)
		n -= chunk
	}
	return delay
}
