package emulator_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"

	"github.com/rekey-dev/rekey/internal/emulator"
)

type bulkResult struct {
	StatusCode    int             `json:"statusCode"`
	SubStatusCode int             `json:"subStatusCode"`
	RequestCharge float64         `json:"requestCharge"`
	ETag          string          `json:"eTag"`
	ResourceBody  json.RawMessage `json:"resourceBody"`
	RetryAfterMs  int64           `json:"retryAfterMilliseconds"`
}

// bulkHeaders are the headers the JavaScript SDK sends with a bulk request
// (testdata/bulk-request-js.golden.json).
func bulkHeaders(rangeID string) map[string]string {
	return map[string]string{
		"x-ms-cosmos-is-batch-request":        "true",
		"x-ms-cosmos-batch-atomic":            "false",
		"x-ms-cosmos-batch-continue-on-error": "true",
		"x-ms-documentdb-partitionkeyrangeid": rangeID,
		"Content-Type":                        "application/json",
	}
}

// createOps returns n create operations on keys pk0..pk{keys-1}.
func createOps(n, keys int, prefix string, pad int) []map[string]any {
	ops := make([]map[string]any, n)
	for i := range ops {
		pk := fmt.Sprintf("pk%d", i%keys)
		ops[i] = map[string]any{
			"operationType": "Create",
			"partitionKey":  fmt.Sprintf("[%q]", pk),
			"resourceBody":  map[string]any{"id": fmt.Sprintf("%s%d", prefix, i), "pk": pk, "pad": strings.Repeat("x", pad)},
		}
	}
	return ops
}

func sendBulk(t *testing.T, e *env, coll, rangeID string, ops any) (rawResponse, []bulkResult) {
	t.Helper()
	res := rawDo(t, e.srv, http.MethodPost, "/dbs/"+testDB+"/colls/"+coll+"/docs", bulkHeaders(rangeID), mustJSON(t, ops))
	var results []bulkResult
	if res.status == http.StatusOK || res.status == http.StatusMultiStatus {
		if err := json.Unmarshal(res.body, &results); err != nil {
			t.Fatalf("bulk response: %v: %s", err, truncate(res.body))
		}
	}
	return res, results
}

func statuses(results []bulkResult) map[int]int {
	out := map[int]int{}
	for _, r := range results {
		out[r.StatusCode]++
	}
	return out
}

// TestBulkMixedOperations: every operation type, each with its own key and
// its own result; 207 when one fails, nothing rolled back.
func TestBulkMixedOperations(t *testing.T) {
	e := newEnv(t)
	c := e.container(t, "c", 0)
	upsert(t, c, "b", doc{"id": "existing", "pk": "b", "n": 0})
	ops := []map[string]any{
		{"operationType": "Create", "partitionKey": `["a"]`, "resourceBody": doc{"id": "new", "pk": "a"}},
		{"operationType": "Create", "partitionKey": `["b"]`, "resourceBody": doc{"id": "existing", "pk": "b"}},
		{"operationType": "Upsert", "partitionKey": `["c"]`, "resourceBody": doc{"id": "up", "pk": "c"}},
		{"operationType": "Read", "id": "existing", "partitionKey": `["b"]`},
		{"operationType": "Replace", "id": "existing", "partitionKey": `["b"]`, "resourceBody": doc{"id": "existing", "pk": "b", "n": 1}},
		{"operationType": "Patch", "id": "existing", "partitionKey": `["b"]`, "resourceBody": doc{"operations": []doc{{"op": "incr", "path": "/n", "value": 1}}}},
		{"operationType": "Delete", "id": "nope", "partitionKey": `["d"]`},
		{"operationType": "Create", "partitionKey": `["e"]`, "resourceBody": doc{"id": "wrongkey", "pk": "f"}},
	}
	res, results := sendBulk(t, e, "c", "0", ops)
	if res.status != http.StatusMultiStatus {
		t.Fatalf("status %d, want 207: %s", res.status, res.body)
	}
	want := []int{201, 409, 201, 200, 200, 200, 404, 400}
	for i, r := range results {
		if r.StatusCode != want[i] {
			t.Errorf("operation %d: status %d, want %d", i, r.StatusCode, want[i])
		}
		if r.StatusCode < 300 && r.RequestCharge <= 0 {
			t.Errorf("operation %d: no request charge", i)
		}
	}
	if results[7].SubStatusCode != 1001 {
		t.Errorf("body key differing from the operation's key: substatus %d, want 1001", results[7].SubStatusCode)
	}
	if results[0].ETag == "" || len(results[0].ResourceBody) == 0 {
		t.Errorf("create result without eTag or resourceBody: %+v", results[0])
	}
	var patched doc
	if err := json.Unmarshal(results[5].ResourceBody, &patched); err != nil || patched["n"] != 2.0 {
		t.Errorf("patch result %s", results[5].ResourceBody)
	}
	if _, err := c.ReadItem(t.Context(), azcosmos.NewPartitionKeyString("a"), "new", nil); err != nil {
		t.Errorf("the create before the failing operations was not kept: %v", err)
	}
	if res, _ := sendBulk(t, e, "c", "0", ops[:1]); res.status != http.StatusMultiStatus {
		// the same create again: 409 alone is still a multi-status answer
		t.Errorf("all-failing bulk: status %d, want 207", res.status)
	}
}

