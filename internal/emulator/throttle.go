package emulator

import (
	"time"
)

// Throttling as the service does it (docs/cosmos-service.md#throttling; request-units.md,
// troubleshoot-request-rate-too-large.md): provisioned throughput is divided
// evenly across the physical partitions; each partition's budget refills
// continuously at its share per second and holds at most burstWindow of it. A
// request that finds its partition's budget spent is answered 429 with
// substatus 3200 and x-ms-retry-after-ms set to when the budget will cover it
// again. Charges are taken after the operation, so a partition can go into
// debt, which delays later requests.
const burstWindow = time.Second

// lowPriorityReserve is the share of a partition's burst capacity kept for
// high-priority requests: a request marked x-ms-cosmos-priority-level: Low is
// throttled once the budget falls below it, so under contention the migration
// yields to the application before the application sees a 429.
const lowPriorityReserve = 0.2

// bucket is one partition's RU budget.
type bucket struct {
	tokens float64
	last   time.Time
	primed bool
}

// ratePerPartition is the RU/s each live partition gets; c.mu must be held.
func (c *container) ratePerPartition() float64 {
	if len(c.ranges) == 0 || c.budgetRU <= 0 {
		return 0
	}
	return c.budgetRU / float64(len(c.ranges))
}

// refill brings b up to date at now for a partition refilled at rate RU/s.
func (b *bucket) refill(now time.Time, rate float64) {
	capacity := rate * burstWindow.Seconds()
	if !b.primed {
		b.tokens, b.last, b.primed = capacity, now, true
		return
	}
	b.tokens += rate * now.Sub(b.last).Seconds()
	if b.tokens > capacity {
		b.tokens = capacity
	}
	b.last = now
}

// admit decides whether p may serve a request now; c.mu must be held. It
// returns the 429 to answer when p's budget is spent.
func (c *container) admit(p *partition, low bool) *svcError {
	rate := c.ratePerPartition()
	if rate <= 0 {
		return nil
	}
	now := c.clock()
	p.budget.refill(now, rate)
	floor := 0.0
	if low {
		floor = lowPriorityReserve * rate * burstWindow.Seconds()
	}
	if p.budget.tokens > floor {
		return nil
	}
	p.stats.throttled++
	c.stats.throttled++
	wait := time.Duration((floor - p.budget.tokens + 1) / rate * float64(time.Second))
	if wait < time.Millisecond {
		wait = time.Millisecond
	}
	return throttled(wait)
}

// charge takes ru from p's budget after an operation; c.mu must be held.
func (c *container) charge(p *partition, ru float64) {
	p.budget.tokens -= ru
	p.stats.ru += ru
	p.stats.requests++
	c.stats.ru += ru
	c.stats.requests++
	c.usage.add(c.clock(), ru)
}

// admitRequest is the gate every data-plane request passes before it touches
// partition p: p's RU budget (injected faults ran before routing); c.mu must
// be held.
func (e *Emulator) admitRequest(rc *requestContext, c *container, p *partition) *svcError {
	return c.admit(p, rc.lowPriority())
}
