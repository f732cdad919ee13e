package emulator

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// isBulkRequest reports whether a batch request is a bulk (non-atomic)
// one: x-ms-cosmos-is-batch-request: True with x-ms-cosmos-batch-atomic:
// False, as the JavaScript SDK sends it (src/ClientContext.ts bulk: also
// x-ms-cosmos-batch-continue-on-error and x-ms-documentdb-partitionkeyrangeid)
// and as the .NET and Java SDKs' bulk executors do.
func isBulkRequest(rc *requestContext) bool {
	return rc.headerBool("x-ms-cosmos-is-batch-request") && strings.EqualFold(rc.header("x-ms-cosmos-batch-atomic"), "false")
}

// bulkOp is one operation of a bulk request: a batch operation plus its
// own partition key, a JSON array in a string ("[\"a\"]"), as the SDKs
// write it (azure-sdk-for-js src/bulk/BulkHelper.ts prepareOperation).
type bulkOp struct {
	batchOp
	PartitionKey *string `json:"partitionKey"`
}

// executeBulk runs a bulk request: up to 100 independent operations whose
// keys all belong to the partition key range the request names, each with
// its own result. Unlike a transactional batch nothing is rolled back: each
// operation succeeds or fails alone, and the answer is 200 when all
// succeeded, 207 Multi-Status otherwise.
//
// Whole-request answers: 413 over 2 MB; 400 over 100 operations or for a
// body that is not an array of operations; 410 / 1002 when the range has
// split (the SDK re-resolves every operation's range and resends); 429 when
// the range's RU budget is spent before the request starts. When the budget
// runs out part-way, the remaining operations each answer 429 / 3200 with
// retryAfterMilliseconds, and the SDK retries those alone.
//
// An operation whose key hashes outside the named range is a routing error
// of the client: the request is answered 410 with substatus 1001, which the
// JavaScript SDK's Items.bulk reports as "an operation has an unsupported
// partitionKey type" (src/client/Item/Items.ts executeBatchOperations). The
// service's exact substatus for this case is not documented.
func (e *Emulator) executeBulk(w http.ResponseWriter, rc *requestContext, c *container) error {
	body, err := rc.readBody()
	if err != nil {
		return err
	}
	if len(body) > maxDocumentBytes {
		return newError(http.StatusRequestEntityTooLarge, `Message: {"Errors":["Request size is too large"]}`)
	}
	var ops []bulkOp
	if jsonErr := json.Unmarshal(body, &ops); jsonErr != nil {
		return badRequest("The bulk request body is not a JSON array of operations: %v", jsonErr)
	}
	if len(ops) == 0 {
		return badRequest("The batch request did not have any operations to be executed.")
	}
	if len(ops) > maxBatchOperations {
		return badRequest("Batch request has more operations than what is supported: %d, the limit is %d.", len(ops), maxBatchOperations)
	}
	rangeID := rc.header("x-ms-documentdb-partitionkeyrangeid")
	if rangeID == "" {
		return badRequest("A bulk request must name its partition key range in x-ms-documentdb-partitionkeyrangeid.")
	}
	keys := make([][]any, len(ops))
	keyErrs := make([]*svcError, len(ops))
	for i, op := range ops {
		keys[i], keyErrs[i] = bulkOpKey(c, op)
	}
	withContent := rc.contentResponse()
	db, coll, _ := e.faultScope(rc)

	c.mu.Lock()
	c.sweepExpired()
	p, serr := c.feedScope(rangeID, nil)
	if serr != nil {
		c.mu.Unlock()
		return serr
	}
	for i, k := range keys {
		if keyErrs[i] == nil && !p.holds(c.epkOf(k)) {
			c.mu.Unlock()
			ge := newError(http.StatusGone, "The partition key %s of operation %d does not belong to partition key range %s.", pkJSON(k), i, rangeID)
			ge.subStatus = subStatusPartitionKeyMismatch
			return ge
		}
	}
	if aerr := e.admitRequest(rc, c, p); aerr != nil {
		c.mu.Unlock()
		return aerr
	}
	results := make([]batchResult, len(ops))
	failed, total := false, 0.0
	o := &itemOps{c: c}
	for i, op := range ops {
		res := e.bulkStep(rc, o, c, p, op.batchOp, keys[i], keyErrs[i], i == 0, withContent, db, coll)
		results[i] = res
		total += res.RequestCharge
		if res.StatusCode >= 300 {
			failed = true
		}
	}
	lsn := c.lsn
	c.mu.Unlock()

	rc.charge = total
	status := http.StatusOK
	if failed {
		status = http.StatusMultiStatus
	}
	setCommon(w, rc, p.id, lsn)
	w.Header().Set("x-ms-documentdb-partitionkeyrangeid", p.id)
	writeJSON(w, status, results)
	return nil
}

// bulkStep runs one operation of a bulk request; c.mu is held. An injected
// per-operation fault answers instead of the operation; a spent RU budget
// (checked from the second operation on; the first passed admitRequest)
// answers 429.
func (e *Emulator) bulkStep(rc *requestContext, o *itemOps, c *container, p *partition, op batchOp, pk []any, keyErr *svcError, first, withContent bool, db, coll string) batchResult {
	if keyErr != nil {
		return batchResult{StatusCode: keyErr.status, SubStatusCode: keyErr.subStatus, RequestCharge: 0}
	}
	if f, ok := e.faults.pickOperation(db, coll, p.id); ok {
		return injectedOperationResult(f)
	}
	if !first {
		if terr := c.admit(p, rc.lowPriority()); terr != nil {
			return batchResult{StatusCode: terr.status, SubStatusCode: terr.subStatus, RetryAfterMs: retryAfterMillis(terr.retryAfter)}
		}
	}
	res, ru, err := e.batchStep(o, c, pk, op, withContent)
	if err != nil {
		ru = 1
		res = batchResult{StatusCode: err.status, SubStatusCode: err.subStatus}
	}
	res.RequestCharge = ru
	c.charge(p, ru)
	return res
}

// bulkOpKey reads an operation's partition key: its own partitionKey, or
// for a write without one, the key in its body.
func bulkOpKey(c *container, op bulkOp) ([]any, *svcError) {
	if op.PartitionKey == nil {
		members, err := parseObject(op.ResourceBody)
		if err != nil {
			return nil, badRequest("PartitionKey value must be supplied for this operation.")
		}
		return c.pk.extractPK(members)
	}
	pk, err := parsePKHeader(*op.PartitionKey)
	if err != nil {
		return nil, err
	}
	if len(pk) != len(c.pk.paths) {
		return nil, badRequest("Partition key provided either doesn't correspond to definition in the collection or doesn't match partition key field values specified in the document.")
	}
	return pk, nil
}

// holds reports whether epk lies in p's range.
func (p *partition) holds(epk string) bool {
	return compareEPK(epk, p.min) >= 0 && (p.max == maxEPK || compareEPK(epk, p.max) < 0)
}

func retryAfterMillis(d time.Duration) int64 {
	ms := d.Milliseconds()
	if ms < 1 {
		ms = 1
	}
	return ms
}
