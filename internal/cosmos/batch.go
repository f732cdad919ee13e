package cosmos

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"

	"github.com/rekey-dev/rekey/migrate"
)

// MaxBatchItems is the service's limit on the operations of one
// transactional batch (as is 2 MB on its body).
const MaxBatchItems = 100

// CreateBatch creates items of one logical partition atomically, in one
// transactional batch: all of them or none.
//
// When the service refuses an operation (a 409 for an item that exists, a
// 400 or 413 for an item it will not store), the batch answers 207: the
// result has Committed false, nothing was written, and Statuses holds each
// operation's status (the failing one's own, 424 for the others), so the
// caller can tell which item to set aside. A failure of the request as a
// whole (429, 503, a network error) is an error, as for any request.
// An empty batch commits trivially without a request; more than
// MaxBatchItems bodies is an error.
func (c *Container) CreateBatch(ctx context.Context, key migrate.Key, bodies [][]byte) (migrate.BatchResult, error) {
	if c.err != nil {
		return migrate.BatchResult{}, c.err
	}
	op := fmt.Sprintf("create batch of %d items with key %s in %s", len(bodies), key.String(), c)
	switch {
	case len(bodies) == 0:
		return migrate.BatchResult{Committed: true}, nil
	case len(bodies) > MaxBatchItems:
		return migrate.BatchResult{}, fmt.Errorf("%s: a transactional batch takes at most %d operations", op, MaxBatchItems)
	}
	pk, err := partitionKey(key)
	if err != nil {
		return migrate.BatchResult{}, fmt.Errorf("%s: %w", op, err)
	}
	b := c.cc.NewTransactionalBatch(pk)
	for _, body := range bodies {
		b.CreateItem(body, nil)
	}
	resp, err := c.cc.ExecuteTransactionalBatch(ctx, b, nil)
	if err != nil {
		return migrate.BatchResult{}, c.client.classify(ctx, op, err)
	}
	res := migrate.BatchResult{Committed: resp.Success, RU: float64(resp.RequestCharge)}
	if !resp.Success {
		res.Statuses = make([]int, len(resp.OperationResults))
		for i, r := range resp.OperationResults {
			res.Statuses[i] = int(r.StatusCode)
		}
	}
	return res, nil
}

// batchOne runs a transactional batch of one operation, built by add, and
// returns the operation's outcome: its status as a RequestError when the
// batch did not commit. It serves replaces and deletes of ids the gateway
// cannot address in a URL, since a batch carries ids in its body.
func (c *Container) batchOne(ctx context.Context, op string, pk azcosmos.PartitionKey, add func(*azcosmos.TransactionalBatch)) (migrate.WriteResult, error) {
	b := c.cc.NewTransactionalBatch(pk)
	add(&b)
	resp, err := c.cc.ExecuteTransactionalBatch(ctx, b, nil)
	if err != nil {
		return migrate.WriteResult{}, c.client.classify(ctx, op, err)
	}
	if len(resp.OperationResults) != 1 {
		return migrate.WriteResult{}, fmt.Errorf("%s: the batch answered %d results for one operation", op, len(resp.OperationResults))
	}
	r := resp.OperationResults[0]
	if !resp.Success || r.StatusCode >= http.StatusMultipleChoices {
		sub := 0
		if subs := batchSubStatuses(resp.RawResponse); len(subs) == 1 {
			sub = subs[0]
		}
		return migrate.WriteResult{}, statusError(op, int(r.StatusCode), sub, resp.ActivityID,
			fmt.Sprintf("the operation failed with %d inside a transactional batch", r.StatusCode))
	}
	return migrate.WriteResult{RU: float64(resp.RequestCharge), ETag: string(r.ETag)}, nil
}

// batchSubStatuses reads each operation's subStatusCode from a batch
// response body, which the SDK does not expose; nil when it cannot.
func batchSubStatuses(resp *http.Response) []int {
	if resp == nil {
		return nil
	}
	body, err := runtime.Payload(resp)
	if err != nil {
		return nil
	}
	var results []struct {
		SubStatusCode int `json:"subStatusCode"`
	}
	if json.Unmarshal(body, &results) != nil {
		return nil
	}
	out := make([]int, len(results))
	for i, r := range results {
		out[i] = r.SubStatusCode
	}
	return out
}

// batchID is id as the SDK must be given it for a batch operation.
// azcosmos v1.5.0 writes a replace's or delete's id into the batch body
// with "%s", unescaped (cosmos_transactional_batch.go), so an id holding a
// quote, a backslash or a control character would make the body invalid
// JSON or name another item. Passing the id's JSON-escaped text makes the
// SDK's output a correctly escaped string of the real id.
func batchID(id string) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(id) // a string always encodes
	quoted := strings.TrimSuffix(b.String(), "\n")
	return quoted[1 : len(quoted)-1]
}
