package migratetest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/rekey-dev/rekey/migrate"
)

var _ migrate.Target = (*Container)(nil)

// writeMode is how a write treats an existing item.
type writeMode int

const (
	modeCreate  writeMode = iota // fails with 409 when it exists
	modeReplace                  // fails with 404 when it does not
	modeUpsert                   // either
)

// MaxBatchItems is the service's limit on the operations of one
// transactional batch.
const MaxBatchItems = 100

// Create writes a new item; ErrConflict when (id, key) exists. A body
// whose key fields do not hold key is refused with ErrBadRequest.
func (c *Container) Create(ctx context.Context, key migrate.Key, body []byte) (migrate.WriteResult, error) {
	members, id, err := parseObject(body)
	if err != nil {
		return migrate.WriteResult{}, badRequest("create item with key "+keyText(key), err.Error())
	}
	if err := c.before(OpCreate, key, id); err != nil {
		return migrate.WriteResult{}, err
	}
	return c.write(ctx, "create item "+strconv.Quote(id)+" with key "+keyText(key), key, members, id, modeCreate, "")
}

// Read returns an item with its system properties and ETag; ErrNotFound
// when no item has this id and key.
func (c *Container) Read(ctx context.Context, key migrate.Key, id string) (migrate.Item, error) {
	op := "read item " + strconv.Quote(id) + " with key " + keyText(key)
	if err := ctx.Err(); err != nil {
		return migrate.Item{}, fmt.Errorf("%s: %w", op, err)
	}
	if err := c.before(OpRead, key, id); err != nil {
		return migrate.Item{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	it, ok := c.lookup(key, id)
	if !ok {
		return migrate.Item{}, requestError(op, http.StatusNotFound, failedRU, "Entity with the specified id does not exist in the system.")
	}
	return migrate.Item{ID: id, Key: it.key, Body: it.doc, ETag: it.etag, RU: readRU(len(it.doc))}, nil
}

// Replace overwrites an existing item when its ETag still equals ifMatch
// (whatever its ETag when ifMatch is empty); ErrPreconditionFailed when it
// changed, ErrNotFound when it is gone.
func (c *Container) Replace(ctx context.Context, key migrate.Key, id string, body []byte, ifMatch string) (migrate.WriteResult, error) {
	op := "replace item " + strconv.Quote(id) + " with key " + keyText(key)
	members, bodyID, err := parseObject(body)
	if err != nil {
		return migrate.WriteResult{}, badRequest(op, err.Error())
	}
	if bodyID != id {
		return migrate.WriteResult{}, badRequest(op, fmt.Sprintf("the id %q in the item does not match the id %q replaced", bodyID, id))
	}
	if err := c.before(OpReplace, key, id); err != nil {
		return migrate.WriteResult{}, err
	}
	return c.write(ctx, op, key, members, id, modeReplace, ifMatch)
}

// Delete removes an item when its ETag equals ifMatch (any ETag when
// ifMatch is empty); ErrNotFound when it does not exist,
// ErrPreconditionFailed when its ETag changed.
func (c *Container) Delete(ctx context.Context, key migrate.Key, id string, ifMatch string) (migrate.WriteResult, error) {
	op := "delete item " + strconv.Quote(id) + " with key " + keyText(key)
	if err := ctx.Err(); err != nil {
		return migrate.WriteResult{}, fmt.Errorf("%s: %w", op, err)
	}
	if err := c.before(OpDelete, key, id); err != nil {
		return migrate.WriteResult{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sweepExpired()
	it, ok := c.lookup(key, id)
	switch {
	case !ok:
		return migrate.WriteResult{}, requestError(op, http.StatusNotFound, failedRU, "Entity with the specified id does not exist in the system.")
	case ifMatch != "" && it.etag != ifMatch:
		return migrate.WriteResult{}, requestError(op, http.StatusPreconditionFailed, failedRU, "Operation cannot be performed because one of the specified precondition is not met.")
	}
	delete(c.items, addr(key, id))
	c.lsn++ // a delete takes an LSN too; the latest-version feed shows nothing for it
	c.logDelete(it, c.lsn, false)
	return migrate.WriteResult{RU: deleteRU(len(it.doc))}, nil
}

// CreateBatch creates items of one logical partition atomically: all of
// them, or, when one fails (409 for an item that exists or repeats, 400 for
// a body the service refuses, 413 for one too large), none, with the
// failing operation's status and 424 for every other. An empty batch
// commits without a request; more than MaxBatchItems is an error.
func (c *Container) CreateBatch(ctx context.Context, key migrate.Key, bodies [][]byte) (migrate.BatchResult, error) {
	op := fmt.Sprintf("create batch of %d items with key %s", len(bodies), keyText(key))
	switch {
	case len(bodies) == 0:
		return migrate.BatchResult{Committed: true}, nil
	case len(bodies) > MaxBatchItems:
		return migrate.BatchResult{}, fmt.Errorf("%s: a transactional batch takes at most %d operations", op, MaxBatchItems)
	}
	if err := ctx.Err(); err != nil {
		return migrate.BatchResult{}, fmt.Errorf("%s: %w", op, err)
	}
	if err := c.before(OpBatch, key, ""); err != nil {
		return migrate.BatchResult{}, err
	}
	size := 0
	for _, b := range bodies {
		size += len(b)
	}
	if size > maxItemBytes {
		return migrate.BatchResult{}, requestError(op, http.StatusRequestEntityTooLarge, 0, "Request size is too large.")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	itemEPK, err := epkOf(c.edef, key)
	if err != nil {
		return migrate.BatchResult{}, badRequest(op, err.Error())
	}
	res := migrate.BatchResult{Statuses: make([]int, len(bodies))}
	c.sweepExpired()
	logged := c.lsn      // the all-versions log keeps nothing of a batch that fails
	var written []string // addresses created so far, undone when one fails
	failed := -1
	for i, body := range bodies {
		status, ru := c.batchCreate(key, itemEPK, body, &written)
		res.RU += ru
		res.Statuses[i] = status
		if status != http.StatusCreated {
			failed = i
			break
		}
	}
	if failed < 0 {
		res.Committed = true
		return res, nil
	}
	for _, a := range written {
		delete(c.items, a)
	}
	c.unlogAfter(logged)
	for i := range res.Statuses {
		if i != failed {
			res.Statuses[i] = http.StatusFailedDependency
		}
	}
	res.RU += failedRU
	return res, nil
}

// batchCreate applies one create of a batch; c.mu is held.
func (c *Container) batchCreate(key migrate.Key, itemEPK string, body []byte, written *[]string) (int, float64) {
	members, id, err := parseObject(body)
	if err != nil {
		return http.StatusBadRequest, 0
	}
	if got, err := keyOf(members, c.def.Paths); err != nil || !sameKey(got, key) {
		return http.StatusBadRequest, 0
	}
	if _, exists := c.lookup(key, id); exists {
		return http.StatusConflict, 0
	}
	it, err := c.put(key, id, itemEPK, members)
	if err != nil {
		return http.StatusRequestEntityTooLarge, 0
	}
	*written = append(*written, addr(key, id))
	return http.StatusCreated, createRU(len(it.doc))
}

// write applies a create, replace or upsert of one item.
func (c *Container) write(ctx context.Context, op string, key migrate.Key, members []member, id string, mode writeMode, ifMatch string) (migrate.WriteResult, error) {
	if err := ctx.Err(); err != nil {
		return migrate.WriteResult{}, fmt.Errorf("%s: %w", op, err)
	}
	got, err := keyOf(members, c.def.Paths)
	if err != nil {
		return migrate.WriteResult{}, badRequest(op, err.Error())
	}
	if !sameKey(got, key) {
		return migrate.WriteResult{}, badRequest(op, fmt.Sprintf("the partition key extracted from the item, %s, does not match %s", keyText(got), keyText(key)))
	}
	itemEPK, err := epkOf(c.edef, key)
	if err != nil {
		return migrate.WriteResult{}, badRequest(op, err.Error())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old, exists := c.lookup(key, id)
	switch {
	case mode == modeCreate && exists:
		return migrate.WriteResult{}, requestError(op, http.StatusConflict, failedRU, "Entity with the specified id already exists in the system.")
	case mode == modeReplace && !exists:
		return migrate.WriteResult{}, requestError(op, http.StatusNotFound, failedRU, "Entity with the specified id does not exist in the system.")
	case ifMatch != "" && (!exists || old.etag != ifMatch):
		return migrate.WriteResult{}, requestError(op, http.StatusPreconditionFailed, failedRU, "Operation cannot be performed because one of the specified precondition is not met.")
	}
	it, err := c.put(key, id, itemEPK, members)
	if errors.Is(err, errTooLarge) {
		return migrate.WriteResult{}, requestError(op, http.StatusRequestEntityTooLarge, failedRU, err.Error())
	}
	ru := createRU(len(it.doc))
	if exists {
		ru = replaceRU(len(it.doc))
	}
	return migrate.WriteResult{RU: ru, ETag: it.etag}, nil
}
