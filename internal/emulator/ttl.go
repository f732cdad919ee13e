package emulator

import (
	"strconv"
	"time"
)

// Time to live (https://learn.microsoft.com/azure/cosmos-db/nosql/time-to-live):
// with a container defaultTtl set (-1: on, no default), an item expires
// defaultTtl seconds after its last write, or after its own "ttl" property
// (-1: never) when it has one; without a container defaultTtl nothing
// expires. The service deletes expired items in the background; the
// emulator removes them when a request reaches the container, at most once
// a second, and records each removal in the all-versions log with
// timeToLiveExpired.
const sweepInterval = time.Second

// sweepExpired removes expired items; c.mu is held.
func (c *container) sweepExpired() {
	if c.defaultTTL == 0 {
		return
	}
	now := time.Now()
	if now.Sub(c.lastSweep) < sweepInterval {
		return
	}
	c.lastSweep = now
	var expired []*item
	var parts []*partition
	for _, p := range c.ranges {
		p.bySeq.Ascend(func(it *item) bool {
			if c.expired(it, now.Unix()) {
				expired = append(expired, it)
				parts = append(parts, p)
			}
			return true
		})
	}
	for i, it := range expired {
		parts[i].remove(it)
		lsn := c.nextLSN()
		c.recordChange(change{kind: changeDelete, lsn: lsn, prevLSN: it.lsn, crts: now.Unix(), epk: it.epk, pkKey: it.pkKey, pk: it.pk, id: it.id, previous: it.doc, ttlExpired: true})
	}
}

// expired reports whether it has outlived its time to live at unix second now.
func (c *container) expired(it *item, now int64) bool {
	ttl := c.defaultTTL
	if raw, ok := itemTTL(it.doc); ok {
		ttl = raw
	}
	return ttl > 0 && it.ts+int64(ttl) <= now
}

// itemTTL reads an item's own top-level "ttl" property.
func itemTTL(doc []byte) (int, bool) {
	members, err := parseObject(doc)
	if err != nil {
		return 0, false
	}
	for _, m := range members {
		if m.key == "ttl" {
			n, err := strconv.Atoi(string(m.raw))
			return n, err == nil
		}
	}
	return 0, false
}

// parseDefaultTTL reads a validated defaultTtl (see validateTTL).
func parseDefaultTTL(raw []byte) int {
	if raw == nil {
		return 0
	}
	n, _ := strconv.Atoi(string(raw))
	return n
}
