package cosmos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/rekey-dev/rekey/migrate"
)

// Bulk requests: many independent operations for one physical partition in
// one POST, as the official SDKs send them through the gateway. See
// docs/cosmos-bulk.md for the protocol and the sources it was checked
// against.

// BulkOperationType is an operation of a bulk request, named as the SDKs
// write it in the body's "operationType".
type BulkOperationType string

// The operation types a bulk request carries (Patch is not offered).
const (
	BulkCreate  BulkOperationType = "Create"
	BulkUpsert  BulkOperationType = "Upsert"
	BulkReplace BulkOperationType = "Replace"
	BulkDelete  BulkOperationType = "Delete"
	BulkRead    BulkOperationType = "Read"
)

// Limits of a bulk request.
const (
	// MaxBulkOperations is the most operations one request carries.
	MaxBulkOperations = 100
	// MaxBulkRequestBytes is the service's limit on a request body.
	MaxBulkRequestBytes = 2 * 1024 * 1024
	// TargetBulkRequestBytes is the body size at which the JavaScript and
	// .NET SDKs start a new bulk request (DefaultMaxBulkRequestBodySizeInBytes);
	// an operation larger than it goes alone.
	TargetBulkRequestBytes = 220201
	// SubStatusResponseTooLarge on a 413 operation result means the
	// response, not the item, outgrew its limit: the SDKs resend the
	// operation (BulkExecutionRetryPolicy).
	SubStatusResponseTooLarge = 3402
)

// Headers of a bulk request (azure-sdk-for-js src/common/constants.ts,
// ClientContext.bulk).
const (
	headerIsBatch         = "x-ms-cosmos-is-batch-request"
	headerBatchAtomic     = "x-ms-cosmos-batch-atomic"
	headerContinueOnError = "x-ms-cosmos-batch-continue-on-error"
)

// ErrBulkRequestTooLarge is wrapped by ExecuteBulk's error for operations
// whose request body would exceed MaxBulkRequestBytes: split them. A single
// operation is always sent, and an item the service will not store answers
// 413 in its own result.
var ErrBulkRequestTooLarge = errors.New("bulk request body over the 2 MB limit")

// BulkOperation is one operation of a bulk request.
type BulkOperation struct {
	Type BulkOperationType
	// Key is the item's partition key, every component; it must belong to
	// the range the request is sent to (RangeOfKey).
	Key migrate.Key
	// ID names the item of a Replace, Delete or Read. Create and Upsert
	// take it from Body.
	ID string
	// Body is the item, JSON with its id and key, for Create, Upsert and
	// Replace.
	Body []byte
	// IfMatch, when set, makes a Replace, Upsert or Delete conditional on
	// the item's ETag (412 when it changed).
	IfMatch string
}

// BulkResult is one operation's outcome.
type BulkResult struct {
	Status     int
	SubStatus  int
	RU         float64
	RetryAfter time.Duration // of a 429
	ETag       string        // of the item written or read
	Body       []byte        // the item, when the service returned it
	// Err is nil for a 2xx status and otherwise a *migrate.RequestError
	// with the operation's status, substatus, retry-after and charge, so
	// errors.Is matches migrate's sentinels: ErrConflict (409), ErrTooLarge
	// (413, but see Resend), ErrBadRequest (400), ErrThrottled (429),
	// ErrGone (410), ErrPreconditionFailed (412), ErrNotFound (404),
	// ErrTransient (408, 449, 5xx).
	Err error
}

// Resend reports whether the operation failed for a reason of the moment
// and should be sent again, alone or in a later request, as the SDKs'
// bulk retry policies do: throttled (429, after RetryAfter), a split or
// merge of its range (410: look its range up again with RangeOfKey), a
// response too large (413 with SubStatusResponseTooLarge), or a transient
// failure (408, 449, 5xx). 409, 413, 400, 412 and 404 are answers about
// the item and are not resent.
func (r BulkResult) Resend() bool {
	switch {
	case r.Err == nil:
		return false
	case r.Status == http.StatusRequestEntityTooLarge:
		return r.SubStatus == SubStatusResponseTooLarge
	case r.Status == http.StatusGone:
		return true
	}
	return errors.Is(r.Err, migrate.ErrThrottled) || errors.Is(r.Err, migrate.ErrTransient)
}

// BulkResponse is the answer to a bulk request.
type BulkResponse struct {
	// Status is 200 when every operation succeeded, 207 (Multi-Status)
	// when some failed.
	Status     int
	RU         float64 // the request's charge, every operation's included
	ActivityID string
	// Results holds one result per operation, in the request's order.
	Results []BulkResult
}

