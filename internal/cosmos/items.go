package cosmos

import (
	"context"
	"fmt"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"

	"github.com/rekey-dev/rekey/migrate"
)

// ReadItem reads the current version of an item, for migrate.Source; it is
// Read.
func (c *Container) ReadItem(ctx context.Context, key migrate.Key, id string) (migrate.Item, error) {
	return c.Read(ctx, key, id)
}

// Read returns an item with its system properties and ETag; ErrNotFound
// when no item has this id and key.
//
// An id the gateway cannot address in a URL, or a key with an undefined
// component, is read with a query instead of a point read: scoped to the
// key when it can be expressed, across partitions with a filter on the key
// paths when it holds an undefined component. The item's ETag then comes
// from its _etag property.
func (c *Container) Read(ctx context.Context, key migrate.Key, id string) (migrate.Item, error) {
	if c.err != nil {
		return migrate.Item{}, c.err
	}
	op := c.itemOp("read", key, id)
	if key.HasUndefined() || !addressable(id) {
		return c.readByQuery(ctx, op, key, id)
	}
	pk, err := partitionKey(key)
	if err != nil {
		return migrate.Item{}, fmt.Errorf("%s: %w", op, err)
	}
	resp, err := c.cc.ReadItem(ctx, pk, id, c.itemOptions(""))
	if err != nil {
		return migrate.Item{}, c.client.classify(ctx, op, err)
	}
	return migrate.Item{ID: id, Key: key, Body: resp.Value, ETag: string(resp.ETag), RU: float64(resp.RequestCharge)}, nil
}

// Create writes a new item whose body holds its id and key; ErrConflict
// when an item with this id and key exists.
func (c *Container) Create(ctx context.Context, key migrate.Key, body []byte) (migrate.WriteResult, error) {
	if c.err != nil {
		return migrate.WriteResult{}, c.err
	}
	op := "create item with key " + key.String() + " in " + c.String()
	pk, err := partitionKey(key)
	if err != nil {
		return migrate.WriteResult{}, fmt.Errorf("%s: %w", op, err)
	}
	resp, err := c.cc.CreateItem(ctx, pk, body, c.itemOptions(""))
	if err != nil {
		return migrate.WriteResult{}, c.client.classify(ctx, op, err)
	}
	return migrate.WriteResult{RU: float64(resp.RequestCharge), ETag: string(resp.ETag)}, nil
}

// Replace overwrites an item when its ETag still equals ifMatch (whatever
// its ETag when ifMatch is empty). ErrPreconditionFailed when the ETag
// changed, ErrNotFound when the item is gone. An id the gateway cannot
// address goes through a transactional batch of one replace.
func (c *Container) Replace(ctx context.Context, key migrate.Key, id string, body []byte, ifMatch string) (migrate.WriteResult, error) {
	if c.err != nil {
		return migrate.WriteResult{}, c.err
	}
	op := c.itemOp("replace", key, id)
	pk, err := partitionKey(key)
	if err != nil {
		return migrate.WriteResult{}, fmt.Errorf("%s: %w", op, err)
	}
	if !addressable(id) {
		return c.batchOne(ctx, op, pk, func(b *azcosmos.TransactionalBatch) {
			b.ReplaceItem(batchID(id), body, batchItemOptions(ifMatch))
		})
	}
	resp, err := c.cc.ReplaceItem(ctx, pk, id, body, c.itemOptions(ifMatch))
	if err != nil {
		return migrate.WriteResult{}, c.client.classify(ctx, op, err)
	}
	return migrate.WriteResult{RU: float64(resp.RequestCharge), ETag: string(resp.ETag)}, nil
}

// Delete removes an item when its ETag equals ifMatch (whatever its ETag
// when ifMatch is empty). ErrNotFound when it does not exist,
// ErrPreconditionFailed when its ETag changed. An id the gateway cannot
// address goes through a transactional batch of one delete.
func (c *Container) Delete(ctx context.Context, key migrate.Key, id string, ifMatch string) (migrate.WriteResult, error) {
	if c.err != nil {
		return migrate.WriteResult{}, c.err
	}
	op := c.itemOp("delete", key, id)
	pk, err := partitionKey(key)
	if err != nil {
		return migrate.WriteResult{}, fmt.Errorf("%s: %w", op, err)
	}
	if !addressable(id) {
		return c.batchOne(ctx, op, pk, func(b *azcosmos.TransactionalBatch) {
			b.DeleteItem(batchID(id), batchItemOptions(ifMatch))
		})
	}
	resp, err := c.cc.DeleteItem(ctx, pk, id, c.itemOptions(ifMatch))
	if err != nil {
		return migrate.WriteResult{}, c.client.classify(ctx, op, err)
	}
	return migrate.WriteResult{RU: float64(resp.RequestCharge), ETag: string(resp.ETag)}, nil
}

// itemOp names an operation on one item for errors.
func (c *Container) itemOp(verb string, key migrate.Key, id string) string {
	return fmt.Sprintf("%s item %q with key %s in %s", verb, id, key.String(), c)
}

// itemOptions are a point operation's options: the precondition, and the
// container's own priority when it has one.
func (c *Container) itemOptions(ifMatch string) *azcosmos.ItemOptions {
	if ifMatch == "" && c.priority == nil {
		return nil
	}
	o := &azcosmos.ItemOptions{PriorityLevel: c.priority}
	if ifMatch != "" {
		etag := azcore.ETag(ifMatch)
		o.IfMatchEtag = &etag
	}
	return o
}

func batchItemOptions(ifMatch string) *azcosmos.TransactionalBatchItemOptions {
	if ifMatch == "" {
		return nil
	}
	etag := azcore.ETag(ifMatch)
	return &azcosmos.TransactionalBatchItemOptions{IfMatchETag: &etag}
}
