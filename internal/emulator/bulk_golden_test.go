package emulator_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rekey-dev/rekey/internal/emulator"
)

var updateGolden = flag.Bool("update", false, "rewrite golden files from what the JavaScript SDK sends")

// goldenRequest is a recorded request with its secrets and volatile values
// removed: what a bulk client must send to look like the JavaScript SDK.
type goldenRequest struct {
	Method  string            `json:"method"`
	Path    string            `json:"path"`
	Headers map[string]string `json:"headers"`
	Body    json.RawMessage   `json:"body"`
}

// volatileHeaders differ per request or per machine, or are secrets.
var volatileHeaders = map[string]bool{
	"authorization": true, "x-ms-date": true, "user-agent": true, "x-ms-useragent": true,
	"x-ms-activity-id": true, "x-ms-session-token": true, "traceparent": true,
	"content-length": true, "connection": true, "accept-encoding": true,
	"x-ms-client-request-id": true, "x-ms-cosmos-correlated-activityid": true,
}

const bulkGoldenFile = "testdata/bulk-request-js.golden.json"

// TestBulkRequestGoldenJS records the bulk request Microsoft's JavaScript
// SDK (@azure/cosmos, as pinned in scripts/conformance-js/package.json)
// sends, and compares it with testdata/bulk-request-js.golden.json, the
// shape rekey's own bulk client is pinned to. It runs where node and the
// SDK are installed (scripts/conformance-js.sh installs the SDK and runs
// this test); go test -run TestBulkRequestGoldenJS -update rewrites the file.
func TestBulkRequestGoldenJS(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed")
	}
	sdkDir, _ := filepath.Abs("../../scripts/conformance-js")
	if _, err := os.Stat(filepath.Join(sdkDir, "node_modules", "@azure", "cosmos")); err != nil {
		t.Skip("@azure/cosmos is not installed in scripts/conformance-js (scripts/conformance-js.sh installs it)")
	}
	emu, err := emulator.New(emulator.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var recorded []goldenRequest
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.EqualFold(r.Header.Get("x-ms-cosmos-is-batch-request"), "true") {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			mu.Lock()
			recorded = append(recorded, normalizeRequest(t, r, body))
			mu.Unlock()
		}
		emu.ServeHTTP(w, r)
	}))
	defer srv.Close()

	script, _ := filepath.Abs("testdata/capture-bulk.js")
	cmd := exec.Command(node, script, srv.URL+"/")
	cmd.Dir = sdkDir
	cmd.Env = append(os.Environ(), "NODE_TLS_REJECT_UNAUTHORIZED=0", "NODE_NO_WARNINGS=1", "NODE_PATH="+filepath.Join(sdkDir, "node_modules"))
	done := make(chan struct{})
	var out []byte
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("capture-bulk.js did not finish in 60s: %s", out)
	}
	if err != nil {
		t.Fatalf("capture-bulk.js: %v: %s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "[201,201,200,200,200,404]" {
		t.Errorf("per-operation statuses the SDK saw: %s, want [201,201,200,200,200,404]", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(recorded) != 1 {
		t.Fatalf("recorded %d bulk requests, want 1", len(recorded))
	}
	got, _ := json.MarshalIndent(recorded[0], "", "  ")
	got = append(got, '\n')
	if *updateGolden {
		if err := os.WriteFile(bulkGoldenFile, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(bulkGoldenFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("the JavaScript SDK's bulk request differs from %s (rerun with -update if the SDK changed on purpose):\n got %s\nwant %s", bulkGoldenFile, got, want)
	}
}

// normalizeRequest keeps the request's method, path, stable headers
// (lower-cased names) and body.
func normalizeRequest(t *testing.T, r *http.Request, body []byte) goldenRequest {
	h := map[string]string{}
	names := make([]string, 0, len(r.Header))
	for name := range r.Header {
		names = append(names, strings.ToLower(name))
	}
	sort.Strings(names)
	for _, name := range names {
		if !volatileHeaders[name] {
			h[name] = r.Header.Get(name)
		}
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, body); err != nil {
		t.Fatalf("bulk body is not JSON: %v", err)
	}
	return goldenRequest{Method: r.Method, Path: r.URL.Path, Headers: h, Body: compact.Bytes()}
}

// TestBulkGoldenReplay sends the golden request, signed, to the emulator:
// it must be served with one result per operation whatever machine runs the
// test, node or not.
func TestBulkGoldenReplay(t *testing.T) {
	raw, err := os.ReadFile(bulkGoldenFile)
	if err != nil {
		t.Fatal(err)
	}
	var g goldenRequest
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	c := e.container(t, "bulk", 0)
	upsert(t, c, "b", doc{"id": "existing", "pk": "b", "n": 0})
	headers := map[string]string{}
	for k, v := range g.Headers {
		headers[k] = v
	}
	res := rawDo(t, e.srv, g.Method, strings.Replace(g.Path, "/dbs/golden/", "/dbs/"+testDB+"/", 1), headers, g.Body)
	if res.status != http.StatusMultiStatus {
		t.Fatalf("golden bulk request: status %d, want 207: %s", res.status, res.body)
	}
	var results []struct {
		StatusCode int `json:"statusCode"`
	}
	if err := json.Unmarshal(res.body, &results); err != nil {
		t.Fatal(err)
	}
	var codes []int
	for _, r := range results {
		codes = append(codes, r.StatusCode)
	}
	if want := []int{201, 201, 200, 200, 200, 404}; !equalInts(codes, want) {
		t.Errorf("per-operation statuses %v, want %v", codes, want)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