// ExecuteBulk sends ops, at most MaxBulkOperations whose keys all belong
// to partition key range rangeID, as one bulk request: POST to the
// container's documents with x-ms-cosmos-is-batch-request, batch-atomic
// false and continue-on-error, routed by x-ms-documentdb-partitionkeyrangeid.
// Each operation succeeds or fails on its own; nothing is rolled back.
//
// The error is for the request as a whole, classified as for every
// request: ErrThrottled (429, with RetryAfter: resend every operation),
// ErrGone (410: the range split or merged; its ranges are re-read, route
// each operation again with RangeOfKey), ErrTooLarge (413), ErrBadRequest
// (a malformed request), ErrTransient, ErrNotFound (no such container).
// Invalid operations (an unknown type, a missing id or body, a body that
// is not JSON, too many operations) and bodies over MaxBulkRequestBytes
// (ErrBulkRequestTooLarge) are refused before anything is sent. An empty
// ops sends nothing.
func (c *Container) ExecuteBulk(ctx context.Context, rangeID string, ops []BulkOperation) (BulkResponse, error) {
	return c.executeBulk(ctx, rangeID, ops, true)
}

// executeBulk is ExecuteBulk; checkBodies false leaves out the check that
// each body is a JSON object, for callers whose bodies are known to be
// (the pipeline's, which its transform wrote): a full check costs as much
// as a quarter of a bulk copy's CPU.
func (c *Container) executeBulk(ctx context.Context, rangeID string, ops []BulkOperation, checkBodies bool) (BulkResponse, error) {
	if c.err != nil {
		return BulkResponse{}, c.err
	}
	op := fmt.Sprintf("bulk request of %d operations to range %s of %s", len(ops), rangeID, c)
	switch {
	case len(ops) == 0:
		return BulkResponse{Status: http.StatusOK}, nil
	case len(ops) > MaxBulkOperations:
		return BulkResponse{}, fmt.Errorf("%s: a bulk request takes at most %d operations", op, MaxBulkOperations)
	case rangeID == "":
		return BulkResponse{}, fmt.Errorf("%s: no partition key range id", op)
	}
	body, err := encodeBulk(ops, checkBodies)
	if err != nil {
		return BulkResponse{}, fmt.Errorf("%s: %w", op, err)
	}
	if len(body) > MaxBulkRequestBytes && len(ops) > 1 {
		return BulkResponse{}, fmt.Errorf("%s: %w (%d bytes)", op, ErrBulkRequestTooLarge, len(body))
	}
	h := http.Header{}
	h.Set(headerIsBatch, "true")
	h.Set(headerBatchAtomic, "false")
	h.Set(headerContinueOnError, "true")
	h.Set(headerRangeID, rangeID)
	resp, err := c.client.send(ctx, rawRequest{
		op: op, method: http.MethodPost, header: h, body: body,
		target: rawTarget{resourceType: resourceDocs, link: containerLink(c.db, c.id)},
		path:   containerPath(c.db, c.id, resourceDocs),
	})
	if err != nil {
		if statusOf(err) == http.StatusGone {
			c.invalidateRanges()
		}
		return BulkResponse{}, err
	}
	out, err := decodeBulk(resp, ops, c.String())
	if err != nil {
		return BulkResponse{}, fmt.Errorf("%s: %w", op, err)
	}
	for _, r := range out.Results {
		if r.Status == http.StatusGone {
			c.invalidateRanges()
			break
		}
	}
	return out, nil
}

