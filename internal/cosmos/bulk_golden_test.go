package cosmos

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/rekey-dev/rekey/internal/emulator/emulatortest"
	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/transform"
)

// jsBulkGolden is the bulk request Microsoft's JavaScript SDK sends,
// recorded by the emulator's TestBulkRequestGoldenJS.
const jsBulkGolden = "../emulator/testdata/bulk-request-js.golden.json"

// Headers of the golden request and how rekey's request relates to each.
var (
	// bulkHeadersSame must be sent with the JavaScript SDK's values.
	bulkHeadersSame = []string{
		"content-type", "x-ms-cosmos-is-batch-request", "x-ms-cosmos-batch-atomic",
		"x-ms-cosmos-batch-continue-on-error", "x-ms-documentdb-partitionkeyrangeid",
		"x-ms-cosmos-sdk-supportedcapabilities",
	}
	// bulkHeadersOwn are sent with azcosmos's value instead, as every
	// request of this package is.
	bulkHeadersOwn = map[string]string{
		"x-ms-version": "azcosmos v1.5.0's API version (2020-11-05); the JavaScript SDK's is 2020-07-15",
	}
	// bulkHeadersJSOnly are JavaScript SDK defaults that have nothing to do
	// with bulk and that azcosmos does not send either.
	bulkHeadersJSOnly = map[string]string{
		"accept":                             "generic",
		"cache-control":                      "generic",
		"x-ms-cosmos-allow-tentative-writes": "multi-region writes, set on every request",
		"x-ms-documentdb-query-enablecrosspartition":         "a query option the JavaScript SDK sets on every request",
		"x-ms-documentdb-responsecontinuationtokenlimitinkb": "a query option the JavaScript SDK sets on every request",
	}
	// bulkHeadersRekeyOnly are sent by rekey and left out of the golden
	// file because they vary or are secret.
	bulkHeadersRekeyOnly = map[string]bool{
		"authorization": true, "x-ms-date": true, "x-ms-activity-id": true, "user-agent": true,
		"content-length": true, "accept-encoding": true, "x-ms-cosmos-priority-level": true,
	}
)

type goldenRequest struct {
	Method  string            `json:"method"`
	Path    string            `json:"path"`
	Headers map[string]string `json:"headers"`
	Body    []json.RawMessage `json:"body"`
}

// bodyRecorder records the first bulk request that passes through it.
type bodyRecorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	req  *http.Request
	body []byte
}

func (r *bodyRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Header.Get(headerIsBatch) != "" && req.Body != nil {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		r.mu.Lock()
		if r.req == nil {
			r.req, r.body = req.Clone(req.Context()), body
		}
		r.mu.Unlock()
	}
	return r.next.RoundTrip(req)
}

// TestBulkRequestMatchesTheJavaScriptSDK builds rekey's bulk request for
// the operations of the JavaScript SDK's recorded one (all but Patch, which
// rekey does not send) and requires the same method, path, bulk headers and
// body, field by field.
func TestBulkRequestMatchesTheJavaScriptSDK(t *testing.T) {
	raw, err := os.ReadFile(jsBulkGolden)
	if err != nil {
		t.Fatalf("the JavaScript SDK's recorded bulk request: %v", err)
	}
	var golden goldenRequest
	if err := json.Unmarshal(raw, &golden); err != nil {
		t.Fatal(err)
	}
	var ops []BulkOperation
	var want []any
	for _, b := range golden.Body {
		var g struct {
			Type         string          `json:"operationType"`
			ID           string          `json:"id"`
			PartitionKey string          `json:"partitionKey"`
			ResourceBody json.RawMessage `json:"resourceBody"`
			IfMatch      string          `json:"ifMatch"`
		}
		if err := json.Unmarshal(b, &g); err != nil {
			t.Fatal(err)
		}
		if g.Type == "Patch" {
			continue
		}
		var parts []string
		if err := json.Unmarshal([]byte(g.PartitionKey), &parts); err != nil {
			t.Fatalf("golden partitionKey %q: %v", g.PartitionKey, err)
		}
		k := make(migrate.Key, len(parts))
		for i, p := range parts {
			k[i] = transform.StringValue(p)
		}
		ops = append(ops, BulkOperation{Type: BulkOperationType(g.Type), ID: g.ID, Key: k, Body: g.ResourceBody, IfMatch: g.IfMatch})
		var v any
		_ = json.Unmarshal(b, &v)
		want = append(want, v)
	}
	if len(ops) < 5 {
		t.Fatalf("the golden request has %d operations rekey sends, want the five types", len(ops))
	}

	srv := emulatortest.Start(t)
	rec := &bodyRecorder{next: emulatortest.HTTPClient(t, srv).Transport}
	client := newTestClient(t, srv, func(cfg *Config) { cfg.HTTPClient = &http.Client{Transport: rec} })
	if err := client.CreateContainer(tctx(t), "golden", "bulk", migrate.Definition{Paths: []string{"/pk"}}, 400, 0); err != nil {
		t.Fatal(err)
	}
	rangeID := golden.Headers["x-ms-documentdb-partitionkeyrangeid"]
	if _, err := client.Container("golden", "bulk").ExecuteBulk(tctx(t), rangeID, ops); err != nil {
		t.Fatalf("execute the golden operations: %v", err)
	}
	if rec.req == nil {
		t.Fatal("no bulk request recorded")
	}

	if rec.req.Method != golden.Method || rec.req.URL.Path != golden.Path {
		t.Errorf("request %s %s, JavaScript SDK %s %s", rec.req.Method, rec.req.URL.Path, golden.Method, golden.Path)
	}
	for _, h := range bulkHeadersSame {
		if got := rec.req.Header.Get(h); got != golden.Headers[h] {
			t.Errorf("header %s: %q, JavaScript SDK %q", h, got, golden.Headers[h])
		}
	}
	for h, v := range golden.Headers {
		_, own := bulkHeadersOwn[h]
		_, jsOnly := bulkHeadersJSOnly[h]
		switch {
		case jsOnly && rec.req.Header.Get(h) != "":
			t.Errorf("header %s is sent (%q) but listed as the JavaScript SDK's only", h, rec.req.Header.Get(h))
		case own && rec.req.Header.Get(h) == "":
			t.Errorf("header %s is not sent", h)
		case !own && !jsOnly && !contains(bulkHeadersSame, h):
			t.Errorf("the JavaScript SDK sends header %s: %q, which this test does not account for", h, v)
		}
	}
	for h := range rec.req.Header {
		lh := strings.ToLower(h)
		if _, inGolden := golden.Headers[lh]; !inGolden && !bulkHeadersRekeyOnly[lh] {
			t.Errorf("rekey sends header %s, which the JavaScript SDK does not", h)
		}
	}

	var got []any
	if err := json.Unmarshal(rec.body, &got); err != nil {
		t.Fatalf("rekey's body %s: %v", rec.body, err)
	}
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", "  ")
		w, _ := json.MarshalIndent(want, "", "  ")
		t.Errorf("body differs from the JavaScript SDK's:\nrekey: %s\njs:    %s", g, w)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
