package emulator

import (
	"encoding/json"
	"net/http"
	"strings"
)

// maxBatchOperations is the service's limit on one transactional batch
// (transactional-batch.md: 100 operations, 2 MB, one logical partition).
const maxBatchOperations = 100

type batchOp struct {
	OperationType string          `json:"operationType"`
	ID            string          `json:"id"`
	IfMatch       string          `json:"ifMatch"`
	ResourceBody  json.RawMessage `json:"resourceBody"`
}

// batchResult is one operation's result in a batch or bulk response
// (azure-sdk-for-js src/bulk/BulkResponse.ts reads these names).
type batchResult struct {
	StatusCode    int             `json:"statusCode"`
	SubStatusCode int             `json:"subStatusCode,omitempty"`
	RequestCharge float64         `json:"requestCharge"`
	ETag          string          `json:"eTag,omitempty"`
	ResourceBody  json.RawMessage `json:"resourceBody,omitempty"`
	RetryAfterMs  int64           `json:"retryAfterMilliseconds,omitempty"`
}

// executeBatch runs a transactional batch: every operation of one logical
// partition applied in order, atomically. When one fails, every write is
// rolled back and the answer is 207 Multi-Status: the failing operation's own
// status and 424 Failed Dependency for every other.
func (e *Emulator) executeBatch(w http.ResponseWriter, rc *requestContext, c *container) error {
	body, err := rc.readBody()
	if err != nil {
		return err
	}
	if len(body) > maxDocumentBytes {
		return tooLarge()
	}
	var ops []batchOp
	if jsonErr := json.Unmarshal(body, &ops); jsonErr != nil {
		return badRequest("The batch request body is not a JSON array of operations: %v", jsonErr)
	}
	if len(ops) == 0 {
		return badRequest("The batch request did not have any operations to be executed.")
	}
	if len(ops) > maxBatchOperations {
		return badRequest("Batch request has more operations than what is supported: %d, the limit is %d.", len(ops), maxBatchOperations)
	}
	pk, perr := requestPK(rc, c, nil)
	if perr != nil {
		return perr
	}
	withContent := rc.contentResponse()

	results := make([]batchResult, len(ops))
	failed := -1
	p, lsn, opErr := e.pointOp(rc, c, pk, func(o *itemOps) (float64, *svcError) {
		total := 0.0
		for i, op := range ops {
			res, ru, err := e.batchStep(o, c, pk, op, withContent)
			res.RequestCharge = ru
			results[i] = res
			total += ru
			if err != nil {
				failed = i
				results[i] = batchResult{StatusCode: err.status, SubStatusCode: err.subStatus, RequestCharge: 1}
				o.rollback()
				break
			}
		}
		return total, nil
	})
	if opErr != nil {
		return opErr
	}
	status := http.StatusOK
	if failed >= 0 {
		status = http.StatusMultiStatus
		for i := range results {
			if i != failed {
				results[i] = batchResult{StatusCode: http.StatusFailedDependency, RequestCharge: 1}
			}
		}
	}
	setCommon(w, rc, p.id, lsn)
	writeJSON(w, status, results)
	return nil
}

// batchStep applies one batch operation; the container's lock is held.
func (e *Emulator) batchStep(o *itemOps, c *container, pk []any, op batchOp, withContent bool) (batchResult, float64, *svcError) {
	kind := strings.ToLower(op.OperationType)
	switch kind {
	case "create", "upsert", "replace":
		members, perr := parseObject(op.ResourceBody)
		if perr != nil {
			return batchResult{}, 0, badRequest("The operation's resourceBody is invalid: %v", perr)
		}
		id, idErr := documentID(members)
		if idErr != nil {
			return batchResult{}, 0, idErr
		}
		if kind == "replace" && op.ID != id {
			return batchResult{}, 0, badRequest("The id %q of the replace operation does not match its resourceBody's id %q.", op.ID, id)
		}
		bodyPK, kerr := c.pk.extractPK(members)
		if kerr != nil {
			return batchResult{}, 0, kerr
		}
		if pkKeyOf(bodyPK) != pkKeyOf(pk) {
			err := badRequest("The partition key of item %q does not match the batch's partition key.", id)
			err.subStatus = subStatusPartitionKeyMismatch
			return batchResult{}, 0, err
		}
		mode := map[string]writeMode{"create": modeCreate, "upsert": modeUpsert, "replace": modeReplace}[kind]
		it, created, werr := o.write(mode, pk, id, members, op.IfMatch)
		if werr != nil {
			return batchResult{}, 0, werr
		}
		ru := insertCost(len(it.doc), c.indexed)
		if !created {
			ru = replaceCost(len(it.doc), c.indexed)
		}
		return resultFor(it, statusFor(mode, created), withContent), ru, nil
	case "read":
		it, _, rerr := o.read(pk, op.ID)
		if rerr != nil {
			return batchResult{}, 0, rerr
		}
		return resultFor(it, http.StatusOK, true), readCost(len(it.doc)), nil
	case "delete":
		it, derr := o.remove(pk, op.ID, op.IfMatch)
		if derr != nil {
			return batchResult{}, 0, derr
		}
		return batchResult{StatusCode: http.StatusNoContent}, deleteCost(len(it.doc), c.indexed), nil
	case "patch":
		it, perr := e.patchLocked(o, c, pk, op.ID, op.ResourceBody, op.IfMatch)
		if perr != nil {
			return batchResult{}, 0, perr
		}
		return resultFor(it, http.StatusOK, withContent), replaceCost(len(it.doc), c.indexed), nil
	default:
		return batchResult{}, 0, badRequest("The batch operation type %q is not supported.", op.OperationType)
	}
}

func resultFor(it *item, status int, withContent bool) batchResult {
	r := batchResult{StatusCode: status, ETag: it.etag}
	if withContent {
		r.ResourceBody = it.doc
	}
	return r
}
