package pacing

import (
	"container/list"
	"context"
	"sync"
	"time"

	"github.com/rekey-dev/rekey/migrate"
)

// chargeMemory is how much of the correction factor's history each new
// answer keeps (an exponential average over about ten requests, weighted
// by their expected charges).
const chargeMemory = 0.9

// Bounds of the correction factor: the cost model may be off by a factor
// of a few (an indexing policy, a conflict that costs a read), not by
// orders of magnitude.
const (
	minCorrection = 0.1
	maxCorrection = 10
)

// pacer spends request units at a set rate, accounted from the actual
// charges with debt allowed, as the Java SDK's throughput control does
// (ThroughputRequestThrottler: admit while the budget is positive, deduct
// each response's charge, carry an overdraft into the next cycle).
//
// It is a token bucket of request units filled at the rate and holding at
// most burst of them. Before a request it reserves the request's expected
// charge (the cost model's, times a correction learnt from earlier answers)
// and the request waits until the bucket has paid for it; requests are
// paid for in the order they reserved. Once the real charge is known,
// settle takes the difference: more is taken as debt that delays the
// requests after it, less is given back (never past a full bucket). Over
// any second the requests sent reserve at most the rate plus the larger of
// the burst and one request's reservation.
//
// A change of rate applies at once to the requests already waiting: they
// wake and wait what the new rate says, not what the old one said.
type pacer struct {
	clock migrate.Clock
	burst time.Duration // how much unspent budget the bucket saves, in time at its rate

	mu       sync.Mutex
	ruPerSec float64 // 0: unlimited
	level    float64 // request units in the bucket; negative when owed
	filled   float64 // request units ever added to the bucket: refills and give-backs
	last     time.Time
	waiters  list.List // of *waiter, in the order they reserved
	// The correction of the cost model, actual over expected, averaged
	// with weights of the expected charges: num / den.
	num, den float64
	// avgReserved is the average reservation per request, for the
	// in-flight limit (partition.go).
	avgReserved float64
}

// waiter is a request waiting for the bucket to pay for it. Waiters are
// listed in the order they reserved, which is the order they are paid for
// in; the first one sleeps until the refill pays for it, the others at
// most that long, and each one that goes wakes the next, so units given
// back reach the waiters at once without waking them all.
type waiter struct {
	need float64 // p.filled at which it is paid for
	wake func()  // ends its current sleep
}

// ticket is one request's reservation in a pacer.
type ticket struct {
	migrate.Reservation
	need float64       // p.filled at which the request is paid for
	elem *list.Element // its waiter, while it must wait
}

func newPacer(clock migrate.Clock, ruPerSec float64, burst time.Duration) *pacer {
	p := &pacer{clock: clock, burst: burst, last: clock.Now()}
	p.setRate(ruPerSec)
	return p
}

// burstRU is the bucket's size; p.mu must be held.
func (p *pacer) burstRU() float64 { return p.ruPerSec * p.burst.Seconds() }

// refill brings the bucket up to now; p.mu must be held.
func (p *pacer) refill(now time.Time) {
	dt := now.Sub(p.last).Seconds()
	p.last = now
	if p.ruPerSec <= 0 || dt <= 0 {
		return
	}
	p.add(p.ruPerSec * dt)
}

// add puts ru into the bucket, up to a full one; p.mu must be held.
func (p *pacer) add(ru float64) {
	room := p.burstRU() - p.level
	if ru > room {
		ru = max(room, 0)
	}
	p.level += ru
	p.filled += ru
}

// setRate changes the rate; 0 or less means unlimited. A new pacer, and
// one that was unlimited, starts with a full bucket. Waiting requests wake
// and wait again at the new rate.
func (p *pacer) setRate(ruPerSec float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.clock.Now()
	p.refill(now)
	wasUnlimited := p.ruPerSec <= 0
	p.ruPerSec = max(ruPerSec, 0)
	switch {
	case p.ruPerSec <= 0:
	case wasUnlimited:
		p.level = p.burstRU()
	default:
		p.level = min(p.level, p.burstRU())
	}
	for e := p.waiters.Front(); e != nil; e = e.Next() {
		e.Value.(*waiter).wake()
	}
}

