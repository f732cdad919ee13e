package cosmos

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/rekey-dev/rekey/internal/emulator"
	"github.com/rekey-dev/rekey/migrate"
)

// bulkCreates returns n Create operations for items id0..id{n-1} of
// prefix, on keys k0..k{keys-1}.
func bulkCreates(t testing.TB, prefix string, n, keys int) []BulkOperation {
	ops := make([]BulkOperation, n)
	for i := range ops {
		pk := fmt.Sprintf("k%d", i%keys)
		ops[i] = BulkOperation{Type: BulkCreate, Key: key(pk), Body: itemBody(t, fmt.Sprintf("%s%d", prefix, i), pk, i)}
	}
	return ops
}

// byRange groups ops by the range of their key, as a bulk writer does.
func byRange(t testing.TB, c *Container, ops []BulkOperation) map[string][]BulkOperation {
	t.Helper()
	out := map[string][]BulkOperation{}
	for _, o := range ops {
		r, err := c.RangeOfKey(tctx(t), o.Key)
		if err != nil {
			t.Fatal(err)
		}
		out[r.ID] = append(out[r.ID], o)
	}
	return out
}

// mustBulk runs ops of one range or fails the test.
func mustBulk(t testing.TB, c *Container, rangeID string, ops []BulkOperation) BulkResponse {
	t.Helper()
	resp, err := c.ExecuteBulk(tctx(t), rangeID, ops)
	if err != nil {
		t.Fatalf("bulk to range %s: %v", rangeID, err)
	}
	if len(resp.Results) != len(ops) {
		t.Fatalf("%d results for %d operations", len(resp.Results), len(ops))
	}
	return resp
}

// TestBulkCreatesAcrossRanges: 300 creates over 60 keys, grouped by range
// into requests of at most 100, all answer 201 with an ETag and a charge,
// and the items are there.
func TestBulkCreatesAcrossRanges(t *testing.T) {
	e := newEnv(t)
	c := e.container(t, "c", 24000)
	groups := byRange(t, c, bulkCreates(t, "n", 300, 60))
	if len(groups) < 2 {
		t.Fatalf("the keys landed in %d range(s), want several", len(groups))
	}
	for id, ops := range groups {
		for len(ops) > 0 {
			n := min(len(ops), MaxBulkOperations)
			resp := mustBulk(t, c, id, ops[:n])
			if resp.Status != http.StatusOK || resp.RU <= 0 || resp.ActivityID == "" {
				t.Errorf("range %s: status %d, RU %v, activity %q", id, resp.Status, resp.RU, resp.ActivityID)
			}
			for i, r := range resp.Results {
				if r.Status != http.StatusCreated || r.Err != nil || r.ETag == "" || r.RU <= 0 || r.Resend() {
					t.Fatalf("range %s op %d: %+v", id, i, r)
				}
			}
			ops = ops[n:]
		}
	}
	n, err := c.ItemCount(tctx(t))
	if err != nil || n != 300 {
		t.Fatalf("item count %d, %v; want 300", n, err)
	}
}

