package cosmos

import (
	"context"
	"fmt"

	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"

	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/transform"
)

var (
	_ migrate.CopyFinder = (*Container)(nil)
	_ migrate.TimeToLive = (*Container)(nil)
)

// FindCopies finds the copies of one source item in this (target)
// container, wherever their new key put them: the items with the id whose
// fields at sourcePaths hold sourceKey (an undefined component matches an
// absent field). It is one cross-partition query,
//
//	SELECT * FROM c WHERE c.id = @id AND c["region"] = @k0
//
// which the gateway serves as a filter on every partition (a query
// charges per partition it runs on). Each item comes with its key, read
// from its body at the container's key paths, and its ETag; the second
// result is the query's charge. Errors are classified as for every
// request; the query is not retried here (the caller's policy does it).
func (c *Container) FindCopies(ctx context.Context, id string, sourcePaths []string, sourceKey migrate.Key) ([]migrate.Item, float64, error) {
	if c.err != nil {
		return nil, 0, c.err
	}
	op := fmt.Sprintf("find the copies of item %q with source key %s in %s", id, sourceKey, c)
	filter, params, err := keyFilter(sourcePaths, sourceKey)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", op, err)
	}
	def, err := c.cachedDefinition(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", op, err)
	}
	keys, err := keyReader(def.Paths)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", op, err)
	}
	params = append(params, azcosmos.QueryParameter{Name: "@id", Value: id})
	pager := c.cc.NewQueryItemsPager("SELECT * FROM c WHERE c.id = @id AND "+filter, azcosmos.NewPartitionKey(),
		&azcosmos.QueryOptions{QueryParameters: params, PriorityLevel: c.priority})
	var found []migrate.Item
	ru := 0.0
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, ru, c.classify(ctx, op, err)
		}
		ru += float64(page.RequestCharge)
		for _, body := range page.Items {
			res, err := keys.Apply(body)
			if err != nil {
				return nil, ru, fmt.Errorf("%s: a copy's key: %w", op, err)
			}
			found = append(found, migrate.Item{ID: id, Key: migrate.Key(res.Key), Body: body, ETag: etagOf(body)})
		}
	}
	return found, ru, nil
}

// keyReader reads an item's key at paths: the paths as natural keys.
func keyReader(paths []string) (*transform.Transformer, error) {
	spec, err := transform.ParseSpec(paths)
	if err != nil {
		return nil, fmt.Errorf("key paths %v: %w", paths, err)
	}
	return transform.New(spec, nil)
}

// DefaultTTL is the container's defaultTtl: 0 when time to live is off,
// -1 when it is on without a default, else seconds. A
// *migrate.MissingContainerError (errors.Is ErrNotFound) when the container
// does not exist.
func (c *Container) DefaultTTL(ctx context.Context) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	resp, err := c.cc.Read(ctx, nil)
	if err != nil {
		return 0, c.classify(ctx, "read container "+c.String(), err)
	}
	if resp.ContainerProperties == nil || resp.ContainerProperties.DefaultTimeToLive == nil {
		return 0, nil
	}
	return int(*resp.ContainerProperties.DefaultTimeToLive), nil
}
