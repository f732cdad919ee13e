package cosmos

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"

	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"

	"github.com/rekey-dev/rekey/migrate"
)

// Param is a query parameter: Name with its '@' ("@id") and a value that
// encodes to JSON.
type Param struct {
	Name  string
	Value any
}

// Query runs a SQL query and streams its pages to fn, in order, until the
// query is exhausted, fn returns an error (returned as is), or a request
// fails.
//
// With key set, the query runs in that logical partition; a key with an
// undefined component cannot be sent (see ErrUndefinedKey) and is refused.
// With key nil it runs across partitions, where the gateway serves only
// simple queries: projections and filters, no ORDER BY, TOP, OFFSET,
// aggregates or GROUP BY; it answers others with ErrBadRequest (substatus
// 1004).
//
// pageSize is a hint (the service may return fewer items, and a
// cross-partition query may return empty pages before the end); zero
// leaves it to the service. fn is called for every page, empty ones
// included, so that ru, the page's charge, is always accounted. fn must not
// keep items past its return unless it copies them.
func (c *Container) Query(ctx context.Context, query string, params []Param, key *migrate.Key, pageSize int, fn func(items [][]byte, ru float64) error) error {
	if c.err != nil {
		return c.err
	}
	op := "query " + c.String()
	pk := azcosmos.NewPartitionKey() // empty: across partitions
	if key != nil {
		op += " in partition " + key.String()
		var err error
		if pk, err = partitionKey(*key); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
	}
	opts := &azcosmos.QueryOptions{PriorityLevel: c.priority}
	if pageSize > 0 {
		opts.PageSizeHint = int32(min(pageSize, math.MaxInt32))
	}
	for _, p := range params {
		opts.QueryParameters = append(opts.QueryParameters, azcosmos.QueryParameter{Name: p.Name, Value: p.Value})
	}
	pager := c.cc.NewQueryItemsPager(query, pk, opts)
	for pager.More() {
		// A failed page is asked for again: the pager moves on only after
		// a success. Throttling waits its retry-after, as everywhere.
		var page azcosmos.QueryItemsResponse
		err := migrate.Retry(ctx, func() error {
			var err error
			page, err = pager.NextPage(ctx)
			return c.classify(ctx, op, err)
		})
		if err != nil {
			return err
		}
		if err := fn(page.Items, float64(page.RequestCharge)); err != nil {
			return err
		}
	}
	return nil
}

// readByQuery finds one item by id with a query (see Read).
func (c *Container) readByQuery(ctx context.Context, op string, key migrate.Key, id string) (migrate.Item, error) {
	q := "SELECT * FROM c WHERE c.id = @id"
	params := []azcosmos.QueryParameter{{Name: "@id", Value: id}}
	pk := azcosmos.NewPartitionKey() // empty: across partitions
	if key.HasUndefined() {
		def, err := c.cachedDefinition(ctx)
		if err != nil {
			return migrate.Item{}, fmt.Errorf("%s: %w", op, err)
		}
		filter, kp, err := keyFilter(def.Paths, key)
		if err != nil {
			return migrate.Item{}, fmt.Errorf("%s: %w", op, err)
		}
		q += " AND " + filter
		params = append(params, kp...)
	} else {
		var err error
		if pk, err = partitionKey(key); err != nil {
			return migrate.Item{}, fmt.Errorf("%s: %w", op, err)
		}
	}
	pager := c.cc.NewQueryItemsPager(q, pk, &azcosmos.QueryOptions{QueryParameters: params, PriorityLevel: c.priority})
	ru := 0.0
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return migrate.Item{}, c.client.classify(ctx, op, err)
		}
		ru += float64(page.RequestCharge)
		if len(page.Items) > 0 {
			body := page.Items[0]
			return migrate.Item{ID: id, Key: key, Body: body, ETag: etagOf(body), RU: ru}, nil
		}
	}
	return migrate.Item{}, statusError(op, http.StatusNotFound, 0, "", "no item has this id and partition key (looked up by query)")
}

// etagOf reads an item body's _etag property.
func etagOf(body []byte) string {
	var doc struct {
		ETag string `json:"_etag"`
	}
	_ = json.Unmarshal(body, &doc)
	return doc.ETag
}
