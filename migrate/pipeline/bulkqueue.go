package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/rekey-dev/rekey/migrate"
)

// maxSendersPerPartition bounds the requests a partition's queue has
// forming or in flight at once. More items than its requests take wait in
// the queue and fill the next requests; how many of the requests go out
// at once is the limiter's (the partition's in-flight limit).
const maxSendersPerPartition = 4

// bulkQueue gathers the items of every page being written, per target
// partition, into bulk requests: a request carries the items of several
// pages (the source's ranges are written at once), and while a partition
// is busy its queue fills the next requests up. Each queue is emptied by
// up to maxSendersPerPartition senders, goroutines that exist while it has
// items. One per Writer; safe for concurrent use.
type bulkQueue struct {
	w *Writer

	mu    sync.Mutex
	parts map[string]*partitionQueue
}

// partitionQueue is one target partition's waiting items.
type partitionQueue struct {
	items   []*bulkItem
	senders int
}

func newBulkQueue(w *Writer) *bulkQueue {
	return &bulkQueue{w: w, parts: map[string]*partitionQueue{}}
}

// submit routes the items that need it and queues them; a page whose items
// cannot be routed fails.
func (q *bulkQueue) submit(items []*bulkItem) {
	items = q.route(items)
	q.mu.Lock()
	defer q.mu.Unlock()
	var touched []*partitionQueue
	for _, it := range items {
		pq, ok := q.parts[it.partition]
		if !ok {
			pq = &partitionQueue{}
			q.parts[it.partition] = pq
		}
		if len(pq.items) == 0 {
			touched = append(touched, pq)
		}
		pq.items = append(pq.items, it)
	}
	for _, pq := range touched {
		want := min(maxSendersPerPartition, (len(pq.items)+migrate.MaxBulkOperations-1)/migrate.MaxBulkOperations)
		for pq.senders < want {
			pq.senders++
			go q.sender(pq)
		}
	}
}

// route finds the partition of every item that has none, one page at a
// time under that page's context, and returns the items that have one.
func (q *bulkQueue) route(items []*bulkItem) []*bulkItem {
	byPage := map[*bulkPage][]*bulkItem{}
	out := items[:0:0]
	for _, it := range items {
		switch {
		case !it.page.alive():
		case it.partition == "":
			byPage[it.page] = append(byPage[it.page], it)
		default:
			out = append(out, it)
		}
	}
	for b, unrouted := range byPage {
		keys := make([]migrate.Key, len(unrouted))
		for i, it := range unrouted {
			keys[i] = it.c.Key()
		}
		var ids []string
		err := q.w.retry.Do(b.ctx, func() error {
			var err error
			ids, err = q.w.bulk.PartitionsOf(b.ctx, keys)
			return err
		})
		if err != nil {
			b.fail(fmt.Errorf("find the target partitions of %d items: %w", len(keys), err))
			continue
		}
		for i, it := range unrouted {
			it.partition = ids[i]
		}
		out = append(out, unrouted...)
	}
	return out
}

// sender sends the queue's items, a request at a time, until it is empty.
func (q *bulkQueue) sender(pq *partitionQueue) {
	for {
		req := q.take(pq)
		if req == nil {
			return
		}
		q.send(req)
	}
}

// take cuts the next request from the front of pq, dropping the items of
// pages that failed; nil when pq is empty (and the sender leaves).
func (q *bulkQueue) take(pq *partitionQueue) []*bulkItem {
	q.mu.Lock()
	defer q.mu.Unlock()
	live := pq.items[:0]
	for _, it := range pq.items {
		if it.page.alive() {
			live = append(live, it)
		}
	}
	clear(pq.items[len(live):])
	pq.items = live
	if len(pq.items) == 0 {
		pq.senders--
		return nil
	}
	req, rest := q.fit(pq.items)
	pq.items = rest
	if len(rest) == 0 {
		pq.items = nil // the taken items go with their request, not with this array
	}
	return req
}

// fit splits off the first request of items, which share a partition: at
// most MaxBulkOperations operations, a new request once the bodies reach
// BulkRequestBytes (a larger item goes alone, as does one whose answer was
// too large), and within what the RU cap and the partition's pace let one
// request spend now.
func (q *bulkQueue) fit(items []*bulkItem) (req, rest []*bulkItem) {
	maxRU := q.w.ruCap.RequestLimit()
	if s, ok := q.w.limit.(migrate.RequestSizer); ok {
		if l := s.RequestLimit(items[0].page.ctx, items[0].c.Key()); l > 0 && (maxRU == 0 || l < maxRU) {
			maxRU = l
		}
	}
	size, ru := 0, 0.0
	for i, it := range items {
		n, r := it.bytes(), it.expected()
		if i > 0 && (it.alone || items[0].alone || i == migrate.MaxBulkOperations || size+n > migrate.BulkRequestBytes || (maxRU > 0 && ru+r > maxRU)) {
			return items[:i:i], items[i:]
		}
		size += n
		ru += r
	}
	return items, nil
}

