package emulator

import (
	"fmt"
	"math/big"
)

// partitionsNeeded is how many physical partitions serve ru RU/s: each takes
// at most 10,000 RU/s.
func partitionsNeeded(ru int) int {
	n := (ru + maxRUPerPartition - 1) / maxRUPerPartition
	if n < 1 {
		n = 1
	}
	return n
}

// largestRange returns the live partition with the widest EPK range, the
// lowest one among equals; c.mu must be held.
func (c *container) largestRange() *partition {
	var best *partition
	var bestWidth *big.Int
	for _, p := range c.ranges {
		w := rangeWidth(c.pk.version, p.min, p.max)
		if best == nil || w.Cmp(bestWidth) > 0 {
			best, bestWidth = p, w
		}
	}
	return best
}

// SplitRange splits the live partition key range id of container
// db/coll now, without waiting for the split delay. Tests use it to split a
// range in the middle of a copy.
func (e *Emulator) SplitRange(db, coll, id string) error {
	c, err := e.lookupContainer(db, coll)
	if err != nil {
		return err
	}
	c.mu.Lock()
	p, ok := c.rangeByID[id]
	if !ok {
		c.mu.Unlock()
		return fmt.Errorf("container %s/%s has no partition key range %q", db, coll, id)
	}
	err = c.split(p)
	c.mu.Unlock()
	if err == nil && c.offer == nil {
		e.rebalanceDatabase(c.db)
	}
	return err
}

// lookupContainer finds a container by database and container id.
func (e *Emulator) lookupContainer(db, coll string) (*container, error) {
	e.store.mu.RLock()
	defer e.store.mu.RUnlock()
	d := e.store.findDatabase(db)
	if d == nil {
		return nil, fmt.Errorf("database %q does not exist", db)
	}
	c := d.findContainer(coll)
	if c == nil {
		return nil, fmt.Errorf("container %s/%s does not exist", db, coll)
	}
	return c, nil
}