// TestBulkMixedOperationsAnswer207 runs every operation type in one
// request, with failures, and checks each result's status and class.
func TestBulkMixedOperationsAnswer207(t *testing.T) {
	e := newEnv(t)
	c := e.container(t, "c", 6000)
	existing := mustCreate(t, c, key("p"), itemBody(t, "existing", "p", 1))
	mustCreate(t, c, key("p"), itemBody(t, "doomed", "p", 1))
	ops := []BulkOperation{
		{Type: BulkCreate, Key: key("p"), Body: itemBody(t, "new", "p", 1)},
		{Type: BulkCreate, Key: key("p"), Body: itemBody(t, "existing", "p", 2)},                                      // 409
		{Type: BulkUpsert, Key: key("p"), Body: itemBody(t, "upserted", "p", 1)},                                      // 201
		{Type: BulkReplace, Key: key("p"), ID: "existing", Body: itemBody(t, "existing", "p", 3), IfMatch: `"stale"`}, // 412
		{Type: BulkReplace, Key: key("p"), ID: "existing", Body: itemBody(t, "existing", "p", 4), IfMatch: existing.ETag},
		{Type: BulkRead, Key: key("p"), ID: "existing"},
		{Type: BulkRead, Key: key("p"), ID: "missing"}, // 404
		{Type: BulkDelete, Key: key("p"), ID: "doomed"},
		{Type: BulkDelete, Key: key("p"), ID: "missing"}, // 404
	}
	r, err := c.RangeOfKey(tctx(t), key("p"))
	if err != nil {
		t.Fatal(err)
	}
	resp := mustBulk(t, c, r.ID, ops)
	if resp.Status != http.StatusMultiStatus {
		t.Errorf("status %d, want 207", resp.Status)
	}
	want := []struct {
		status int
		class  error
	}{
		{201, nil}, {409, migrate.ErrConflict}, {201, nil}, {412, migrate.ErrPreconditionFailed}, {200, nil},
		{200, nil}, {404, migrate.ErrNotFound}, {204, nil}, {404, migrate.ErrNotFound},
	}
	var sum float64
	for i, w := range want {
		res := resp.Results[i]
		sum += res.RU
		if res.Status != w.status || (w.class == nil) != (res.Err == nil) || (w.class != nil && !errors.Is(res.Err, w.class)) || res.Resend() {
			t.Errorf("op %d (%s %s): status %d, err %v; want %d %v", i, ops[i].Type, ops[i].ID, res.Status, res.Err, w.status, w.class)
		}
		var re *migrate.RequestError
		if res.Err != nil && (!errors.As(res.Err, &re) || re.ActivityID != resp.ActivityID || !strings.Contains(re.Op, "bulk")) {
			t.Errorf("op %d: error %#v is not a RequestError naming the bulk operation", i, res.Err)
		}
	}
	if resp.RU < sum || sum <= 0 {
		t.Errorf("request charge %v, operations' sum %v", resp.RU, sum)
	}
	read := resp.Results[5]
	if f := fields(t, read.Body); f["v"] != float64(4) || read.ETag == "" {
		t.Errorf("read after replace: body %s, ETag %q", read.Body, read.ETag)
	}
	if got, err := c.Read(tctx(t), key("p"), "doomed"); !errors.Is(err, migrate.ErrNotFound) {
		t.Errorf("deleted item read: %v, %v", got, err)
	}
}

// TestBulkPerOperationFailures injects one failing operation per status
// into a request of ten and checks its class and whether to resend it; the
// other nine are written.
func TestBulkPerOperationFailures(t *testing.T) {
	e := newEnv(t)
	c := e.container(t, "c", 6000)
	for i, tt := range []struct {
		status int
		class  error
		resend bool
	}{
		{http.StatusTooManyRequests, migrate.ErrThrottled, true},
		{http.StatusGone, migrate.ErrGone, true},
		{http.StatusRequestEntityTooLarge, migrate.ErrTooLarge, false},
		{http.StatusConflict, migrate.ErrConflict, false},
		{http.StatusBadRequest, migrate.ErrBadRequest, false},
		{http.StatusServiceUnavailable, migrate.ErrTransient, true},
	} {
		inject(t, e.srv, emulator.Fault{Container: "c", BulkOperationStatus: tt.status, Count: 1, RetryAfter: 40 * time.Millisecond})
		ops := bulkCreates(t, fmt.Sprintf("s%d-", i), 10, 3)
		resp := mustBulk(t, c, "0", ops)
		var failed []BulkResult
		for _, r := range resp.Results {
			if r.Err != nil {
				failed = append(failed, r)
			} else if r.Status != http.StatusCreated {
				t.Errorf("%d: a served operation answered %d", tt.status, r.Status)
			}
		}
		e.srv.ClearFaults()
		if resp.Status != http.StatusMultiStatus || len(failed) != 1 {
			t.Fatalf("%d: status %d with %d failed operations, want 207 with 1", tt.status, resp.Status, len(failed))
		}
		f := failed[0]
		if f.Status != tt.status || !errors.Is(f.Err, tt.class) || f.Resend() != tt.resend {
			t.Errorf("%d: result %+v (resend %t), want class %v, resend %t", tt.status, f, f.Resend(), tt.class, tt.resend)
		}
		if tt.status == http.StatusTooManyRequests {
			var re *migrate.RequestError
			if f.RetryAfter != 40*time.Millisecond || !errors.As(f.Err, &re) || re.RetryAfter != f.RetryAfter || f.SubStatus != 3200 {
				t.Errorf("429: retry after %v, substatus %d, error %#v", f.RetryAfter, f.SubStatus, f.Err)
			}
		}
	}
}

