package emulator

import (
	"time"

	"github.com/google/btree"
)

// item is one stored document.
type item struct {
	id    string
	pkKey string // canonical form of the partition key, see pkKeyOf
	pk    []any
	epk   string
	seq   uint64 // creation ordinal: the _rid order queries scan in
	lsn   uint64 // container-wide log sequence number of the last write
	ts    int64  // _ts, seconds
	mtime time.Time
	etag  string
	rid   string
	doc   []byte // the stored JSON, system properties included
}

type itemKey struct {
	pk string
	id string
}

// partition is one physical partition: a partition key range with its items.
// A split leaves the parent "gone" and moves its items to two children.
type partition struct {
	id       string
	rid      string
	min, max string // EPK range [min, max)
	parents  []string
	gone     bool
	ts       int64
	logIndex int // position in the container's range log (the /pkranges feed)

	items map[itemKey]*item
	byID  map[string][]*item
	byLSN *btree.BTreeG[*item] // change feed order
	bySeq *btree.BTreeG[*item] // scan order
	bytes int64                // stored document bytes

	budget bucket // RU budget, see throttle.go
	stats  partitionStats
}

func newPartition(id, rid, min, max string, parents []string, ts int64) *partition {
	return &partition{
		id: id, rid: rid, min: min, max: max, parents: parents, ts: ts,
		items: map[itemKey]*item{},
		byID:  map[string][]*item{},
		byLSN: btree.NewG(32, func(a, b *item) bool { return a.lsn < b.lsn }),
		bySeq: btree.NewG(32, func(a, b *item) bool { return a.seq < b.seq }),
	}
}

func (p *partition) get(pkKey, id string) *item {
	return p.items[itemKey{pkKey, id}]
}

// put stores it, replacing old (the previous version of the same item, or nil).
func (p *partition) put(old, it *item) {
	if old != nil {
		p.byLSN.Delete(old)
		p.bySeq.Delete(old)
		p.bytes -= int64(len(old.doc))
		ids := p.byID[old.id]
		for i, x := range ids {
			if x == old {
				ids[i] = it
			}
		}
	} else {
		p.byID[it.id] = append(p.byID[it.id], it)
	}
	p.items[itemKey{it.pkKey, it.id}] = it
	p.byLSN.ReplaceOrInsert(it)
	p.bySeq.ReplaceOrInsert(it)
	p.bytes += int64(len(it.doc))
}

// remove deletes it.
func (p *partition) remove(it *item) {
	delete(p.items, itemKey{it.pkKey, it.id})
	ids := p.byID[it.id]
	for i, x := range ids {
		if x == it {
			ids = append(ids[:i], ids[i+1:]...)
			break
		}
	}
	if len(ids) == 0 {
		delete(p.byID, it.id)
	} else {
		p.byID[it.id] = ids
	}
	p.byLSN.Delete(it)
	p.bySeq.Delete(it)
	p.bytes -= int64(len(it.doc))
}

// count is the number of items stored.
func (p *partition) count() int { return len(p.items) }

// partitionStats are the per-partition counters the metrics API reports.
type partitionStats struct {
	requests  int64
	throttled int64
	ru        float64
}
