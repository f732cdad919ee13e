package emulator

import (
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"
)

// container is a Cosmos container: its definition, its physical partitions
// and their items. mu guards everything below it.
type container struct {
	db       *database
	id, rid  string
	ridBytes []byte
	pk       pkDefinition
	clock    func() time.Time // the account's clock (Options.Clock)

	mu           sync.Mutex
	ts           int64
	etag         string
	body         props
	offer        *offer                // dedicated throughput; nil when it shares the database's
	budgetRU     float64               // RU/s the container may consume, split across its partitions
	autoscale    bool                  // budgetRU is an autoscale maximum
	stats        partitionStats        // totals over the container's life, gone partitions included
	usage        usageWindow           // consumption over the last second (autoscale level)
	indexed      bool                  // the indexing policy indexes something (writes cost more)
	ranges       []*partition          // live partitions, sorted by min EPK
	rangeByID    map[string]*partition // every partition ever, gone ones included
	rangeLog     []*partition          // creation order: the /pkranges change feed
	nextRange    int
	lsn          uint64     // container-wide log sequence number
	seq          uint64     // item creation counter (the _rid ordinal)
	pendingSplit bool       // a throughput raise scheduled splits that have not run yet
	versions     versionLog // the all-versions-and-deletes log (changeFeedPolicy)
	defaultTTL   int        // defaultTtl: 0 off, -1 on without a default, else seconds
	nextExpiry   int64      // unix second the next item expires; 0 unknown, see ttl.go
}

func (c *container) self() string { return c.db.self() + "colls/" + c.rid + "/" }

// link is the name-based address, as errors and logs show it.
func (c *container) link() string { return "dbs/" + c.db.id + "/colls/" + c.id }

// initRanges creates n physical partitions covering the whole EPK space.
func (c *container) initRanges(n int) error {
	bounds, err := splitPoints(c.pk.version, minEPK, maxEPK, n)
	if err != nil {
		return fmt.Errorf("container %s: %w", c.id, err)
	}
	c.rangeByID = map[string]*partition{}
	edges := append(append([]string{minEPK}, bounds...), maxEPK)
	for i := 0; i < n; i++ {
		c.addRange(edges[i], edges[i+1], nil)
	}
	return nil
}

func (c *container) addRange(min, max string, parents []string) *partition {
	id := strconv.Itoa(c.nextRange)
	c.nextRange++
	p := newPartition(id, c.rangeRID(id), min, max, parents, c.clock().Unix())
	p.logIndex = len(c.rangeLog) + 1
	c.rangeLog = append(c.rangeLog, p)
	c.rangeByID[id] = p
	c.ranges = append(c.ranges, p)
	sort.Slice(c.ranges, func(i, j int) bool { return compareEPK(c.ranges[i].min, c.ranges[j].min) < 0 })
	return p
}

func (c *container) rangeRID(id string) string {
	n, _ := strconv.Atoi(id)
	b := make([]byte, 8, 16)
	copy(b, c.ridBytes)
	b = append(b, 0, 0, 0, 0, 0, 0, 0x50, byte(n)) // ridPrefix-style tail, unique per range
	return encodeRID(b)
}

// partitionFor returns the live partition whose range holds epk.
func (c *container) partitionFor(epk string) *partition {
	i := sort.Search(len(c.ranges), func(i int) bool { return compareEPK(c.ranges[i].min, epk) > 0 }) - 1
	if i < 0 {
		i = 0
	}
	return c.ranges[i]
}

// overlapping returns the live partitions intersecting [min, max).
func (c *container) overlapping(min, max string) []*partition {
	var out []*partition
	for _, p := range c.ranges {
		if compareEPK(p.max, min) > 0 && compareEPK(p.min, max) < 0 {
			out = append(out, p)
		}
	}
	return out
}

// nextLSN advances and returns the container's log sequence number.
func (c *container) nextLSN() uint64 {
	c.lsn++
	return c.lsn
}

// split replaces live partition p by two children that divide its range at
// the EPK midpoint; p's items move to the child whose range holds them.
// Requests that still name p afterwards get 410 / 1002.
func (c *container) split(p *partition) error {
	if p.gone {
		return fmt.Errorf("partition key range %s is already split", p.id)
	}
	mids, err := splitPoints(c.pk.version, p.min, p.max, 2)
	if err != nil {
		return fmt.Errorf("split partition key range %s: %w", p.id, err)
	}
	live := c.ranges[:0]
	for _, r := range c.ranges {
		if r != p {
			live = append(live, r)
		}
	}
	c.ranges = live
	p.gone = true
	left := c.addRange(p.min, mids[0], []string{p.id})
	right := c.addRange(mids[0], p.max, []string{p.id})
	p.bySeq.Ascend(func(it *item) bool {
		if compareEPK(it.epk, mids[0]) < 0 {
			left.put(nil, it)
		} else {
			right.put(nil, it)
		}
		return true
	})
	left.stats.ru, right.stats.ru = p.stats.ru/2, p.stats.ru/2
	return nil
}

// itemCount returns the number of items in the container.
func (c *container) itemCount() int {
	n := 0
	for _, p := range c.ranges {
		n += p.count()
	}
	return n
}

// touch updates the container's ETag and _ts after a definition change.
func (c *container) touch(etag string) {
	c.etag = etag
	c.ts = c.clock().Unix()
}
