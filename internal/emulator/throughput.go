package emulator

import "time"

// applyThroughput records new throughput values on o, re-divides the budgets
// of the containers it serves and reports whether partition splits were
// started to serve the new value.
func (e *Emulator) applyThroughput(o *offer, manual, autoscale int) bool {
	e.store.mu.Lock()
	o.manual, o.autoscaleMax = manual, autoscale
	if o.maxRU() > o.highest {
		o.highest = o.maxRU()
	}
	o.etag = e.store.newETag()
	o.ts = e.store.unixNow()
	owners := e.containersOfOffer(o)
	e.store.mu.Unlock()
	e.rebalance(o, owners)
	pending := false
	for _, c := range owners {
		if c.offer == o && e.scheduleSplits(c) {
			pending = true
		}
	}
	return pending
}

// containersOfOffer lists the containers whose budget o sets; the store's
// lock must be held.
func (e *Emulator) containersOfOffer(o *offer) []*container {
	var out []*container
	for _, d := range e.store.dbs {
		for _, c := range d.colls {
			if c.offer == o || (c.offer == nil && d.offer == o) {
				out = append(out, c)
			}
		}
	}
	return out
}

// rebalance sets the RU/s budget of the containers o serves: all of it for a
// container's own offer; for a database's shared offer, a share proportional
// to each container's physical partitions, so every partition of the
// database gets the same RU/s.
func (e *Emulator) rebalance(o *offer, owners []*container) {
	e.store.mu.RLock()
	ru, auto := float64(o.maxRU()), o.autoscaleMax > 0
	e.store.mu.RUnlock()
	parts := make([]int, len(owners))
	total := 0
	for i, c := range owners {
		c.mu.Lock()
		parts[i] = len(c.ranges)
		c.mu.Unlock()
		total += parts[i]
	}
	for i, c := range owners {
		c.mu.Lock()
		c.autoscale = auto
		if c.offer == o || total == 0 {
			c.budgetRU = ru
		} else {
			c.budgetRU = ru * float64(parts[i]) / float64(total)
		}
		c.mu.Unlock()
	}
}

// rebalanceDatabase re-divides a shared-throughput database's budget after
// its set of containers or partitions changed.
func (e *Emulator) rebalanceDatabase(db *database) {
	e.store.mu.RLock()
	o := db.offer
	var owners []*container
	if o != nil {
		owners = e.containersOfOffer(o)
	}
	e.store.mu.RUnlock()
	if o != nil {
		e.rebalance(o, owners)
	}
}

// scheduleSplits splits partitions of c when its budget needs more than it
// has (each serves at most 10,000 RU/s), after the emulator's split delay,
// as the service splits asynchronously while the parent keeps serving. The
// largest ranges split at their EPK midpoint first, so ranges can end up
// uneven (half, quarter, quarter). It reports whether splits were scheduled.
func (e *Emulator) scheduleSplits(c *container) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if partitionsNeeded(int(c.budgetRU)) <= len(c.ranges) || c.pendingSplit {
		return false
	}
	c.pendingSplit = true
	time.AfterFunc(e.splitDelay, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.pendingSplit = false
		for len(c.ranges) < partitionsNeeded(int(c.budgetRU)) {
			if err := c.split(c.largestRange()); err != nil {
				e.log.Warn("emulator: split failed", "container", c.link(), "err", err)
				return
			}
		}
	})
	return true
}