func TestBulkResendsAResponseTooLarge(t *testing.T) {
	r := BulkResult{Status: 413, SubStatus: SubStatusResponseTooLarge, Err: statusError("op", 413, SubStatusResponseTooLarge, "", "")}
	if !r.Resend() {
		t.Error("413/3402 (response too large) is not resent")
	}
	r.SubStatus = 0
	if r.Resend() {
		t.Error("413 (item too large) is resent")
	}
}

// TestBulkWholeRequestFailures: a throttled or too large request fails as
// a whole, classified, and nothing is written.
func TestBulkWholeRequestFailures(t *testing.T) {
	e := newEnv(t)
	c := e.container(t, "c", 6000)

	inject(t, e.srv, emulator.Fault{Status: http.StatusTooManyRequests, Count: 1, RetryAfter: 70 * time.Millisecond, Operations: []string{"bulk"}})
	_, err := c.ExecuteBulk(tctx(t), "0", bulkCreates(t, "t", 5, 2))
	var re *migrate.RequestError
	if !errors.Is(err, migrate.ErrThrottled) || !errors.As(err, &re) || re.RetryAfter != 70*time.Millisecond {
		t.Fatalf("throttled request: %v, want ErrThrottled after 70ms", err)
	}

	big := strings.Repeat("x", MaxBulkRequestBytes)
	one := []BulkOperation{{Type: BulkCreate, Key: key("p"), Body: doc(t, map[string]any{"id": "big", "pk": "p", "pad": big})}}
	if _, err := c.ExecuteBulk(tctx(t), "0", one); !errors.Is(err, migrate.ErrTooLarge) {
		t.Errorf("one operation over 2 MB: %v, want the service's ErrTooLarge", err)
	}
	half := strings.Repeat("y", MaxBulkRequestBytes/2)
	two := []BulkOperation{
		{Type: BulkCreate, Key: key("p"), Body: doc(t, map[string]any{"id": "a", "pk": "p", "pad": half})},
		{Type: BulkCreate, Key: key("p"), Body: doc(t, map[string]any{"id": "b", "pk": "p", "pad": half})},
	}
	_, err = c.ExecuteBulk(tctx(t), "0", two)
	if !errors.Is(err, ErrBulkRequestTooLarge) || errors.As(err, &re) {
		t.Errorf("two operations over 2 MB together: %v, want ErrBulkRequestTooLarge before sending", err)
	}
	if n, err := c.ItemCount(tctx(t)); err != nil || n != 0 {
		t.Errorf("%d items written, %v", n, err)
	}
}

