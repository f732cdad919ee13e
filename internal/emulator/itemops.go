package emulator

import (
	"fmt"
	"net/http"
)

// itemOps applies item writes to a container whose mu the caller holds. It
// records an undo log so a transactional batch can roll every write back.
type itemOps struct {
	c    *container
	undo []undoStep
	// versionMark is the length of the container's all-versions log before
	// the first write (marked once set), so a rollback drops the changes
	// the writes recorded.
	versionMark int
	marked      bool
}

type undoStep struct {
	p        *partition
	old, new *item // old nil: new was created; new nil: old was deleted
}

// rollback reverts every write recorded so far, newest first.
func (o *itemOps) rollback() {
	for i := len(o.undo) - 1; i >= 0; i-- {
		u := o.undo[i]
		switch {
		case u.old == nil:
			u.p.remove(u.new)
		case u.new == nil:
			u.p.put(nil, u.old)
		default:
			u.p.put(u.new, u.old)
		}
	}
	o.undo = nil
	if o.marked && o.versionMark <= len(o.c.versions.changes) {
		o.c.versions.changes = o.c.versions.changes[:o.versionMark]
	}
}

// record appends a change to the container's all-versions log, noting
// where this itemOps' changes start.
func (o *itemOps) record(ch change) {
	if !o.marked {
		o.versionMark, o.marked = len(o.c.versions.changes), true
	}
	o.c.recordChange(ch)
}

// locate returns the partition holding the key and the key's canonical form.
func (o *itemOps) locate(pk []any) (*partition, string) {
	return o.c.partitionFor(o.c.epkOf(pk)), pkKeyOf(pk)
}

func (o *itemOps) read(pk []any, id string) (*item, *partition, *svcError) {
	p, key := o.locate(pk)
	it := p.get(key, id)
	if it == nil || o.c.expired(it, o.c.clock().Unix()) {
		// An expired item is gone for reads before the background
		// deletion removes it (time-to-live.md).
		return nil, p, notFound()
	}
	return it, p, nil
}

// write stores members as item id under pk. mode selects create (409 when it
// exists), replace (404 when it does not) or upsert; ifMatch, when set, must
// equal the current ETag. It returns the new item and whether it was created.
func (o *itemOps) write(mode writeMode, pk []any, id string, members []member, ifMatch string) (*item, bool, *svcError) {
	c := o.c
	p, key := o.locate(pk)
	old := p.get(key, id)
	switch {
	case mode == modeCreate && old != nil:
		return nil, false, conflict()
	case mode == modeReplace && old == nil:
		return nil, false, notFound()
	case ifMatch != "" && ifMatch != "*" && (old == nil || old.etag != ifMatch):
		return nil, false, preconditionFailed()
	}
	now := c.clock()
	lsn := c.nextLSN()
	it := &item{id: id, pkKey: key, pk: pk, epk: c.epkOf(pk), lsn: lsn, ts: now.Unix(), mtime: now, etag: c.itemETag(lsn)}
	if old != nil {
		it.seq, it.rid = old.seq, old.rid
	} else {
		c.seq++
		it.seq, it.rid = c.seq, itemRID(c.ridBytes, c.seq)
	}
	it.doc = buildDocument(members, systemProps{
		rid:  it.rid,
		self: c.self() + "docs/" + it.rid + "/",
		etag: it.etag,
		ts:   it.ts,
	})
	if len(it.doc) > maxDocumentBytes {
		return nil, false, tooLarge()
	}
	p.put(old, it)
	c.scheduleExpiry(it)
	o.undo = append(o.undo, undoStep{p: p, old: old, new: it})
	ch := change{kind: changeCreate, lsn: lsn, crts: it.ts, epk: it.epk, pkKey: key, pk: pk, id: id, current: it.doc}
	if old != nil {
		ch.kind, ch.prevLSN = changeReplace, old.lsn
	}
	o.record(ch)
	return it, old == nil, nil
}

// remove deletes item id under pk; ifMatch as for write.
func (o *itemOps) remove(pk []any, id, ifMatch string) (*item, *svcError) {
	it, p, err := o.read(pk, id)
	if err != nil {
		return nil, err
	}
	if ifMatch != "" && ifMatch != "*" && it.etag != ifMatch {
		return nil, preconditionFailed()
	}
	p.remove(it)
	lsn := o.c.nextLSN()
	o.undo = append(o.undo, undoStep{p: p, old: it})
	o.record(change{kind: changeDelete, lsn: lsn, prevLSN: it.lsn, crts: o.c.clock().Unix(), epk: it.epk, pkKey: it.pkKey, pk: it.pk, id: it.id, previous: it.doc})
	return it, nil
}

type writeMode int

const (
	modeCreate writeMode = iota
	modeReplace
	modeUpsert
)

// itemETag derives an item's ETag from its LSN, in the service's format.
func (c *container) itemETag(lsn uint64) string {
	return fmt.Sprintf("\"%08x-0000-0000-0000-%012x\"", c.ridBytes[7], lsn)
}

// statusFor is the HTTP status of a successful write.
func statusFor(mode writeMode, created bool) int {
	if mode == modeReplace || (mode == modeUpsert && !created) {
		return http.StatusOK
	}
	return http.StatusCreated
}
