package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/rekey-dev/rekey/migrate"
)

// The bulk write path: a page's items travel in bulk requests grouped by
// the target's physical partition (docs/cosmos-bulk.md), each operation
// with its own answer, through the steps of the item-by-item path (create;
// on a conflict read the existing item, compare, replace with If-Match),
// so that nothing is silently overwritten either way. The requests are
// the Writer's bulk queue's (bulkqueue.go), shared by the pages of every
// range being written; this file is what happens to one page's items.
// An item is in at most one request at a time.

// bulkStep is the step an item is at.
type bulkStep int

const (
	stepCreate  bulkStep = iota // create it
	stepRead                    // its (id, key) exists: read the existing item
	stepReplace                 // the existing item is an older copy of the same source item: replace it
)

// maxReroutes bounds how often one item is routed again after 410s, which
// a split answers for a moment, not forever, and how often it is sent
// alone after a response too large.
const maxReroutes = 16

// bulkItem is one change on its way through bulk requests.
type bulkItem struct {
	page      *bulkPage
	c         *Change
	step      bulkStep
	etag      string // of the existing item, for stepReplace
	partition string // where it goes; "" to route it (again)
	alone     bool   // goes in a request of its own: its answer was too large
	reroutes  int    // routed again after a 410
	rounds    int    // started over: the existing item changed or vanished between steps
	vanished  int    // creates answered 409 whose read found no item (uniqueKeyRounds)
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

// reroute clears an item's partition after a 410, within maxReroutes.
func (it *bulkItem) reroute(cause error) error {
	it.reroutes++
	if it.reroutes > maxReroutes {
		return fmt.Errorf("item %q under key %s: its target partition was gone %d times: %w", it.c.Result.ID, it.c.Key(), it.reroutes, cause)
	}
	it.partition = ""
	return nil
}

// bulkPage is one wave of a page's items on the bulk queue. It is done
// when every item is (written, found unchanged, or dead-lettered), and
// fails at the first error that must stop the page: its context then ends
// with that error as its cause, and its items still queued are dropped.
type bulkPage struct {
	*pageWriter
	ctx    context.Context
	cancel context.CancelCauseFunc

	mu      sync.Mutex
	pending int // items not done
	done    chan struct{}
}

// writeBulk writes a page's changes through the bulk queue. Two versions
// of one item in a page (which the latest-version change feed does not
// give, but nothing here relies on it) go in successive waves, the later
// version last, so that their writes never race.
func (w *pageWriter) writeBulk(ctx context.Context, changes []Change) error {
	for _, wave := range waves(changes) {
		if err := w.writeWave(ctx, wave); err != nil {
			return err
		}
	}
	return nil
}

// writeWave writes changes that hold no id twice, and returns when every
// item is done or the page failed. An empty wave is done at once.
func (w *pageWriter) writeWave(parent context.Context, wave []*Change) error {
	if len(wave) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	b := &bulkPage{pageWriter: w, ctx: ctx, cancel: cancel, pending: len(wave), done: make(chan struct{})}
	items := make([]*bulkItem, len(wave))
	for i, c := range wave {
		items[i] = &bulkItem{page: b, c: c}
	}
	w.queue.submit(items)
	select {
	case <-b.done:
		return nil
	case <-ctx.Done():
		select {
		case <-b.done:
			return nil
		default:
			return context.Cause(ctx)
		}
	}
}

// waves splits changes so that no wave holds an id twice; no changes make
// no waves.
func waves(changes []Change) [][]*Change {
	if len(changes) == 0 {
		return nil
	}
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

// alive reports whether the page still waits for its items.
func (b *bulkPage) alive() bool { return b.ctx.Err() == nil }

// fail stops the page with err (the first error wins).
func (b *bulkPage) fail(err error) { b.cancel(err) }

// finish records that an item is done.
func (b *bulkPage) finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.pending--
	if b.pending == 0 {
		close(b.done)
	}
}

// moveOn applies what handling an item's answer decided: err stops its
// page; more sends it on to its next step (returned); otherwise it is
// done.
func (it *bulkItem) moveOn(more bool, err error) (next *bulkItem) {
	switch {
	case err != nil:
		it.page.fail(err)
	case more:
		return it
	default:
		it.page.finish()
	}
	return nil
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
	case it.step == stepRead && errors.Is(opErr, migrate.ErrNotFound):
		// No item holds (id, key), yet the create conflicted: deleted in
		// between, or, when it keeps happening, another item of the
		// logical partition holds the item's unique key values.
		if it.vanished++; it.vanished == uniqueKeyRounds {
			return false, b.deadLetterUniqueKey(it.c)
		}
		return true, it.startOver()
	case it.step == stepReplace && (errors.Is(opErr, migrate.ErrPreconditionFailed) || errors.Is(opErr, migrate.ErrNotFound)):
		return true, it.startOver()
	case it.step == stepReplace && errors.Is(opErr, migrate.ErrConflict):
		// A replace conflicts only on a unique key.
		return false, b.deadLetterUniqueKey(it.c)
	case it.step != stepRead && (errors.Is(opErr, migrate.ErrBadRequest) || errors.Is(opErr, migrate.ErrTooLarge)):
		_, err := b.DeadLetterRefused(it.c, opErr)
		return false, err
	}
	verb := map[bulkStep]string{stepCreate: "create", stepRead: "read existing", stepReplace: "replace"}[it.step]
	return false, fmt.Errorf("%s item %q under key %s in a bulk request: %w", verb, it.c.Result.ID, it.c.Key(), opErr)
}