// errFenced is returned by a request's fence when a page of its items may
// no longer write (its lease was lost): those pages fail, the others' items
// go again.
var errFenced = errors.New("a page of the request was fenced")

// send sends one request of items under the retry policy: a 429 or a
// transient failure of the whole request, or of some of its operations,
// sends those again to the same partition (after the retry-after, or a
// backoff, bounded as for every request); every other answer moves each
// item on (answered). A 410 routes the items again; a request too large,
// or refused, is split until the item at fault stands alone. A failure
// that must stop the pages stops every page of the request.
func (q *bulkQueue) send(items []*bulkItem) {
	pending := items
	for {
		if pending = livePages(pending); len(pending) == 0 {
			return
		}
		ctx, done := requestContext(pending)
		err := q.w.retry.Do(ctx, func() error {
			if pending = livePages(pending); len(pending) == 0 {
				return nil
			}
			// What was cut to fit when it was queued may not fit now (the
			// partition's requests shrink while it throttles).
			var rest []*bulkItem
			if pending, rest = q.fit(pending); len(rest) > 0 {
				q.submit(rest)
			}
			resp, err := q.attempt(ctx, pending)
			if err != nil {
				return err
			}
			var again error
			pending, again = q.answered(pending, resp)
			return again
		})
		done()
		switch {
		case err == nil:
			return
		case errors.Is(err, errFenced):
			continue
		case errors.Is(err, migrate.ErrGone):
			q.spend(pending[0].page, migrate.ErrorRU(err))
			for _, it := range pending {
				if rerr := it.reroute(err); rerr != nil {
					it.page.fail(rerr)
				}
			}
			q.submit(pending)
			return
		case len(pending) > 1 && (errors.Is(err, migrate.ErrTooLarge) || errors.Is(err, migrate.ErrBadRequest)):
			q.spend(pending[0].page, migrate.ErrorRU(err))
			half := len(pending) / 2
			q.send(pending[:half:half])
			q.send(pending[half:])
			return
		case errors.Is(err, migrate.ErrTooLarge), errors.Is(err, migrate.ErrBadRequest):
			q.spend(pending[0].page, migrate.ErrorRU(err))
			it := pending[0]
			it.moveOn(it.page.failed(it, err))
			return
		}
		err = fmt.Errorf("bulk request of %d operations to target partition %s: %w", len(pending), pending[0].partition, err)
		for _, it := range pending {
			it.page.fail(err)
		}
		return
	}
}

// spend records ru of a request as conflict-check RU of page b.
func (q *bulkQueue) spend(b *bulkPage, ru float64) {
	if ru > 0 {
		b.spend(&b.stats.checkRU, ru)
	}
}

// attempt sends items as one bulk request, once, under the flow control
// and behind the fences of their pages.
func (q *bulkQueue) attempt(ctx context.Context, items []*bulkItem) (migrate.BulkResponse, error) {
	ops := make([]migrate.BulkOp, len(items))
	expected := 0.0
	for i, it := range items {
		ops[i] = it.op()
		expected += it.expected()
	}
	pw := &pageWriter{Writer: q.w, fence: fenceOf(items)}
	req := request{key: items[0].c.Key(), expected: expected, ops: len(ops), bulk: true}
	var resp migrate.BulkResponse
	err := pw.attempt(ctx, req, func(ctx context.Context) (answer, error) {
		var err error
		resp, err = q.w.bulk.Bulk(ctx, items[0].partition, ops)
		if err != nil {
			return answer{}, err
		}
		if len(resp.Results) != len(ops) {
			return answer{ru: resp.RU}, fmt.Errorf("bulk request to partition %s: %d answers for %d operations", items[0].partition, len(resp.Results), len(ops))
		}
		return bulkAnswer(resp), nil
	})
	return resp, err
}

// livePages returns the items whose pages still wait for them.
func livePages(items []*bulkItem) []*bulkItem {
	live := items[:0:0]
	for _, it := range items {
		if it.page.alive() {
			live = append(live, it)
		}
	}
	return live
}

// pagesOf lists the distinct pages of items.
func pagesOf(items []*bulkItem) []*bulkPage {
	var out []*bulkPage
	seen := map[*bulkPage]bool{}
	for _, it := range items {
		if !seen[it.page] {
			seen[it.page] = true
			out = append(out, it.page)
		}
	}
	return out
}

