package migrate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/rekey-dev/rekey/transform"
)

// Batch limits of the service (transactional-batch.md).
const (
	maxBatchOps   = 100
	maxBatchBytes = 2*1024*1024 - 64*1024 // 2 MB, less room for the batch envelope
)

// maxReconcileRounds bounds the create/read/replace loop of one item under
// concurrent changes to the target (412s, deletes between the steps).
const maxReconcileRounds = 8

// change is one transformed source item on its way to the target.
type change struct {
	res    transform.Result
	source []byte // the source item as read, for the dead-letter file
}

func (c *change) key() Key { return Key(c.res.Key) }

// writer copies transformed items into the target without ever silently
// overwriting: every item is created first; when (id, target key) already
// exists the existing item is read, and it is replaced only when it is a
// copy of the same source item (same source key) with different content.
// Another source item under that (id, target key) is a collision: the later
// item goes to the dead-letter file with both source keys. Items of one
// target key travel as transactional batches, which either all commit or
// fall back to the item-by-item path.
type writer struct {
	dst   Target
	tr    *transform.Transformer
	retry *retrier
	limit Limiter
	// budget caps the RU/s spent on the target (--max-ru); nil: none.
	budget *Budget
	dead   DeadLetterStore
	stats  *Stats
	// defaults records in the state the key defaults items use, before
	// they are written; nil: no state to record them in.
	defaults *DefaultUses
}

// writePage writes every change durably or dead-letters it, and returns the
// request units it spent on the target. fence, when not nil, is called
// before every request and may hold it back or refuse it (the range's lease
// hold, lease.Hold.Fence): a page whose lease was lost writes nothing more.
// It returns an error only when the run must stop: the context ended, the
// fence refused, a transient failure outlasted its retries, the target
// refused the credentials, or the key defaults the page uses could not be
// recorded in the state (then nothing is written).
func (w *writer) writePage(ctx context.Context, changes []change, fence func(context.Context) error) (float64, error) {
	var used transform.DefaultSet
	for i := range changes {
		used |= changes[i].res.DefaultsUsed
	}
	if err := w.defaults.Record(ctx, used); err != nil {
		return 0, err
	}
	var ru atomicFloat
	pw := &pageWriter{writer: w, ru: &ru, fence: fence}
	groups := map[string][]*change{}
	var order []string
	for i := range changes {
		k := string(keyJSON(changes[i].key()))
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], &changes[i])
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, k := range order {
		group := groups[k]
		if len(group) == 1 {
			g.Go(func() error { return pw.writeOne(gctx, group[0]) })
			continue
		}
		for _, chunk := range chunkBatch(group) {
			g.Go(func() error { return pw.writeBatch(gctx, chunk) })
		}
	}
	err := g.Wait()
	return ru.load(), err
}

// pageWriter writes one page behind its fence, adding up what it spends.
type pageWriter struct {
	*writer
	ru    *atomicFloat
	fence func(context.Context) error
}

// spend records ru request units under counter.
func (w *pageWriter) spend(counter *atomicFloat, ru float64) {
	counter.add(ru)
	w.ru.add(ru)
}

