package emulator

import (
	"sort"
	"time"
)

// ContainerMetrics describes one container's load: what `rekey demo` shows
// and what tests of throttling assert on.
type ContainerMetrics struct {
	Database  string `json:"database"`
	Container string `json:"container"`
	// At is when the counters were read, on the account's clock: rates
	// between two readings divide by the time between their At, not by
	// when an observer received them.
	At time.Time `json:"at"`
	// ThroughputRU is the provisioned RU/s: the manual value or the autoscale
	// maximum (for a container in a shared-throughput database, its share).
	ThroughputRU int  `json:"throughputRU"`
	Autoscale    bool `json:"autoscale"`
	// CurrentRU is the RU/s autoscale runs at now: between 10% and 100% of
	// the maximum, following the last second's consumption. For manual
	// throughput it equals ThroughputRU.
	CurrentRU  float64            `json:"currentRU"`
	Items      int                `json:"items"`
	Bytes      int64              `json:"bytes"`
	RU         float64            `json:"ru"`        // request units consumed
	Requests   int64              `json:"requests"`  // data-plane requests served
	Throttled  int64              `json:"throttled"` // requests answered 429
	Partitions []PartitionMetrics `json:"partitions"`
}

// PartitionMetrics describes one live physical partition.
type PartitionMetrics struct {
	ID           string  `json:"id"`
	MinInclusive string  `json:"minInclusive"`
	MaxExclusive string  `json:"maxExclusive"`
	BudgetRU     float64 `json:"budgetRU"` // its share of the throughput, RU/s
	Items        int     `json:"items"`
	Bytes        int64   `json:"bytes"`
	RU           float64 `json:"ru"`
	Requests     int64   `json:"requests"`
	Throttled    int64   `json:"throttled"`
}

// Metrics reports every container's counters, sorted by database and container.
func (e *Emulator) Metrics() []ContainerMetrics {
	e.store.mu.RLock()
	var colls []*container
	for _, d := range e.store.dbs {
		for _, c := range d.colls {
			colls = append(colls, c)
		}
	}
	e.store.mu.RUnlock()
	out := make([]ContainerMetrics, 0, len(colls))
	for _, c := range colls {
		out = append(out, c.metrics())
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Database != out[j].Database {
			return out[i].Database < out[j].Database
		}
		return out[i].Container < out[j].Container
	})
	return out
}

// ContainerMetrics reports one container's counters.
func (e *Emulator) ContainerMetrics(db, coll string) (ContainerMetrics, error) {
	c, err := e.lookupContainer(db, coll)
	if err != nil {
		return ContainerMetrics{}, err
	}
	return c.metrics(), nil
}

func (c *container) metrics() ContainerMetrics {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sweepExpired() // expired items are gone for every observer
	m := ContainerMetrics{
		Database: c.db.id, Container: c.id, At: c.clock(),
		ThroughputRU: int(c.budgetRU), Autoscale: c.autoscale,
		RU: c.stats.ru, Requests: c.stats.requests, Throttled: c.stats.throttled,
	}
	m.CurrentRU = c.budgetRU
	if c.autoscale {
		m.CurrentRU = c.autoscaleLevel(c.clock())
	}
	rate := c.ratePerPartition()
	for _, p := range c.ranges {
		m.Items += p.count()
		m.Bytes += p.bytes
		m.Partitions = append(m.Partitions, PartitionMetrics{
			ID: p.id, MinInclusive: p.min, MaxExclusive: p.max, BudgetRU: rate,
			Items: p.count(), Bytes: p.bytes,
			RU: p.stats.ru, Requests: p.stats.requests, Throttled: p.stats.throttled,
		})
	}
	return m
}

// usageWindow tracks a container's consumption over the last second, which
// autoscale follows.
type usageWindow struct {
	start    time.Time
	ru       float64
	lastRate float64 // RU/s over the last complete window
}

func (u *usageWindow) add(now time.Time, ru float64) {
	if u.start.IsZero() {
		u.start = now
	}
	if el := now.Sub(u.start); el >= time.Second {
		u.lastRate = u.ru / el.Seconds()
		u.start, u.ru = now, 0
	}
	u.ru += ru
}

// autoscaleLevel is the RU/s autoscale provides now: the last second's
// consumption, at least 10% and at most 100% of the maximum (docs/cosmos-service.md#partitions-and-throughput;
// provision-throughput-autoscale.md). Throttling applies at the maximum.
func (c *container) autoscaleLevel(now time.Time) float64 {
	rate := c.usage.lastRate
	if now.Sub(c.usage.start) > 2*time.Second {
		rate = 0 // idle since the last window
	}
	floor := c.budgetRU / 10
	if rate < floor {
		return floor
	}
	if rate > c.budgetRU {
		return c.budgetRU
	}
	return rate
}
