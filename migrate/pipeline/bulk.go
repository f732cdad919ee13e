package pipeline

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/sync/errgroup"

	"github.com/rekey-dev/rekey/migrate"
)

// The bulk write path: a page's items travel in bulk requests grouped by
// the target's physical partition (docs/cosmos-bulk.md), each operation
// with its own answer, through the steps of the item-by-item path (create;
// on a conflict read the existing item, compare, replace with If-Match),
// so that nothing is silently overwritten either way. An item is in at
// most one request at a time; requests to different partitions, and
// different steps of different items, go concurrently.

// bulkStep is the step an item is at.
type bulkStep int

const (
	stepCreate  bulkStep = iota // create it
	stepRead                    // its (id, key) exists: read the existing item
	stepReplace                 // the existing item is an older copy of the same source item: replace it
)

// maxReroutes bounds how often one item is routed again after 410s, which
// a split answers for a moment, not forever.
const maxReroutes = 16

// bulkItem is one change on its way through bulk requests.
type bulkItem struct {
	c         *Change
	step      bulkStep
	etag      string // of the existing item, for stepReplace
	partition string // where it goes; "" to route it (again)
	reroutes  int    // routed again after a 410
	rounds    int    // started over: the existing item changed or vanished between steps
	tooLarge  int    // sent alone after a response too large
}

// op is the item's next operation.
func (it *bulkItem) op() migrate.BulkOp {
	switch it.step {
	case stepRead:
		return migrate.BulkOp{Type: migrate.BulkRead, Key: it.c.Key(), ID: it.c.Result.ID}
	case stepReplace:
		return migrate.BulkOp{Type: migrate.BulkReplace, Key: it.c.Key(), ID: it.c.Result.ID, Body: it.c.Result.Item, IfMatch: it.etag}
	}
	return migrate.BulkOp{Type: migrate.BulkCreate, Key: it.c.Key(), Body: it.c.Result.Item}
}

// expected is the operation's expected charge.
func (it *bulkItem) expected() float64 {
	n := len(it.c.Result.Item)
	switch it.step {
	case stepRead:
		return migrate.ReadCharge(n)
	case stepReplace:
		return migrate.ReplaceCharge(n)
	}
	return migrate.CreateCharge(n)
}

// bytes is about what the operation adds to a request's body.
func (it *bulkItem) bytes() int {
	if it.step == stepRead {
		return len(it.c.Result.ID) + 96
	}
	return len(it.c.Result.Item) + 96
}

// startOver sends the item back to its create, after the existing item
// vanished or changed between the steps.
func (it *bulkItem) startOver() error {
	it.rounds++
	if it.rounds >= maxReconcileRounds {
		return fmt.Errorf("item %q under key %s kept changing in the target while it was written (%d rounds)", it.c.Result.ID, it.c.Key(), it.rounds)
	}
	it.step, it.etag = stepCreate, ""
	return nil
}

// bulkPage writes one page's items, or one wave of them, in bulk requests.
type bulkPage struct {
	*pageWriter
	ctx context.Context // ends when the page is given up
	g   *errgroup.Group
}

// writeBulk writes a page's changes in bulk requests. Two versions of one
// item in a page (which the latest-version change feed does not give, but
// nothing here relies on it) go in successive waves, the later version
// last, so that their writes never race.
func (w *pageWriter) writeBulk(ctx context.Context, changes []Change) error {
	for _, wave := range waves(changes) {
		g, gctx := errgroup.WithContext(ctx)
		b := &bulkPage{pageWriter: w, ctx: gctx, g: g}
		items := make([]*bulkItem, len(wave))
		for i, c := range wave {
			items[i] = &bulkItem{c: c}
		}
		g.Go(func() error { return b.dispatch(items) })
		if err := g.Wait(); err != nil {
			return err
		}
	}
	return nil
}

// waves splits changes so that no wave holds an id twice.
func waves(changes []Change) [][]*Change {
	seen := make(map[string]int, len(changes))
	out := [][]*Change{make([]*Change, 0, len(changes))}
	for i := range changes {
		c := &changes[i]
		n := seen[c.Result.ID]
		seen[c.Result.ID] = n + 1
		if n == len(out) {
			out = append(out, nil)
		}
		out[n] = append(out[n], c)
	}
	return out
}

// dispatch routes the items that need it, groups them by partition into
// requests within the limits, and sends each request on its own
// goroutine.
func (b *bulkPage) dispatch(items []*bulkItem) error {
	if err := b.route(items); err != nil {
		return err
	}
	groups := map[string][]*bulkItem{}
	var order []string
	for _, it := range items {
		if _, ok := groups[it.partition]; !ok {
			order = append(order, it.partition)
		}
		groups[it.partition] = append(groups[it.partition], it)
	}
	for _, p := range order {
		for _, req := range b.requests(groups[p]) {
			b.g.Go(func() error { return b.send(req) })
		}
	}
	return nil
}