// chunkBatch splits a group into batches within the service's limits.
func chunkBatch(group []*change) [][]*change {
	var out [][]*change
	var cur []*change
	size := 0
	for _, c := range group {
		n := len(c.res.Item)
		if len(cur) > 0 && (len(cur) == maxBatchOps || size+n > maxBatchBytes) {
			out = append(out, cur)
			cur, size = nil, 0
		}
		cur = append(cur, c)
		size += n
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// call runs op behind the page's fence, under the RU budget, the limiter
// and the retry policy. op returns the request charge of a success; a
// failure's comes from its error. Every attempt is counted, and told to the
// limiter, with its charge and, for a 429, its retry-after. The fence is
// passed last, just before the request leaves.
func (w *pageWriter) call(ctx context.Context, key Key, op func(ctx context.Context) (float64, error)) error {
	return w.retry.do(ctx, func() error {
		reserved, err := w.budget.acquire(ctx)
		if err != nil {
			return err
		}
		release, err := w.limit.Acquire(ctx, key)
		if err != nil {
			w.budget.settle(reserved, 0)
			return err
		}
		if w.fence != nil {
			if err := w.fence(ctx); err != nil {
				release(Outcome{})
				w.budget.settle(reserved, 0)
				return err
			}
		}
		ru, err := op(ctx)
		if err != nil {
			ru = errorRU(err)
		}
		w.budget.settle(reserved, ru)
		o := Outcome{RU: ru, Gone: errors.Is(err, ErrGone)}
		if errors.Is(err, ErrThrottled) {
			o.Throttled, o.RetryAfter = true, retryAfter(err)
			w.stats.writesThrottled.Add(1)
		}
		w.stats.writeRequests.Add(1)
		release(o)
		return err
	})
}

// writeBatch creates a chunk of one target key atomically; when the batch
// does not commit (an item exists, or the service refuses one), each item
// takes the item-by-item path, which tells a replay from a collision.
func (w *pageWriter) writeBatch(ctx context.Context, chunk []*change) error {
	if len(chunk) == 1 {
		return w.writeOne(ctx, chunk[0])
	}
	bodies := make([][]byte, len(chunk))
	for i, c := range chunk {
		bodies[i] = c.res.Item
	}
	var res BatchResult
	err := w.call(ctx, chunk[0].key(), func(ctx context.Context) (float64, error) {
		var err error
		res, err = w.dst.CreateBatch(ctx, chunk[0].key(), bodies)
		return res.RU, err
	})
	switch {
	case err == nil && res.Committed:
		w.spend(&w.stats.createRU, res.RU)
		w.stats.created.Add(int64(len(chunk)))
		w.stats.batches.Add(1)
		for _, c := range chunk {
			if err := w.resolve(c); err != nil {
				return err
			}
		}
		return nil
	case err == nil, errors.Is(err, ErrBadRequest), errors.Is(err, ErrTooLarge):
		w.spend(&w.stats.checkRU, res.RU)
		for _, c := range chunk {
			if err := w.writeOne(ctx, c); err != nil {
				return err
			}
		}
		return nil
	default:
		return fmt.Errorf("write batch of %d items under key %s: %w", len(chunk), keyJSON(chunk[0].key()), err)
	}
}

// writeOne writes one item: create, and on a conflict decide between an
// unchanged replay, an update and a collision.
func (w *pageWriter) writeOne(ctx context.Context, c *change) error {
	key := c.key()
	for round := 0; round < maxReconcileRounds; round++ {
		var wr WriteResult
		err := w.call(ctx, key, func(ctx context.Context) (float64, error) {
			var err error
			wr, err = w.dst.Create(ctx, key, c.res.Item)
			return wr.RU, err
		})
		switch {
		case err == nil:
			w.spend(&w.stats.createRU, wr.RU)
			w.stats.created.Add(1)
			return w.resolve(c)
		case errors.Is(err, ErrConflict):
			w.spend(&w.stats.checkRU, errorRU(err))
			done, err := w.reconcile(ctx, c)
			if done || err != nil {
				return err
			}
		case errors.Is(err, ErrBadRequest):
			return w.deadLetter(c, KindRejected, "the target refused the item: "+message(err), false)
		case errors.Is(err, ErrTooLarge):
			return w.deadLetter(c, KindTooLarge, fmt.Sprintf("the item is %d bytes with its new key, over the 2 MB item limit", len(c.res.Item)), false)
		default:
			return fmt.Errorf("create item %q under key %s: %w", c.res.ID, keyJSON(key), err)
		}
	}
	return fmt.Errorf("item %q under key %s kept changing in the target while it was written (%d rounds)", c.res.ID, keyJSON(key), maxReconcileRounds)
}

// reconcile handles an item whose (id, target key) exists. done is false
// when the item vanished in between and the create should be retried.
func (w *pageWriter) reconcile(ctx context.Context, c *change) (done bool, err error) {
	key := c.key()
	var existing Item
	err = w.call(ctx, key, func(ctx context.Context) (float64, error) {
		var err error
		existing, err = w.dst.Read(ctx, key, c.res.ID)
		return existing.RU, err
	})
	switch {
	case errors.Is(err, ErrNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("read existing item %q under key %s: %w", c.res.ID, keyJSON(key), err)
	}
	w.spend(&w.stats.checkRU, existing.RU)
	_, owner, kerr := w.tr.SourceKeyOf(existing.Body)
	if kerr != nil || !sameKey(owner, c.res.SourceKey) {
		ownerText := "unknown"
		if kerr == nil {
			ownerText = string(keyJSON(owner))
		}
		return true, w.deadLetter(c, KindCollision, fmt.Sprintf("the target already holds item %q under key %s, copied from the source item with key %s; this item's source key is %s",
			c.res.ID, keyJSON(key), ownerText, keyJSON(c.res.SourceKey)), true)
	}
	if sameContent(existing.Body, c.res.Item) {
		w.stats.unchanged.Add(1)
		return true, w.resolve(c)
	}
	var wr WriteResult
	err = w.call(ctx, key, func(ctx context.Context) (float64, error) {
		var err error
		wr, err = w.dst.Replace(ctx, key, c.res.ID, c.res.Item, existing.ETag)
		return wr.RU, err
	})
	switch {
	case err == nil:
		w.spend(&w.stats.replaceRU, wr.RU)
		w.stats.updated.Add(1)
		return true, w.resolve(c)
	case errors.Is(err, ErrPreconditionFailed), errors.Is(err, ErrNotFound):
		return false, nil // changed or deleted meanwhile: start over
	case errors.Is(err, ErrBadRequest):
		return true, w.deadLetter(c, KindRejected, "the target refused the item: "+message(err), false)
	case errors.Is(err, ErrTooLarge):
		return true, w.deadLetter(c, KindTooLarge, fmt.Sprintf("the item is %d bytes with its new key, over the 2 MB item limit", len(c.res.Item)), false)
	default:
		return false, fmt.Errorf("replace item %q under key %s: %w", c.res.ID, keyJSON(key), err)
	}
}

// deadLetter records c as not written.
func (w *writer) deadLetter(c *change, kind, reason string, collision bool) error {
	w.stats.deadLettered.Add(1)
	if collision {
		w.stats.collisions.Add(1)
	}
	return w.dead.Add(DeadLetter{
		Time: time.Now().UTC(), SourceID: c.res.ID, SourceKey: keyJSON(c.res.SourceKey),
		TargetKey: keyJSON(c.key()), Kind: kind, Reason: reason, Item: c.source,
	})
}

// resolve clears a dead letter of the item, if it had one.
func (w *writer) resolve(c *change) error {
	return w.dead.Resolve(c.res.ID, keyJSON(c.res.SourceKey))
}

func sameKey(a, b []transform.Value) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Equal(b[i]) {
			return false
		}
	}
	return true
}

// message is an error's service message, for dead-letter reasons.
func message(err error) string {
	var re *RequestError
	if errors.As(err, &re) && re.Message != "" {
		return re.Message
	}
	return err.Error()
}