// requestContext is the context of a request carrying items: it ends when
// every page of the items has (done or failed), so that a request nobody
// waits for is given up. done releases it.
func requestContext(items []*bulkItem) (ctx context.Context, done func()) {
	ctx, cancel := context.WithCancel(context.Background())
	pages := pagesOf(items)
	var waiting atomic.Int64
	waiting.Store(int64(len(pages)))
	stops := make([]func() bool, len(pages))
	for i, b := range pages {
		stops[i] = context.AfterFunc(b.ctx, func() {
			if waiting.Add(-1) == 0 {
				cancel()
			}
		})
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancel()
	}
}

// fenceOf is the fence of a request carrying items: each page's fence (the
// lease hold of its range). A page refused by its fence fails, and the
// request does not leave (errFenced): the other pages' items go again.
//
// The fences are waited for one after another, and waiting for one (its
// range's renewal) may outlast another's window; so the request leaves
// only once they all pass together, checked without waiting: a fence asked
// with a done context answers at once, nil when its range is writable now
// (lease.Hold.Fence).
func fenceOf(items []*bulkItem) func(context.Context) error {
	pages := pagesOf(items)
	now, cancel := context.WithCancel(context.Background())
	cancel()
	return func(ctx context.Context) error {
		for {
			fenced := false
			for _, b := range pages {
				if b.fence == nil {
					continue
				}
				if err := b.fence(ctx); err != nil {
					b.fail(err)
					fenced = true
				}
			}
			if fenced {
				return errFenced
			}
			if allWritable(now, pages) {
				return nil
			}
		}
	}
}

// allWritable reports whether every page's fence passes at once; now is a
// done context, so that none waits.
func allWritable(now context.Context, pages []*bulkPage) bool {
	for _, b := range pages {
		if b.fence != nil && b.fence(now) != nil {
			return false
		}
	}
	return true
}

// bulkAnswer is what a bulk response tells the flow control.
func bulkAnswer(resp migrate.BulkResponse) answer {
	a := answer{ru: resp.RU}
	for _, r := range resp.Results {
		switch {
		case r.Err == nil:
		case errors.Is(r.Err, migrate.ErrThrottled):
			a.throttledOps++
			a.retryAfter = max(a.retryAfter, migrate.RetryAfter(r.Err))
		case errors.Is(r.Err, migrate.ErrGone):
			a.gone = true
		}
	}
	return a
}

// answered moves each item of a request on by its operation's answer. It
// returns the items to send again to the same partition, with the error
// that says how long to wait (the 429 with the longest retry-after, else a
// transient failure; nil when there are none); the items that take
// another step or another partition are queued anew. Items of pages that
// failed meanwhile are dropped.
func (q *bulkQueue) answered(items []*bulkItem, resp migrate.BulkResponse) (resend []*bulkItem, wait error) {
	var next []*bulkItem
	opsRU := 0.0
	for i, r := range resp.Results {
		it, b := items[i], items[i].page
		opsRU += r.RU
		if !b.alive() {
			continue
		}
		switch {
		case r.Err == nil:
			if n := it.moveOn(b.succeeded(it, r)); n != nil {
				next = append(next, n)
			}
		case r.Resend:
			q.spend(b, r.RU)
			switch {
			case errors.Is(r.Err, migrate.ErrGone):
				if err := it.reroute(r.Err); err != nil {
					b.fail(err)
					continue
				}
				next = append(next, it)
			case errors.Is(r.Err, migrate.ErrThrottled):
				resend = append(resend, it)
				if wait == nil || !errors.Is(wait, migrate.ErrThrottled) || migrate.RetryAfter(r.Err) > migrate.RetryAfter(wait) {
					wait = r.Err
				}
			case errors.Is(r.Err, migrate.ErrTransient):
				resend = append(resend, it)
				if wait == nil {
					wait = r.Err
				}
			default: // the answer was too large: the item goes alone
				it.tooLarge++
				if it.tooLarge > maxReroutes {
					b.fail(fmt.Errorf("item %q under key %s: %w", it.c.Result.ID, it.c.Key(), r.Err))
					continue
				}
				it.alone = true
				next = append(next, it)
			}
		default:
			q.spend(b, r.RU)
			if n := it.moveOn(b.failed(it, r.Err)); n != nil {
				next = append(next, n)
			}
		}
	}
	if extra := resp.RU - opsRU; extra > 0 {
		q.spend(items[0].page, extra)
	}
	if len(next) > 0 {
		q.submit(next)
	}
	return resend, wait
}