// route finds the partition of every item that has none.
func (b *bulkPage) route(items []*bulkItem) error {
	var keys []migrate.Key
	var unrouted []*bulkItem
	for _, it := range items {
		if it.partition == "" {
			keys = append(keys, it.c.Key())
			unrouted = append(unrouted, it)
		}
	}
	if len(unrouted) == 0 {
		return nil
	}
	var ids []string
	err := b.retry.Do(b.ctx, func() error {
		var err error
		ids, err = b.bulk.PartitionsOf(b.ctx, keys)
		return err
	})
	if err != nil {
		return fmt.Errorf("find the target partitions of %d items: %w", len(keys), err)
	}
	for i, it := range unrouted {
		it.partition = ids[i]
	}
	return nil
}

// requests cuts one partition's items into requests (fit).
func (b *bulkPage) requests(items []*bulkItem) [][]*bulkItem {
	var out [][]*bulkItem
	for len(items) > 0 {
		var req []*bulkItem
		req, items = b.fit(items)
		out = append(out, req)
	}
	return out
}

// fit splits off the first request of items, which share a partition: at
// most MaxBulkOperations operations, a new request once the bodies reach
// BulkRequestBytes (a larger item goes alone), and within what the RU cap
// and the partition's pace let one request spend now.
func (b *bulkPage) fit(items []*bulkItem) (req, rest []*bulkItem) {
	maxRU := b.ruCap.RequestLimit()
	if s, ok := b.limit.(migrate.RequestSizer); ok {
		if l := s.RequestLimit(b.ctx, items[0].c.Key()); l > 0 && (maxRU == 0 || l < maxRU) {
			maxRU = l
		}
	}
	size, ru := 0, 0.0
	for i, it := range items {
		n, r := it.bytes(), it.expected()
		if i > 0 && (i == migrate.MaxBulkOperations || size+n > migrate.BulkRequestBytes || (maxRU > 0 && ru+r > maxRU)) {
			return items[:i], items[i:]
		}
		size += n
		ru += r
	}
	return items, nil
}

// send sends one request of items under the retry policy: a 429 or a
// transient failure of the whole request, or of some of its operations,
// sends those again to the same partition (after the retry-after, or a
// backoff, bounded as for every request); every other answer moves each
// item on (answered). A 410 routes the items again; a request too large,
// or refused, is split until the item at fault stands alone.
func (b *bulkPage) send(items []*bulkItem) error {
	pending := items
	err := b.retry.Do(b.ctx, func() error {
		// What was cut to fit when it was dispatched may not fit now
		// (the partition's requests shrink while it throttles).
		var rest []*bulkItem
		if pending, rest = b.fit(pending); len(rest) > 0 {
			b.g.Go(func() error { return b.send(rest) })
		}
		ops := make([]migrate.BulkOp, len(pending))
		expected := 0.0
		for i, it := range pending {
			ops[i] = it.op()
			expected += it.expected()
		}
		var resp migrate.BulkResponse
		req := request{key: pending[0].c.Key(), expected: expected, ops: len(ops), bulk: true}
		err := b.attempt(b.ctx, req, func(ctx context.Context) (answer, error) {
			var err error
			resp, err = b.bulk.Bulk(ctx, pending[0].partition, ops)
			if err != nil {
				return answer{}, err
			}
			if len(resp.Results) != len(ops) {
				return answer{ru: resp.RU}, fmt.Errorf("bulk request to partition %s: %d answers for %d operations", pending[0].partition, len(resp.Results), len(ops))
			}
			return bulkAnswer(resp), nil
		})
		if err != nil {
			return err
		}
		var again error
		pending, again, err = b.answered(pending, resp)
		if err != nil {
			return stopRetrying{err}
		}
		return again
	})
	var stop stopRetrying
	switch {
	case err == nil:
		return nil
	case errors.As(err, &stop):
		return stop.err
	case errors.Is(err, migrate.ErrGone):
		b.spend(&b.stats.checkRU, migrate.ErrorRU(err))
		for _, it := range pending {
			if err := it.reroute(err); err != nil {
				return err
			}
		}
		return b.dispatch(pending)
	case len(pending) > 1 && (errors.Is(err, migrate.ErrTooLarge) || errors.Is(err, migrate.ErrBadRequest)):
		b.spend(&b.stats.checkRU, migrate.ErrorRU(err))
		half := len(pending) / 2
		first, second := pending[:half], pending[half:]
		b.g.Go(func() error { return b.send(first) })
		b.g.Go(func() error { return b.send(second) })
		return nil
	case errors.Is(err, migrate.ErrTooLarge), errors.Is(err, migrate.ErrBadRequest):
		b.spend(&b.stats.checkRU, migrate.ErrorRU(err))
		return b.refused(pending[0], err)
	}
	return fmt.Errorf("bulk request of %d operations to target partition %s: %w", len(pending), pending[0].partition, err)
}