// rate is the current rate, 0 when unlimited.
func (p *pacer) rate() float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ruPerSec
}

// correction is the factor the cost model's charges are multiplied by;
// p.mu must be held.
func (p *pacer) correction() float64 {
	if p.den <= 0 {
		return 1
	}
	return min(max(p.num/p.den, minCorrection), maxCorrection)
}

// averageReserved is the average reservation per request.
func (p *pacer) averageReserved() float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.avgReserved
}

// reserve takes a request's expected charge, corrected, from the bucket.
// The request may go once wait returns.
func (p *pacer) reserve(expected float64) ticket {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := ticket{Reservation: migrate.Reservation{Expected: expected}}
	held := max(expected, 0) * p.correction()
	if p.avgReserved == 0 {
		p.avgReserved = held
	} else {
		p.avgReserved += (1 - chargeMemory) * (held - p.avgReserved)
	}
	if p.ruPerSec <= 0 {
		return t
	}
	p.refill(p.clock.Now())
	t.Reserved = held
	p.level -= held
	t.need = p.filled + max(-p.level, 0)
	if t.need > p.filled {
		t.elem = p.waiters.PushBack(&waiter{need: t.need, wake: func() {}})
	}
	return t
}

// wait blocks until the bucket has paid for t, the pacer is unlimited, or
// ctx ends (returning ctx.Err(); the caller gives the ticket back with
// settle(t, 0)). It reports whether it waited at all.
func (p *pacer) wait(ctx context.Context, t ticket) (waited bool, err error) {
	if t.elem == nil {
		return false, ctx.Err()
	}
	self := t.elem.Value.(*waiter)
	p.mu.Lock()
	defer func() {
		head := p.waiters.Front() == t.elem
		p.waiters.Remove(t.elem)
		if next := p.waiters.Front(); head && next != nil {
			next.Value.(*waiter).wake()
		}
		p.mu.Unlock()
	}()
	for {
		if p.ruPerSec > 0 {
			p.refill(p.clock.Now())
		}
		if p.ruPerSec <= 0 || p.filled >= t.need {
			return true, nil
		}
		// The refill alone pays for t in d; units given back, or the
		// waiter before it going, may pay for it sooner and wake it.
		d := time.Duration((t.need - p.filled) / p.ruPerSec * float64(time.Second))
		sleepCtx, wake := context.WithCancel(ctx)
		self.wake = wake
		p.mu.Unlock()
		_ = p.clock.Sleep(sleepCtx, max(d, time.Millisecond/10)) // woken or slept out: look again
		wake()
		p.mu.Lock()
		if err := ctx.Err(); err != nil {
			return true, err
		}
	}
}

// settle records a request's actual charge against what reserve took for
// it (0 when the request was never sent): more is taken as debt, less
// given back, and the cost model's correction learns from it.
func (p *pacer) settle(t ticket, actual float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if actual > 0 && t.Expected > 0 {
		p.num = chargeMemory*p.num + actual
		p.den = chargeMemory*p.den + t.Expected
	}
	if p.ruPerSec <= 0 {
		return
	}
	p.refill(p.clock.Now())
	switch diff := actual - t.Reserved; {
	case diff > 0:
		p.level -= diff
	case diff < 0:
		p.add(-diff)
		// The first waiter may now be paid for, or sooner: it looks again,
		// and wakes the next one when it goes.
		if head := p.waiters.Front(); head != nil {
			head.Value.(*waiter).wake()
		}
	}
}

// drain gives up what the bucket saved while idle, so that the requests
// held back by a pause do not leave in a burst when it ends.
func (p *pacer) drain() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ruPerSec <= 0 {
		return
	}
	p.refill(p.clock.Now())
	p.level = min(p.level, 0)
}
