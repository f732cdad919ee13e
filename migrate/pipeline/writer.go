package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/transform"
)

// Batch limits of the service (docs/cosmos-service.md#transactional-batches).
const (
	maxBatchOps   = 100
	maxBatchBytes = 2*1024*1024 - 64*1024 // 2 MB, less room for the batch envelope
)

// maxReconcileRounds bounds the create/read/replace loop of one item under
// concurrent changes to the target (412s, deletes between the steps).
const maxReconcileRounds = 8

// uniqueKeyRounds is how many creates refused with 409 Conflict, each
// followed by a read that finds no item under (id, key), tell a unique key
// violation from an item deleted in between: the target's unique key
// policy (--unique-keys copy) refuses the item.
const uniqueKeyRounds = 2

// Change is one transformed source item on its way to the target.
type Change struct {
	Result transform.Result
	Source []byte // the source item as read, for the dead-letter file
}

// Key is the item's key in the target.
func (c *Change) Key() migrate.Key { return migrate.Key(c.Result.Key) }

// sourceKey is the item's key in the source, as dead letters record it.
func (c *Change) sourceKey() []byte { return migrate.Key(c.Result.SourceKey).AppendJSON(nil) }

// Writer copies transformed items into the target without ever silently
// overwriting: every item is created first; when (id, target key) already
// exists the existing item is read, and it is replaced only when it is a
// copy of the same source item (same source key) with different content.
// Another source item under that (id, target key) is a collision: the later
// item goes to the dead-letter file with both source keys.
//
// With bulk requests (WriteBulk, bulk.go), a page's items travel grouped by
// the target's physical partition, up to MaxBulkOperations per request,
// each with its own answer, through the same steps: create, and on a
// conflict read, compare and replace with If-Match. Otherwise items of one
// target key travel as transactional batches, which either all commit or
// fall back to the item-by-item path.
//
// Every request goes out under the write path's flow control (the RU cap,
// the limiter) and retry policy (Do). A Writer serves one command run and
// is safe for concurrent use.
type Writer struct {
	dst migrate.Target
	// bulk is dst when the write path sends bulk requests, through queue;
	// nil otherwise.
	bulk  migrate.BulkTarget
	queue *bulkQueue
	tr    *transform.Transformer
	retry *migrate.Retrier
	limit migrate.Limiter
	// ruCap caps the RU/s spent on the target (--max-ru); never nil.
	ruCap migrate.RUCap
	dead  migrate.DeadLetterStore
	stats *Stats
	// defaults records in the state the key defaults items use, before
	// they are written; nil: no state to record them in.
	defaults *migrate.DefaultUses
}

