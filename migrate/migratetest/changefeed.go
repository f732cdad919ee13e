package migratetest

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/rekey-dev/rekey/internal/epk"
	"github.com/rekey-dev/rekey/migrate"
)

// ErrBadContinuation is wrapped by ReadChanges's error for a continuation
// it did not issue, as the adapter refuses one.
var ErrBadContinuation = errors.New("not a change feed continuation of this container")

// defaultPageSize is the page size when a request gives none.
const defaultPageSize = 100

// token is a continuation: a queue of physical ranges, each with the LSN
// read up to, the head read next. It has the shape of the SDK's composite
// token, which the adapter hands out.
type token struct {
	Version int          `json:"v"`
	Ranges  []tokenRange `json:"ranges"`
}

type tokenRange struct {
	Min string `json:"min"`
	Max string `json:"max"`
	// LSN is the last LSN read; nil before the range was read (a read
	// then starts at the request's StartFrom, or at the beginning).
	LSN *uint64 `json:"lsn,omitempty"`
}

const tokenVersion = 1

// ReadChanges reads one page of a feed range's latest-version change feed,
// as the adapter does through the SDK:
//
//   - the first call of a range (no Continuation) queues the physical
//     partitions that overlap it, each whole (the SDK reads a partition's
//     feed, not a part of it); later calls resume from the Continuation,
//     which survives splits: a queued partition that split is replaced by
//     its children, each starting where the parent was;
//   - a call reads the queue's head and moves it to the back; when the head
//     has changes they are the page, else the next partition is read, until
//     each was read once: then the page is empty (the end of the feed for
//     now) and its Continuation must still be kept;
//   - a page holds up to PageSize items of one partition, each once at its
//     latest version, in the order of their latest LSN, with "_lsn" added;
//     deleted and expired items do not appear;
//   - StartFrom, when set, leaves out items last changed before it (to the
//     second, as the SDK sends it in If-Modified-Since), in the partitions
//     the continuation has not read yet (every one without a continuation);
//     those it has read resume from it.
func (c *Container) ReadChanges(ctx context.Context, req migrate.ChangeRequest) (migrate.ChangePage, error) {
	page, err := c.readChanges(ctx, req)
	if err == nil {
		c.fed(req, page)
	}
	return page, err
}

func (c *Container) readChanges(ctx context.Context, req migrate.ChangeRequest) (migrate.ChangePage, error) {
	op := fmt.Sprintf("read change feed range [%s, %s)", req.Range.Min, req.Range.Max)
	if err := ctx.Err(); err != nil {
		return migrate.ChangePage{}, fmt.Errorf("%s: %w", op, err)
	}
	if err := c.before(OpFeed, nil, ""); err != nil {
		return migrate.ChangePage{}, err
	}
	pageSize := req.PageSize
	if pageSize <= 0 {
		pageSize = defaultPageSize
	}
	var since time.Time
	if !req.StartFrom.IsZero() {
		since = req.StartFrom.UTC().Truncate(time.Second)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var tok token
	if req.Continuation != "" {
		if err := json.Unmarshal([]byte(req.Continuation), &tok); err != nil || tok.Version != tokenVersion || len(tok.Ranges) == 0 {
			return migrate.ChangePage{}, fmt.Errorf("%s: continuation %.40q: %w", op, req.Continuation, ErrBadContinuation)
		}
	} else {
		for _, p := range c.overlapping(req.Range.Min, req.Range.Max) {
			tok.Ranges = append(tok.Ranges, tokenRange{Min: p.min, Max: p.max})
		}
		tok.Version = tokenVersion
	}

	page := migrate.ChangePage{}
	for turns := len(tok.Ranges); turns > 0; {
		head := tok.Ranges[0]
		parts := c.overlapping(head.Min, head.Max)
		if len(parts) > 1 { // the partition split since: its children take its place
			children := make([]tokenRange, len(parts))
			for i, p := range parts {
				children[i] = tokenRange{Min: p.min, Max: p.max, LSN: head.LSN}
			}
			tok.Ranges = slices.Replace(tok.Ranges, 0, 1, children...)
			turns += len(children) - 1
			continue
		}
		from := since
		if head.LSN != nil { // read before: the continuation says where
			from = time.Time{}
		}
		items, next := c.partitionChanges(parts[0], head.LSN, from, pageSize)
		head.LSN = &next
		tok.Ranges = append(tok.Ranges[1:], head)
		turns--
		if len(items) == 0 {
			page.RU += notModifiedRU
			continue
		}
		page.RU += feedPageRU
		for _, it := range items {
			page.Items = append(page.Items, withLSN(it.doc, it.lsn))
			page.RU += sizeFactor(len(it.doc))
		}
		break
	}
	b, err := json.Marshal(tok)
	if err != nil {
		return migrate.ChangePage{}, fmt.Errorf("%s: %w", op, err)
	}
	page.Continuation = string(b)
	return page, nil
}

// partitionChanges returns a partition's items changed after LSN after
// (all when nil) and not before since, up to n in LSN order, and the LSN to
// resume after: the last item's when the page is full, else the
// container's latest; c.mu is held.
func (c *Container) partitionChanges(p partition, after *uint64, since time.Time, n int) ([]*item, uint64) {
	from := uint64(0)
	if after != nil {
		from = *after
	}
	r := epk.Range{Min: p.min, Max: p.max}
	now := c.now()
	var found []*item
	for _, it := range c.items {
		if it.lsn > from && r.Contains(it.epk) && it.live(now) && !it.mtime.Before(since) {
			found = append(found, it)
		}
	}
	slices.SortFunc(found, func(a, b *item) int { return cmp.Compare(a.lsn, b.lsn) })
	if len(found) >= n {
		found = found[:n]
		return found, found[n-1].lsn
	}
	return found, max(c.lsn, from)
}