// TestBulkThroughASplit sends a sequence of bulk requests by the known
// ranges, splits a range in the middle, and follows the 410: the known
// ranges are re-read, the operations re-grouped and resent, and every item
// is written once.
func TestBulkThroughASplit(t *testing.T) {
	e := newEnv(t)
	c := e.container(t, "c", 6000)
	ops := bulkCreates(t, "x", 200, 40)
	mustBulk(t, c, "0", ops[:100])
	if err := e.srv.SplitRange(testDB, "c", "0"); err != nil {
		t.Fatal(err)
	}
	_, err := c.ExecuteBulk(tctx(t), "0", ops[100:])
	var re *migrate.RequestError
	if !errors.Is(err, migrate.ErrGone) || !errors.As(err, &re) || re.SubStatus != 1002 {
		t.Fatalf("bulk to the split range: %v, want 410/1002", err)
	}
	groups := byRange(t, c, ops[100:])
	if len(groups) != 2 || groups["0"] != nil {
		t.Fatalf("after the 410 the operations go to ranges %v, want the two children", keysOf(groups))
	}
	for id, g := range groups {
		for _, r := range mustBulk(t, c, id, g).Results {
			if r.Status != http.StatusCreated {
				t.Errorf("range %s: %d %v", id, r.Status, r.Err)
			}
		}
	}
	if n, err := c.ItemCount(tctx(t)); err != nil || n != 200 {
		t.Errorf("%d items, %v; want 200", n, err)
	}
}

// TestBulkOperationOn410MarksTheRangesStale: an operation answering 410
// alone makes the known ranges stale, so its key is looked up again.
func TestBulkOperationOn410MarksTheRangesStale(t *testing.T) {
	e := newEnv(t)
	c := e.container(t, "c", 6000)
	r, err := c.RangeOfKey(tctx(t), key("k0"))
	if err != nil {
		t.Fatal(err)
	}
	inject(t, e.srv, emulator.Fault{Container: "c", BulkOperationStatus: http.StatusGone, Count: 1})
	resp := mustBulk(t, c, r.ID, bulkCreates(t, "g", 1, 1))
	if got := resp.Results[0]; got.Status != http.StatusGone || got.SubStatus != 1002 || !got.Resend() {
		t.Fatalf("injected per-operation 410: %+v", got)
	}
	if rr := c.client.routing.entry(c.String()); !rr.stale {
		t.Error("a per-operation 410 left the known ranges fresh")
	}
}

func TestBulkRefusesInvalidOperations(t *testing.T) {
	e := newEnv(t)
	c := e.container(t, "c", 6000)
	body := itemBody(t, "1", "p", 1)
	for name, op := range map[string]BulkOperation{
		"unknown type":        {Type: "Patch", Key: key("p"), ID: "1", Body: body},
		"create without body": {Type: BulkCreate, Key: key("p")},
		"body not JSON":       {Type: BulkUpsert, Key: key("p"), Body: []byte(`{"id":`)},
		"body not an object":  {Type: BulkCreate, Key: key("p"), Body: []byte(`[1]`)},
		"replace without id":  {Type: BulkReplace, Key: key("p"), Body: body},
		"delete without id":   {Type: BulkDelete, Key: key("p")},
		"read with a body":    {Type: BulkRead, Key: key("p"), ID: "1", Body: body},
		"no key":              {Type: BulkCreate, Body: body},
	} {
		if _, err := c.ExecuteBulk(tctx(t), "0", []BulkOperation{op}); err == nil || !strings.Contains(err.Error(), "operation 0") {
			t.Errorf("%s: %v, want an error naming the operation", name, err)
		}
	}
	if _, err := c.ExecuteBulk(tctx(t), "0", bulkCreates(t, "m", MaxBulkOperations+1, 1)); err == nil {
		t.Error("101 operations were sent")
	}
	if resp, err := c.ExecuteBulk(tctx(t), "0", nil); err != nil || resp.Status != http.StatusOK {
		t.Errorf("no operations: %+v, %v", resp, err)
	}
}

