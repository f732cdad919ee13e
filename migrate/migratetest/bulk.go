package migratetest

import (
	"context"
	"errors"
	"net/http"
	"sync"

	"github.com/rekey-dev/rekey/migrate"
)

// SubStatusResponseTooLarge is the substatus of a 413 that says the
// response, not the item, outgrew its limit (docs/cosmos-bulk.md): the
// operation is to be sent again.
const SubStatusResponseTooLarge = 3402

// BulkTarget is a Container that also takes bulk requests
// (migrate.BulkTarget) over the same items. Each operation runs as the
// Container's single request of its kind (create, read, replace), so
// Intercept fails single operations, with the answer the service gives
// inside a bulk response, and Calls counts them. BulkFail fails whole
// requests. Every key is in the partition Partition names ("0" when nil).
type BulkTarget struct {
	*Container
	// BulkFail, when set, may fail a whole request before its operations
	// run.
	BulkFail func(partition string, ops []migrate.BulkOp) error
	// Partition routes a key; it may change between calls, as a split does.
	Partition func(key migrate.Key) string

	mu       sync.Mutex
	requests [][]migrate.BulkOp
	routes   int
}

// NewBulkTarget returns a BulkTarget over c.
func NewBulkTarget(c *Container) *BulkTarget { return &BulkTarget{Container: c} }

// Requests returns the bulk requests served so far (failed ones included),
// their operations in order.
func (b *BulkTarget) Requests() [][]migrate.BulkOp {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([][]migrate.BulkOp(nil), b.requests...)
}

// Routes is how often PartitionsOf was called.
func (b *BulkTarget) Routes() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.routes
}

// PartitionsOf routes each key by Partition.
func (b *BulkTarget) PartitionsOf(_ context.Context, keys []migrate.Key) ([]string, error) {
	b.mu.Lock()
	b.routes++
	b.mu.Unlock()
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = "0"
		if b.Partition != nil {
			out[i] = b.Partition(k)
		}
	}
	return out, nil
}

// Bulk runs ops one by one and answers each; the request's charge is the
// sum of theirs.
func (b *BulkTarget) Bulk(ctx context.Context, partition string, ops []migrate.BulkOp) (migrate.BulkResponse, error) {
	b.mu.Lock()
	b.requests = append(b.requests, append([]migrate.BulkOp(nil), ops...))
	b.mu.Unlock()
	if b.BulkFail != nil {
		if err := b.BulkFail(partition, ops); err != nil {
			return migrate.BulkResponse{}, err
		}
	}
	resp := migrate.BulkResponse{Results: make([]migrate.BulkOpResult, len(ops))}
	for i, op := range ops {
		var r migrate.BulkOpResult
		switch op.Type {
		case migrate.BulkCreate:
			var wr migrate.WriteResult
			wr, r.Err = b.Create(ctx, op.Key, op.Body)
			r.RU, r.ETag = wr.RU, wr.ETag
		case migrate.BulkRead:
			var it migrate.Item
			it, r.Err = b.Read(ctx, op.Key, op.ID)
			r.RU, r.ETag, r.Body = it.RU, it.ETag, it.Body
		case migrate.BulkReplace:
			var wr migrate.WriteResult
			wr, r.Err = b.Replace(ctx, op.Key, op.ID, op.Body, op.IfMatch)
			r.RU, r.ETag = wr.RU, wr.ETag
		}
		if r.Err != nil {
			r.RU = migrate.ErrorRU(r.Err)
			r.Resend = resend(r.Err)
		}
		resp.Results[i] = r
		resp.RU += r.RU
	}
	return resp, nil
}

// resend is the SDKs' rule for the operations of a bulk request to send
// again (cosmos.BulkResult.Resend).
func resend(err error) bool {
	var re *migrate.RequestError
	if errors.As(err, &re) && re.Status == http.StatusRequestEntityTooLarge {
		return re.SubStatus == SubStatusResponseTooLarge
	}
	return errors.Is(err, migrate.ErrThrottled) || errors.Is(err, migrate.ErrGone) || errors.Is(err, migrate.ErrTransient)
}