// stopRetrying carries an error out of the retry policy untouched.
type stopRetrying struct{ err error }

func (s stopRetrying) Error() string { return s.err.Error() }

// reroute clears an item's partition after a 410, within maxReroutes.
func (it *bulkItem) reroute(cause error) error {
	it.reroutes++
	if it.reroutes > maxReroutes {
		return fmt.Errorf("item %q under key %s: its target partition was gone %d times: %w", it.c.Result.ID, it.c.Key(), it.reroutes, cause)
	}
	it.partition = ""
	return nil
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
// another step or another partition are dispatched anew. The error is for
// an answer that must stop the page.
func (b *bulkPage) answered(items []*bulkItem, resp migrate.BulkResponse) (resend []*bulkItem, wait, err error) {
	var next []*bulkItem
	opsRU := 0.0
	for i, r := range resp.Results {
		it := items[i]
		opsRU += r.RU
		switch {
		case r.Err == nil:
			more, err := b.succeeded(it, r)
			if err != nil {
				return nil, nil, err
			}
			if more {
				next = append(next, it)
			}
		case r.Resend:
			b.spend(&b.stats.checkRU, r.RU)
			switch {
			case errors.Is(r.Err, migrate.ErrGone):
				if err := it.reroute(r.Err); err != nil {
					return nil, nil, err
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
			default: // the response was too large: the item goes alone
				it.tooLarge++
				if it.tooLarge > maxReroutes {
					return nil, nil, fmt.Errorf("item %q under key %s: %w", it.c.Result.ID, it.c.Key(), r.Err)
				}
				b.g.Go(func() error { return b.send([]*bulkItem{it}) })
			}
		default:
			b.spend(&b.stats.checkRU, r.RU)
			more, err := b.failed(it, r.Err)
			if err != nil {
				return nil, nil, err
			}
			if more {
				next = append(next, it)
			}
		}
	}
	if extra := resp.RU - opsRU; extra > 0 {
		b.spend(&b.stats.checkRU, extra)
	}
	if len(next) > 0 {
		b.g.Go(func() error { return b.dispatch(next) })
	}
	return resend, wait, nil
}

// succeeded moves an item on after its operation succeeded; more is true
// when it takes another step.
func (b *bulkPage) succeeded(it *bulkItem, r migrate.BulkOpResult) (more bool, err error) {
	switch it.step {
	case stepCreate:
		b.spend(&b.stats.createRU, r.RU)
		b.stats.created.Add(1)
		return false, b.Resolve(it.c)
	case stepReplace:
		b.spend(&b.stats.replaceRU, r.RU)
		b.stats.updated.Add(1)
		return false, b.Resolve(it.c)
	}
	b.spend(&b.stats.checkRU, r.RU)
	if owner, ok := b.copiedFrom(r.Body); !ok || !owner.Equal(it.c.Result.SourceKey) {
		return false, b.DeadLetterCollision(it.c, r.Body)
	}
	if migrate.SameContent(r.Body, it.c.Result.Item) {
		b.stats.unchanged.Add(1)
		return false, b.Resolve(it.c)
	}
	it.step, it.etag = stepReplace, r.ETag
	return true, nil
}

// failed moves an item on after its operation failed for a reason about
// the item; more is true when it takes another step. The error is for a
// failure that must stop the page.
func (b *bulkPage) failed(it *bulkItem, opErr error) (more bool, err error) {
	switch {
	case it.step == stepCreate && errors.Is(opErr, migrate.ErrConflict):
		it.step = stepRead
		return true, nil
	case it.step == stepRead && errors.Is(opErr, migrate.ErrNotFound),
		it.step == stepReplace && (errors.Is(opErr, migrate.ErrPreconditionFailed) || errors.Is(opErr, migrate.ErrNotFound)):
		return true, it.startOver()
	case it.step != stepRead && (errors.Is(opErr, migrate.ErrBadRequest) || errors.Is(opErr, migrate.ErrTooLarge)):
		return false, b.refused(it, opErr)
	}
	verb := map[bulkStep]string{stepCreate: "create", stepRead: "read existing", stepReplace: "replace"}[it.step]
	return false, fmt.Errorf("%s item %q under key %s in a bulk request: %w", verb, it.c.Result.ID, it.c.Key(), opErr)
}

// refused dead-letters an item the target refused (400, 413).
func (b *bulkPage) refused(it *bulkItem, err error) error {
	_, dlErr := b.DeadLetterRefused(it.c, err)
	return dlErr
}
