package emulator

import (
	"math"
	"strconv"
)

// Time to live (https://learn.microsoft.com/azure/cosmos-db/nosql/time-to-live):
// with a container defaultTtl set (-1: on, no default), an item expires
// defaultTtl seconds after its last write (_ts), or after its own "ttl"
// property (-1: never) when it has one; without a container defaultTtl
// nothing expires, whatever the items say. An expired item is gone for
// reads, queries and feeds at once; the service deletes it in the
// background, and the all-versions feed shows that deletion with
// timeToLiveExpired.
//
// Time is the account's clock (Options.Clock), which also stamps _ts, so a
// test on a manual clock expires items by advancing it. The emulator has no
// background goroutine: every request that reads a container's items first
// removes the items whose time has come (sweepExpired), which no client can
// tell from a background deletion, and which a manual clock makes
// deterministic. nextExpiry keeps the sweep from scanning a container on
// every request.

// noExpiry is nextExpiry when no item of the container can expire.
const noExpiry = math.MaxInt64

// sweepExpired removes the items that have expired by the account's clock
// and records each removal in the all-versions log; c.mu is held. It scans
// the container only once its earliest known expiry has come.
func (c *container) sweepExpired() {
	if c.defaultTTL == 0 {
		return
	}
	now := c.clock().Unix()
	if c.nextExpiry != 0 && now < c.nextExpiry {
		return
	}
	next := int64(noExpiry)
	var expired []*item
	var parts []*partition
	for _, p := range c.ranges {
		p.bySeq.Ascend(func(it *item) bool {
			at, ok := c.expiresAt(it)
			switch {
			case !ok:
			case at <= now:
				expired = append(expired, it)
				parts = append(parts, p)
			case at < next:
				next = at
			}
			return true
		})
	}
	c.nextExpiry = next
	for i, it := range expired {
		parts[i].remove(it)
		lsn := c.nextLSN()
		c.recordChange(change{kind: changeDelete, lsn: lsn, prevLSN: it.lsn, crts: now, epk: it.epk, pkKey: it.pkKey, pk: it.pk, id: it.id, previous: it.doc, ttlExpired: true})
	}
}

// scheduleExpiry brings the container's next sweep forward to when it, just
// written, expires; c.mu is held. A write undone by a batch rollback may
// leave the sweep earlier than needed, which costs one scan.
func (c *container) scheduleExpiry(it *item) {
	if c.nextExpiry == 0 {
		return // unknown: the next request scans anyway
	}
	if at, ok := c.expiresAt(it); ok && at < c.nextExpiry {
		c.nextExpiry = at
	}
}

// expired reports whether it has outlived its time to live at unix second now.
func (c *container) expired(it *item, now int64) bool {
	at, ok := c.expiresAt(it)
	return ok && at <= now
}

// expiresAt returns the unix second it expires at, and false when it never
// does: the container has no defaultTtl, or the effective ttl is -1.
func (c *container) expiresAt(it *item) (int64, bool) {
	if c.defaultTTL == 0 {
		return 0, false
	}
	ttl := c.defaultTTL
	if own, ok := itemTTL(it.doc); ok {
		ttl = own
	}
	if ttl <= 0 {
		return 0, false
	}
	return it.ts + int64(ttl), true
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
