package sim

import (
	"github.com/rekey-dev/rekey/internal/epk"
	"github.com/rekey-dev/rekey/migrate"
)

// pageApplying and pageApplied are the Observer's events: a loop of p
// starts and ends applying a page of a lease's range.
func (c *checker) pageApplying(p *process, leaseID string, r migrate.FeedRange) {
	if p.crashed.Load() {
		return
	}
	c.mu.Lock()
	c.observed++
	var clash *applying
	for i := range c.active {
		if overlaps(c.active[i].r, r) {
			clash = &c.active[i]
			break
		}
	}
	c.active = append(c.active, applying{proc: p.name, lease: leaseID, r: r})
	c.mu.Unlock()
	if clash != nil {
		c.violate(InvOneLoop, p.name, "a loop applies a page of lease %s [%s, %s) while %s applies one of lease %s [%s, %s)",
			leaseID, r.Min, r.Max, clash.proc, clash.lease, clash.r.Min, clash.r.Max)
	}
}

func (c *checker) pageApplied(p *process, leaseID string, r migrate.FeedRange) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, a := range c.active {
		if a.proc == p.name && a.lease == leaseID && a.r == r {
			c.active = append(c.active[:i], c.active[i+1:]...)
			return
		}
	}
}

// dropProcess forgets a crashed process's pages: it applies nothing more
// (what it sent may still land, as the network delivers it).
func (c *checker) dropProcess(p *process) {
	c.mu.Lock()
	defer c.mu.Unlock()
	kept := c.active[:0]
	for _, a := range c.active {
		if a.proc != p.name {
			kept = append(kept, a)
		}
	}
	c.active = kept
}

// observerCalls is how many pages the Observer was told of.
func (c *checker) observerCalls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.observed
}

func overlaps(a, b migrate.FeedRange) bool {
	below := func(x, y string) bool { return y == epk.MaxEPK && x != epk.MaxEPK || epk.Compare(x, y) < 0 }
	return below(a.Min, b.Max) && below(b.Min, a.Max)
}

// loopObserver is the migrate.Observer of one process.
type loopObserver struct{ p *process }

func (o loopObserver) PageApplying(_, leaseID string, r migrate.FeedRange) {
	o.p.w.check.pageApplying(o.p, leaseID, r)
}

func (o loopObserver) PageApplied(_, leaseID string, r migrate.FeedRange) {
	o.p.w.check.pageApplied(o.p, leaseID, r)
}