// writePage writes every change durably or dead-letters it, and returns the
// request units it spent on the target. fence, when not nil, is called
// before every request and may hold it back or refuse it (the range's lease
// hold, lease.Hold.Fence): a page whose lease was lost writes nothing more.
// Asked with a done context, fence must answer at once, nil when the range
// is writable now (a bulk request checks the fences of all its pages so).
// It returns an error only when the run must stop: the context ended, the
// fence refused, a transient failure outlasted its retries, the target
// refused the credentials, or the key defaults the page uses could not be
// recorded in the state (then nothing is written).
func (w *Writer) writePage(ctx context.Context, changes []Change, fence func(context.Context) error) (float64, error) {
	var used transform.DefaultSet
	for i := range changes {
		used |= changes[i].Result.DefaultsUsed
	}
	if err := w.defaults.Record(ctx, used); err != nil {
		return 0, err
	}
	var ru atomicFloat
	pw := &pageWriter{Writer: w, ru: &ru, fence: fence}
	if w.bulk != nil {
		err := pw.writeBulk(ctx, changes)
		return ru.load(), err
	}
	groups := map[string][]*Change{}
	var order []string
	for i := range changes {
		k := changes[i].Key().String()
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
	*Writer
	ru    *atomicFloat
	fence func(context.Context) error
}

// spend records ru request units under counter.
func (w *pageWriter) spend(counter *atomicFloat, ru float64) {
	counter.add(ru)
	w.ru.add(ru)
}

// chunkBatch splits a group into batches within the service's limits.
func chunkBatch(group []*Change) [][]*Change {
	var out [][]*Change
	var cur []*Change
	size := 0
	for _, c := range group {
		n := len(c.Result.Item)
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

// request is one request to the target as the flow control and the
// counters see it.
type request struct {
	key      migrate.Key // routes it to its partition
	expected float64     // the charge it is expected to cost (migrate.CreateCharge, ...)
	// ops is the writes it carries: 1, or a bulk request's operations,
	// which the counters count one by one when they are answered one by
	// one (and as one request when the whole request is refused).
	ops  int
	bulk bool
}

// answer is what a request's answer says, for the flow control and the
// counters.
type answer struct {
	ru           float64
	throttledOps int           // operations answered 429
	retryAfter   time.Duration // the longest of their retry-afters
	gone         bool          // a 410, to the request or to an operation
}

// attempt sends one request behind the page's fence, under the limiter and
// the RU cap, once: op sends it and says what the answer was; a failed
// request's charge, throttling and 410 come from its error. Every attempt
// is counted and told to the limiter. The fence is passed last, just
// before the request leaves.
func (w *pageWriter) attempt(ctx context.Context, req request, op func(ctx context.Context) (answer, error)) error {
	release, err := w.limit.Acquire(ctx, req.key, req.expected)
	if err != nil {
		return err
	}
	// The RU cap comes last, so that the request leaves when the cap lets
	// it: a request let through by the cap and then held by its partition
	// could leave in a burst with others.
	res, err := w.ruCap.Acquire(ctx, req.expected)
	if err != nil {
		release(migrate.Outcome{})
		return err
	}
	if w.fence != nil {
		if err := w.fence(ctx); err != nil {
			release(migrate.Outcome{})
			w.ruCap.Settle(res, 0)
			return err
		}
	}
	w.stats.inFlightRequests.Add(1)
	a, err := op(ctx)
	w.stats.inFlightRequests.Add(-1)
	answered := req.ops
	if err != nil {
		// Refused as a whole: one request answered, as the service
		// counts it.
		answered = 1
		a = answer{ru: migrate.ErrorRU(err), gone: errors.Is(err, migrate.ErrGone)}
		if errors.Is(err, migrate.ErrThrottled) {
			a.throttledOps, a.retryAfter = 1, migrate.RetryAfter(err)
		}
	}
	w.ruCap.Settle(res, a.ru)
	w.stats.writeRequests.Add(int64(answered))
	w.stats.writesThrottled.Add(int64(a.throttledOps))
	w.stats.throttled.Add(int64(a.throttledOps))
	if req.bulk {
		w.stats.bulkRequests.Add(1)
	}
	release(migrate.Outcome{RU: a.ru, Throttled: a.throttledOps > 0, RetryAfter: a.retryAfter, Gone: a.gone})
	return err
}

// call runs op, one single-item request (or transactional batch) under key
// expected to cost expected, as an attempt under the retry policy. op
// returns the request charge of a success; a failure's comes from its
// error.
func (w *pageWriter) call(ctx context.Context, key migrate.Key, expected float64, op func(ctx context.Context) (float64, error)) error {
	req := request{key: key, expected: expected, ops: 1}
	return w.retry.Do(ctx, func() error {
		return w.attempt(ctx, req, func(ctx context.Context) (answer, error) {
			ru, err := op(ctx)
			return answer{ru: ru}, err
		})
	})
}

// writeBatch creates a chunk of one target key atomically; when the batch
// does not commit (an item exists, or the service refuses one), each item
// takes the item-by-item path, which tells a replay from a collision.
func (w *pageWriter) writeBatch(ctx context.Context, chunk []*Change) error {
	if len(chunk) == 1 {
		return w.writeOne(ctx, chunk[0])
	}
	bodies := make([][]byte, len(chunk))
	for i, c := range chunk {
		bodies[i] = c.Result.Item
	}
	var res migrate.BatchResult
	expected := 0.0
	for _, b := range bodies {
		expected += migrate.CreateCharge(len(b))
	}
	err := w.call(ctx, chunk[0].Key(), expected, func(ctx context.Context) (float64, error) {
		var err error
		res, err = w.dst.CreateBatch(ctx, chunk[0].Key(), bodies)
		return res.RU, err
	})
	switch {
	case err == nil && res.Committed:
		w.spend(&w.stats.createRU, res.RU)
		w.stats.created.Add(int64(len(chunk)))
		w.stats.batches.Add(1)
		for _, c := range chunk {
			if err := w.Resolve(c); err != nil {
				return err
			}
		}
		return nil
	case err == nil, errors.Is(err, migrate.ErrBadRequest), errors.Is(err, migrate.ErrTooLarge):
		w.spend(&w.stats.checkRU, res.RU)
		for _, c := range chunk {
			if err := w.writeOne(ctx, c); err != nil {
				return err
			}
		}
		return nil
	default:
		return fmt.Errorf("write batch of %d items under key %s: %w", len(chunk), chunk[0].Key(), err)
	}
}

// writeOne writes one item: create, and on a conflict decide between an
// unchanged replay, an update and a collision.
func (w *pageWriter) writeOne(ctx context.Context, c *Change) error {
	key := c.Key()
	vanished := 0 // creates refused with 409 while a read finds no item
	for round := 0; round < maxReconcileRounds; round++ {
		var wr migrate.WriteResult
		err := w.call(ctx, key, migrate.CreateCharge(len(c.Result.Item)), func(ctx context.Context) (float64, error) {
			var err error
			wr, err = w.dst.Create(ctx, key, c.Result.Item)
			return wr.RU, err
		})
		switch {
		case err == nil:
			w.spend(&w.stats.createRU, wr.RU)
			w.stats.created.Add(1)
			return w.Resolve(c)
		case errors.Is(err, migrate.ErrConflict):
			w.spend(&w.stats.checkRU, migrate.ErrorRU(err))
			done, err := w.reconcile(ctx, c)
			if done || err != nil {
				return err
			}
			if vanished++; vanished == uniqueKeyRounds {
				// No item holds (id, key), yet the create conflicts: another
				// item of the logical partition holds its unique key values.
				return w.deadLetterUniqueKey(c)
			}
		case errors.Is(err, migrate.ErrBadRequest), errors.Is(err, migrate.ErrTooLarge):
			_, err := w.DeadLetterRefused(c, err)
			return err
		default:
			return fmt.Errorf("create item %q under key %s: %w", c.Result.ID, key, err)
		}
	}
	return fmt.Errorf("item %q under key %s kept changing in the target while it was written (%d rounds)", c.Result.ID, key, maxReconcileRounds)
}

// reconcile handles an item whose (id, target key) exists. done is false
// when the item vanished in between and the create should be retried.
func (w *pageWriter) reconcile(ctx context.Context, c *Change) (done bool, err error) {
	key := c.Key()
	var existing migrate.Item
	err = w.call(ctx, key, migrate.ReadCharge(len(c.Result.Item)), func(ctx context.Context) (float64, error) {
		var err error
		existing, err = w.dst.Read(ctx, key, c.Result.ID)
		return existing.RU, err
	})
	switch {
	case errors.Is(err, migrate.ErrNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("read existing item %q under key %s: %w", c.Result.ID, key, err)
	}
	w.spend(&w.stats.checkRU, existing.RU)
	if owner, ok := w.copiedFrom(existing.Body); !ok || !owner.Equal(c.Result.SourceKey) {
		return true, w.DeadLetterCollision(c, existing.Body)
	}
	if migrate.SameContent(existing.Body, c.Result.Item) {
		w.stats.unchanged.Add(1)
		return true, w.Resolve(c)
	}
	var wr migrate.WriteResult
	err = w.call(ctx, key, migrate.ReplaceCharge(len(c.Result.Item)), func(ctx context.Context) (float64, error) {
		var err error
		wr, err = w.dst.Replace(ctx, key, c.Result.ID, c.Result.Item, existing.ETag)
		return wr.RU, err
	})
	switch {
	case err == nil:
		w.spend(&w.stats.replaceRU, wr.RU)
		w.stats.updated.Add(1)
		return true, w.Resolve(c)
	case errors.Is(err, migrate.ErrPreconditionFailed), errors.Is(err, migrate.ErrNotFound):
		return false, nil // changed or deleted meanwhile: start over
	case errors.Is(err, migrate.ErrConflict):
		// A replace conflicts only on a unique key.
		return true, w.deadLetterUniqueKey(c)
	case errors.Is(err, migrate.ErrBadRequest), errors.Is(err, migrate.ErrTooLarge):
		_, err := w.DeadLetterRefused(c, err)
		return true, err
	default:
		return false, fmt.Errorf("replace item %q under key %s: %w", c.Result.ID, key, err)
	}
}

// copiedFrom is the source key a target item was copied from; ok is false
// when the item does not say.
func (w *Writer) copiedFrom(body []byte) (migrate.Key, bool) {
	_, owner, err := w.tr.SourceKeyOf(body)
	return migrate.Key(owner), err == nil
}

// doExpectedRU is what the flow control expects a request sent with Do to
// cost, not seeing its item: a replace of a 1 KB item, the most a write of
// one costs.
var doExpectedRU = migrate.ReplaceCharge(1024)

// Do sends one request to the target through the write path: under the RU
// cap, the limiter and the retry policy, counted. op sends it to target, the
// write path's, and returns the request charge of a success; a failure's
// comes from its error. verify --fix sends its conditional writes this way.
func (w *Writer) Do(ctx context.Context, key migrate.Key, op func(ctx context.Context, target migrate.Target) (float64, error)) error {
	pw := &pageWriter{Writer: w, ru: &atomicFloat{}}
	return pw.call(ctx, key, doExpectedRU, func(ctx context.Context) (float64, error) { return op(ctx, w.dst) })
}

// RecordDefaults records in the state that items whose keys took the
// defaults in used are about to be written (migrate.DefaultUses.Record);
// write nothing when it fails.
func (w *Writer) RecordDefaults(ctx context.Context, used transform.DefaultSet) error {
	return w.defaults.Record(ctx, used)
}

// DeadLetterRefused records c as refused by the target: a 400
// (migrate.KindRejected, with the service's message) or a 413
// (migrate.KindTooLarge). It returns the kind, and records nothing and
// returns "" when err is neither; the error is the dead-letter store's.
func (w *Writer) DeadLetterRefused(c *Change, err error) (kind string, dlErr error) {
	switch {
	case errors.Is(err, migrate.ErrBadRequest):
		return migrate.KindRejected, w.deadLetter(c, migrate.KindRejected, "the target refused the item: "+migrate.ServiceMessage(err))
	case errors.Is(err, migrate.ErrTooLarge):
		return migrate.KindTooLarge, w.deadLetter(c, migrate.KindTooLarge, fmt.Sprintf("the item is %d bytes with its new key, over the 2 MB item limit", len(c.Result.Item)))
	}
	return "", nil
}

// DeadLetterCollision records c as a collision with existing, the target's
// item under c's id and key, which another source item's copy holds.
func (w *Writer) DeadLetterCollision(c *Change, existing []byte) error {
	ownerText := "unknown"
	if owner, ok := w.copiedFrom(existing); ok {
		ownerText = owner.String()
	}
	return w.deadLetter(c, migrate.KindCollision, fmt.Sprintf("the target already holds item %q under key %s, copied from the source item with key %s; this item's source key is %s",
		c.Result.ID, c.Key(), ownerText, migrate.Key(c.Result.SourceKey)))
}

// deadLetterUniqueKey records c as refused by the target's unique key
// policy: another item of its logical partition has the same unique key
// values.
func (w *Writer) deadLetterUniqueKey(c *Change) error {
	return w.deadLetter(c, migrate.KindUniqueKey, fmt.Sprintf("the target refused item %q under key %s with 409 Conflict although no item holds that id and key: another item of the logical partition has the same values of a unique key of the target (its unique key policy, --unique-keys copy)",
		c.Result.ID, c.Key()))
}

// deadLetter records c as not written.
func (w *Writer) deadLetter(c *Change, kind, reason string) error {
	w.stats.deadLettered.Add(1)
	if kind == migrate.KindCollision {
		w.stats.collisions.Add(1)
	}
	return w.dead.Add(migrate.DeadLetter{
		Time: time.Now().UTC(), SourceID: c.Result.ID, SourceKey: c.sourceKey(),
		TargetKey: c.Key().AppendJSON(nil), Kind: kind, Reason: reason, Item: c.Source,
	})
}

// DeadLetterUntransformable records item as one the key spec cannot
// transform, err being the transform's error (a *transform.Error).
func (w *Writer) DeadLetterUntransformable(item []byte, err error) error {
	var te *transform.Error
	if !errors.As(err, &te) {
		return fmt.Errorf("transform: %w", err)
	}
	id, key, kerr := w.tr.SourceKeyOf(item)
	if kerr != nil {
		id = te.ID
	}
	w.stats.deadLettered.Add(1)
	return w.dead.Add(migrate.DeadLetter{
		Time: w.retry.Clock.Now().UTC(), SourceID: id, SourceKey: migrate.Key(key).AppendJSON(nil),
		Kind: te.Kind.Error(), Reason: te.Error(), Item: item,
	})
}

// Resolve clears the dead letter of c's source item, if it has one: it was
// written after all.
func (w *Writer) Resolve(c *Change) error {
	return w.dead.Resolve(c.Result.ID, c.sourceKey())
}