// TestBulkWithAnEntraToken: the bulk request goes out with the Entra ID
// token. The emulator accepts master keys only and refuses it.
func TestBulkWithAnEntraToken(t *testing.T) {
	e := newEnv(t)
	e.container(t, "c", 400)
	cred := &tokenRecorder{next: func() (azcore.AccessToken, error) {
		return azcore.AccessToken{Token: "bulk-token", ExpiresOn: time.Now().Add(time.Hour)}, nil
	}}
	client, rec := recordingClient(t, e.srv, nil, func(cfg *Config) {
		cfg.AccountKey = ""
		cfg.Credential = cred
	})
	_, err := client.Container(testDB, "c").ExecuteBulk(tctx(t), "0", bulkCreates(t, "e", 2, 1))
	if !errors.Is(err, migrate.ErrUnauthorized) {
		t.Fatalf("bulk with an Entra token: %v, want the emulator's 401", err)
	}
	h, ok := rec.last("POST /dbs/db/colls/c/docs")
	if !ok || h.Get("Authorization") != "type=aad&ver=1.0&sig=bulk-token" || h.Get(headerIsBatch) != "true" {
		t.Errorf("bulk request headers %v", h)
	}
}

func keysOf(m map[string][]BulkOperation) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestDecodeBulkResponse parses the result shape the SDKs read
// (azure-sdk-for-js src/bulk/BulkResponse.ts; the .NET SDK's BatchResult
// schema): per operation statusCode, subStatusCode, requestCharge,
// retryAfterMilliseconds, eTag, resourceBody.
func TestDecodeBulkResponse(t *testing.T) {
	ops := []BulkOperation{
		{Type: BulkCreate, Key: key("a"), Body: []byte(`{"id":"1","pk":"a"}`)},
		{Type: BulkCreate, Key: key("a"), Body: []byte(`{"id":"2","pk":"a"}`)},
		{Type: BulkDelete, Key: key("a"), ID: "3"},
	}
	body := `[
	 {"statusCode":201,"requestCharge":6.29,"eTag":"\"e1\"","resourceBody":{"id":"1","pk":"a","_etag":"\"e1\""}},
	 {"statusCode":429,"subStatusCode":3200,"requestCharge":0,"retryAfterMilliseconds":125.5},
	 {"statusCode":404,"requestCharge":1.24,"message":"Entity with the specified id does not exist in the system."}]`
	h := http.Header{}
	h.Set("x-ms-activity-id", "act")
	h.Set("x-ms-request-charge", "7.53")
	resp, err := decodeBulk(&rawResponse{status: 207, header: h, body: []byte(body), ru: 7.53}, ops, "db/c")
	if err != nil {
		t.Fatal(err)
	}
	r := resp.Results
	if resp.Status != 207 || resp.RU != 7.53 || resp.ActivityID != "act" || len(r) != 3 {
		t.Fatalf("response %+v", resp)
	}
	if r[0].Status != 201 || r[0].ETag != `"e1"` || r[0].RU != 6.29 || fields(t, r[0].Body)["id"] != "1" || r[0].Err != nil {
		t.Errorf("created: %+v", r[0])
	}
	var re *migrate.RequestError
	if r[1].RetryAfter != 125500*time.Microsecond || !errors.As(r[1].Err, &re) || re.RetryAfter != r[1].RetryAfter || re.SubStatus != 3200 || !r[1].Resend() {
		t.Errorf("throttled: %+v", r[1])
	}
	if !errors.Is(r[2].Err, migrate.ErrNotFound) || !strings.Contains(r[2].Err.Error(), `item "3"`) || !strings.Contains(r[2].Err.Error(), "does not exist") {
		t.Errorf("not found: %v", r[2].Err)
	}
	if _, err := decodeBulk(&rawResponse{status: 200, header: h, body: []byte(`[{"statusCode":201}]`)}, ops, "db/c"); err == nil {
		t.Error("one result for three operations was accepted")
	}
	if _, err := decodeBulk(&rawResponse{status: 200, header: h, body: []byte(`{"code":"x"}`)}, ops, "db/c"); err == nil {
		t.Error("a non-array answer was accepted")
	}
}
