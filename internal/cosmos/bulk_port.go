package cosmos

import (
	"context"
	"errors"
	"fmt"

	"github.com/rekey-dev/rekey/internal/epk"
	"github.com/rekey-dev/rekey/migrate"
)

// Container is the pipeline's migrate.BulkTarget: the port in the
// migration's terms over PartitionKeyRanges and ExecuteBulk.
var _ migrate.BulkTarget = (*Container)(nil)

// bulkTypes converts the port's operation types.
var bulkTypes = map[migrate.BulkOpType]BulkOperationType{
	migrate.BulkCreate:  BulkCreate,
	migrate.BulkRead:    BulkRead,
	migrate.BulkReplace: BulkReplace,
}

// PartitionsOf returns the partition key range id holding each key, from
// the known ranges (RangeOfKey's, read once and again after a 410). While
// a split is being published the ranges may not cover the key space: that
// error is transient (migrate.ErrTransient).
func (c *Container) PartitionsOf(ctx context.Context, keys []migrate.Key) ([]string, error) {
	if c.err != nil {
		return nil, c.err
	}
	def, err := c.cachedDefinition(ctx)
	if err != nil {
		return nil, err
	}
	ranges, err := c.partitionKeyRanges(ctx, false)
	if errors.Is(err, ErrIncompleteRanges) {
		return nil, fmt.Errorf("%w: %w", migrate.ErrTransient, err)
	}
	if err != nil {
		return nil, err
	}
	spans, edef := epkRanges(ranges), def.EPK()
	out := make([]string, len(keys))
	for i, k := range keys {
		h, err := k.EPK(edef)
		if err != nil {
			return nil, fmt.Errorf("partition key %s of %s: %w", k.String(), c, err)
		}
		j, ok := epk.Find(spans, h)
		if !ok {
			return nil, fmt.Errorf("partition key %s of %s: no range holds its EPK %s", k.String(), c, h)
		}
		out[i] = ranges[j].ID
	}
	return out, nil
}

// Bulk sends ops to partition key range partition as ExecuteBulk does,
// trusting each body to be a JSON object, as the port says. A request
// over the 2 MB limit is an error wrapping migrate.ErrTooLarge (and
// ErrBulkRequestTooLarge), which the caller splits. Each operation's
// result keeps its error and says whether to resend it
// (BulkResult.Resend).
func (c *Container) Bulk(ctx context.Context, partition string, ops []migrate.BulkOp) (migrate.BulkResponse, error) {
	in := make([]BulkOperation, len(ops))
	for i, o := range ops {
		t, ok := bulkTypes[o.Type]
		if !ok {
			return migrate.BulkResponse{}, fmt.Errorf("bulk request to range %s of %s: operation %d has unknown type %d", partition, c, i, o.Type)
		}
		in[i] = BulkOperation{Type: t, Key: o.Key, ID: o.ID, Body: o.Body, IfMatch: o.IfMatch}
	}
	resp, err := c.executeBulk(ctx, partition, in, false)
	if errors.Is(err, ErrBulkRequestTooLarge) {
		return migrate.BulkResponse{}, fmt.Errorf("%w: %w", migrate.ErrTooLarge, err)
	}
	if err != nil {
		return migrate.BulkResponse{}, err
	}
	out := migrate.BulkResponse{RU: resp.RU, Results: make([]migrate.BulkOpResult, len(resp.Results))}
	for i, r := range resp.Results {
		out.Results[i] = migrate.BulkOpResult{RU: r.RU, ETag: r.ETag, Body: r.Body, Err: r.Err, Resend: r.Resend()}
	}
	return out, nil
}