// encodeBulk writes the request body: a JSON array with one object per
// operation, as azure-sdk-for-js writes it (src/bulk/BulkHelper.ts
// prepareOperation, src/utils/batch.ts): operationType; id for Replace,
// Delete and Read; partitionKey as the JSON text of the key's component
// array ("[\"a\"]", [{}] for an undefined component); resourceBody; ifMatch.
// checkBodies false trusts each body to be a JSON object.
func encodeBulk(ops []BulkOperation, checkBodies bool) ([]byte, error) {
	size := 2
	for _, o := range ops {
		size += len(o.Body) + len(o.ID) + len(o.IfMatch) + 96
	}
	b := bytes.NewBuffer(make([]byte, 0, size))
	b.WriteByte('[')
	for i, o := range ops {
		if err := checkBulkOperation(o, checkBodies); err != nil {
			return nil, fmt.Errorf("operation %d (%s): %w", i, o.Type, err)
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"operationType":`)
		writeJSONString(b, string(o.Type))
		if o.Type == BulkReplace || o.Type == BulkDelete || o.Type == BulkRead {
			b.WriteString(`,"id":`)
			writeJSONString(b, o.ID)
		}
		b.WriteString(`,"partitionKey":`)
		writeJSONString(b, o.Key.String())
		if o.Body != nil {
			b.WriteString(`,"resourceBody":`)
			b.Write(o.Body)
		}
		if o.IfMatch != "" {
			b.WriteString(`,"ifMatch":`)
			writeJSONString(b, o.IfMatch)
		}
		b.WriteByte('}')
	}
	b.WriteByte(']')
	return b.Bytes(), nil
}

// checkBulkOperation refuses an operation the service would answer 400 or
// that would break the whole request's JSON; checkBody false trusts the
// body to be a JSON object.
func checkBulkOperation(o BulkOperation, checkBody bool) error {
	switch o.Type {
	case BulkCreate, BulkUpsert:
	case BulkReplace:
		if o.ID == "" {
			return errors.New("no id")
		}
	case BulkDelete, BulkRead:
		if o.ID == "" {
			return errors.New("no id")
		}
		if o.Body != nil {
			return errors.New("a body on an operation that takes none")
		}
		return checkKey(o.Key)
	default:
		return fmt.Errorf("unknown operation type %q", o.Type)
	}
	if len(o.Body) == 0 {
		return errors.New("no body")
	}
	if checkBody && (!json.Valid(o.Body) || bytes.TrimLeft(o.Body, " \t\r\n")[0] != '{') {
		return errors.New("the body is not a JSON object")
	}
	return checkKey(o.Key)
}

func checkKey(k migrate.Key) error {
	if len(k) == 0 {
		return errors.New("no partition key")
	}
	return nil
}

// writeJSONString writes s as a JSON string, without escaping HTML.
func writeJSONString(b *bytes.Buffer, s string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)       // a string always encodes
	b.Truncate(b.Len() - 1) // Encode's newline
}

// bulkResultDoc is one operation's result as the service writes it
// (azure-sdk-for-js src/bulk/BulkResponse.ts; the .NET SDK's BatchResult
// schema in HybridRowBatchSchemas.json has the same names), as
// parseBulkResults (bulk_decode.go) reads it.
type bulkResultDoc struct {
	StatusCode             int             `json:"statusCode"`
	SubStatusCode          int             `json:"subStatusCode"`
	RequestCharge          float64         `json:"requestCharge"`
	RetryAfterMilliseconds float64         `json:"retryAfterMilliseconds"`
	ETag                   string          `json:"eTag"`
	ResourceBody           json.RawMessage `json:"resourceBody"`
	Message                string          `json:"message"`
}

// decodeBulk parses a 200 or 207 answer: one result per operation, in
// order. Any other count is an error, as the SDKs treat it.
func decodeBulk(resp *rawResponse, ops []BulkOperation, container string) (BulkResponse, error) {
	docs, err := parseBulkResults(resp.body)
	if err != nil {
		return BulkResponse{}, fmt.Errorf("the %d answer is not a list of operation results: %w", resp.status, err)
	}
	if len(docs) != len(ops) {
		return BulkResponse{}, fmt.Errorf("the %d answer has %d results for %d operations", resp.status, len(docs), len(ops))
	}
	out := BulkResponse{Status: resp.status, RU: resp.ru, ActivityID: resp.header.Get(headerActivityID), Results: make([]BulkResult, len(docs))}
	var sum float64
	for i, d := range docs {
		r := BulkResult{
			Status: d.StatusCode, SubStatus: d.SubStatusCode, RU: d.RequestCharge, ETag: d.ETag,
			RetryAfter: time.Duration(d.RetryAfterMilliseconds * float64(time.Millisecond)),
		}
		if len(d.ResourceBody) > 0 && !bytes.Equal(d.ResourceBody, []byte("null")) {
			r.Body = d.ResourceBody
		}
		if d.StatusCode < 200 || d.StatusCode >= 300 {
			msg := d.Message
			if msg == "" {
				msg = "the operation failed inside a bulk request"
			}
			e := statusError(bulkOpName(ops[i], i, container), d.StatusCode, d.SubStatusCode, out.ActivityID, msg)
			e.RetryAfter, e.RU = r.RetryAfter, r.RU
			r.Err = e
		}
		sum += r.RU
		out.Results[i] = r
	}
	if out.RU == 0 {
		out.RU = sum
	}
	return out, nil
}

// bulkOpName names an operation in its error: its type, the item's id
// (read from the body of a Create or Upsert) and its key.
func bulkOpName(o BulkOperation, i int, container string) string {
	id := o.ID
	if id == "" {
		var doc struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(o.Body, &doc) // only for the message
		id = doc.ID
	}
	return "bulk " + string(o.Type) + " of item " + strconv.Quote(id) + " with key " + o.Key.String() +
		" in " + container + " (operation " + strconv.Itoa(i) + ")"
}