// TestBulkLimits: over 100 operations is 400, over 2 MB is 413 (an item
// over 2 MB cannot fit a 2 MB request, so the SDKs send it alone and map the
// request's 413 to it), an unknown range is 404, a split range is 410 /
// 1002, and a key outside the named range is 410.
func TestBulkLimits(t *testing.T) {
	e := newEnv(t, func(o *emulator.ServerOptions) { o.Admin = true })
	e.container(t, "c", 12000)
	if res, _ := sendBulk(t, e, "c", "0", createOps(101, 1, "x", 0)); res.status != http.StatusBadRequest {
		t.Errorf("101 operations: status %d, want 400", res.status)
	}
	if res, _ := sendBulk(t, e, "c", "0", createOps(3, 1, "big", 800*1024)); res.status != http.StatusRequestEntityTooLarge {
		t.Errorf("2.4 MB request: status %d, want 413", res.status)
	}
	if res, _ := sendBulk(t, e, "c", "42", createOps(1, 1, "y", 0)); res.status != http.StatusNotFound {
		t.Errorf("unknown range: status %d, want 404", res.status)
	}
	other := "0"
	if rangeOf(t, e, "c", "pk0") == "0" {
		other = "1"
	}
	if res, _ := sendBulk(t, e, "c", other, createOps(1, 1, "z", 0)); res.status != http.StatusGone || res.header.Get("x-ms-substatus") != "1001" {
		t.Errorf("key outside the range: status %d substatus %q, want 410 / 1001", res.status, res.header.Get("x-ms-substatus"))
	}
	if err := e.srv.SplitRange(testDB, "c", "0"); err != nil {
		t.Fatal(err)
	}
	if res, _ := sendBulk(t, e, "c", "0", createOps(1, 1, "s", 0)); res.status != http.StatusGone || res.header.Get("x-ms-substatus") != "1002" {
		t.Errorf("split range: status %d substatus %q, want 410 / 1002", res.status, res.header.Get("x-ms-substatus"))
	}
}

// TestBulkThrottledMidRequest: when the range's RU budget runs out part-way
// through a bulk request, the operations after that point answer 429 / 3200
// with retryAfterMilliseconds while the earlier ones stand.
func TestBulkThrottledMidRequest(t *testing.T) {
	pe := newPhysicsEnv(t)
	pe.container(t, "c", 400)
	res, results := sendBulk(t, pe.env, "c", "0", createOps(100, 10, "t", 4000))
	if res.status != http.StatusMultiStatus {
		t.Fatalf("status %d, want 207: %s", res.status, truncate(res.body))
	}
	got := statuses(results)
	if got[201] == 0 || got[429] == 0 || got[201]+got[429] != 100 {
		t.Fatalf("statuses %v: want some 201 then only 429", got)
	}
	seen429 := false
	for i, r := range results {
		switch r.StatusCode {
		case 429:
			seen429 = true
			if r.SubStatusCode != 3200 || r.RetryAfterMs <= 0 {
				t.Errorf("operation %d: 429 with substatus %d retry-after %d ms", i, r.SubStatusCode, r.RetryAfterMs)
			}
		case 201:
			if seen429 {
				t.Errorf("operation %d succeeded after an earlier 429 with no time passing", i)
			}
		}
	}
	// The next request, with the budget still spent, is throttled whole.
	if res, _ := sendBulk(t, pe.env, "c", "0", createOps(1, 1, "u", 0)); res.status != http.StatusTooManyRequests {
		t.Errorf("request on a spent budget: status %d, want 429", res.status)
	}
	pe.clock.Advance(10 * time.Second)
	if res, results := sendBulk(t, pe.env, "c", "0", createOps(1, 1, "v", 0)); res.status != http.StatusOK || results[0].StatusCode != 201 {
		t.Errorf("after the budget refilled: status %d", res.status)
	}
}

// TestBulkOperationFaults: a fault with bulkOperationStatus fails single
// operations with each status a bulk client must handle, and nothing else.
func TestBulkOperationFaults(t *testing.T) {
	e := newEnv(t)
	e.container(t, "c", 0)
	for i, status := range []int{409, 413, 429, 410, 503} {
		id, err := e.srv.InjectFault(emulator.Fault{Container: "c", BulkOperationStatus: status, Count: 2, RetryAfter: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		res, results := sendBulk(t, e, "c", "0", createOps(5, 5, fmt.Sprintf("f%d-", i), 0))
		if res.status != http.StatusMultiStatus {
			t.Fatalf("fault %d: status %d, want 207", status, res.status)
		}
		got := statuses(results)
		if got[status] != 2 || got[201] != 3 {
			t.Errorf("fault %d: statuses %v, want 2 x %d and 3 x 201", status, got, status)
		}
		for _, r := range results {
			switch {
			case r.StatusCode == 429 && (r.RetryAfterMs != 50 || r.SubStatusCode != 3200):
				t.Errorf("injected 429: retry-after %d ms substatus %d", r.RetryAfterMs, r.SubStatusCode)
			case r.StatusCode == 410 && r.SubStatusCode != 1002:
				t.Errorf("injected 410: substatus %d, want 1002", r.SubStatusCode)
			}
		}
		if e.srv.RemoveFault(id) {
			t.Errorf("fault %d still active after firing its count", status)
		}
	}
	if _, err := e.srv.InjectFault(emulator.Fault{BulkOperationStatus: 429, Status: 503}); err == nil {
		t.Error("a fault with both status and bulkOperationStatus was accepted")
	}
	if _, err := e.srv.InjectFault(emulator.Fault{BulkOperationStatus: 302}); err == nil {
		t.Error("bulkOperationStatus 302 was accepted")
	}
}

// rangeOf returns the id of the range holding partition key value pk.
func rangeOf(t *testing.T, e *env, coll, pk string) string {
	t.Helper()
	for _, id := range []string{"0", "1", "2", "3"} {
		res, _ := sendBulk(t, e, coll, id, []map[string]any{{"operationType": "Read", "id": "none", "partitionKey": fmt.Sprintf("[%q]", pk)}})
		if res.status == http.StatusMultiStatus {
			return id
		}
	}
	t.Fatalf("no range holds %q", pk)
	return ""
}
