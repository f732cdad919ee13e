package emulator_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"

	"github.com/rekey-dev/rekey/internal/emulator"
	"github.com/rekey-dev/rekey/internal/emulator/emulatortest"
)

// testDB is the database every env creates.
const testDB = "db"

// env is one emulator with a client and a database.
type env struct {
	srv    *emulator.Server
	client *azcosmos.Client
	db     *azcosmos.DatabaseClient
}

func newEnv(t testing.TB, opts ...emulatortest.Option) *env {
	t.Helper()
	srv := emulatortest.Start(t, opts...)
	client := newClient(t, srv, nil)
	if _, err := client.CreateDatabase(context.Background(), azcosmos.DatabaseProperties{ID: testDB}, nil); err != nil {
		t.Fatalf("create database: %v", err)
	}
	db, err := client.NewDatabase(testDB)
	if err != nil {
		t.Fatal(err)
	}
	return &env{srv: srv, client: client, db: db}
}

// newClient returns an azcosmos client of srv; o, when set, adjusts the
// client options after the transport is set.
func newClient(t testing.TB, srv *emulator.Server, o func(*azcosmos.ClientOptions)) *azcosmos.Client {
	t.Helper()
	cred, err := azcosmos.NewKeyCredential(srv.Key())
	if err != nil {
		t.Fatal(err)
	}
	opts := &azcosmos.ClientOptions{ClientOptions: clientOptions(t, srv)}
	if o != nil {
		o(opts)
	}
	client, err := azcosmos.NewClientWithKey(srv.Endpoint(), cred, opts)
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	return client
}

// clientOptions makes the SDK trust srv's certificate and close its
// connections when the test ends.
func clientOptions(t testing.TB, srv *emulator.Server) azcore.ClientOptions {
	return azcore.ClientOptions{Transport: emulatortest.HTTPClient(t, srv)}
}

// container creates a container keyed by paths ("/pk" when none) with the
// given manual throughput (the emulator's default when 0).
func (e *env) container(t testing.TB, id string, ru int32, paths ...string) *azcosmos.ContainerClient {
	t.Helper()
	if len(paths) == 0 {
		paths = []string{"/pk"}
	}
	def := azcosmos.PartitionKeyDefinition{Paths: paths, Version: 2}
	if len(paths) > 1 {
		def.Kind = azcosmos.PartitionKeyKindMultiHash
	}
	var tp *azcosmos.CreateContainerOptions
	if ru > 0 {
		p := azcosmos.NewManualThroughputProperties(ru)
		tp = &azcosmos.CreateContainerOptions{ThroughputProperties: &p}
	}
	if _, err := e.db.CreateContainer(context.Background(), azcosmos.ContainerProperties{ID: id, PartitionKeyDefinition: def}, tp); err != nil {
		t.Fatalf("create container %s: %v", id, err)
	}
	c, err := e.db.NewContainer(id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// doc is an item as the tests write and read it.
type doc map[string]any

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decodeDoc(t testing.TB, b []byte) doc {
	t.Helper()
	var d doc
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("decode %q: %v", truncate(b), err)
	}
	return d
}

func truncate(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "..."
	}
	return string(b)
}

// upsert writes d under the string key pk.
func upsert(t testing.TB, c *azcosmos.ContainerClient, pk string, d doc) azcosmos.ItemResponse {
	t.Helper()
	resp, err := c.UpsertItem(context.Background(), azcosmos.NewPartitionKeyString(pk), mustJSON(t, d), nil)
	if err != nil {
		t.Fatalf("upsert %v: %v", d["id"], err)
	}
	return resp
}

// responseError returns err's *azcore.ResponseError, failing the test when
// err is not one.
func responseError(t testing.TB, err error) *azcore.ResponseError {
	t.Helper()
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		t.Fatalf("want a response error, got %v", err)
	}
	return re
}

// wantStatus checks that err is a response error with status, and that its
// body is the service's {"code","message"}; it returns the body.
func wantStatus(t testing.TB, err error, status int) errorBody {
	t.Helper()
	if err == nil {
		t.Fatalf("want status %d, got success", status)
	}
	re := responseError(t, err)
	if re.StatusCode != status {
		t.Fatalf("want status %d, got %d: %v", status, re.StatusCode, err)
	}
	raw, perr := runtime.Payload(re.RawResponse)
	if perr != nil {
		t.Fatalf("read error body: %v", perr)
	}
	return checkErrorBody(t, status, raw)
}

// errorBody is the service's error document.
type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// checkErrorBody decodes an error body and checks its code matches status.
func checkErrorBody(t testing.TB, status int, raw []byte) errorBody {
	t.Helper()
	var eb errorBody
	if err := json.Unmarshal(raw, &eb); err != nil {
		t.Fatalf("status %d: error body %q is not JSON: %v", status, truncate(raw), err)
	}
	if eb.Code == "" || eb.Message == "" {
		t.Fatalf("status %d: error body %q lacks code or message", status, truncate(raw))
	}
	if want := statusCodes[status]; want != "" && eb.Code != want {
		t.Fatalf("status %d: body code %q, want %q", status, eb.Code, want)
	}
	return eb
}

// statusCodes are the body codes the service sends with each error status.
var statusCodes = map[int]string{
	400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
	405: "MethodNotAllowed", 408: "RequestTimeout", 409: "Conflict", 410: "Gone",
	412: "PreconditionFailed", 413: "RequestEntityTooLarge", 429: "TooManyRequests",
	449: "RetryWith", 500: "InternalServerError", 503: "ServiceUnavailable",
}

// queryAll drains a query, returning every item of every page.
func queryAll(t testing.TB, c *azcosmos.ContainerClient, q string, pk azcosmos.PartitionKey, o *azcosmos.QueryOptions) [][]byte {
	t.Helper()
	items, err := tryQueryAll(context.Background(), c, q, pk, o)
	if err != nil {
		t.Fatalf("query %q: %v", q, err)
	}
	return items
}

func tryQueryAll(ctx context.Context, c *azcosmos.ContainerClient, q string, pk azcosmos.PartitionKey, o *azcosmos.QueryOptions) ([][]byte, error) {
	var items [][]byte
	pager := c.NewQueryItemsPager(q, pk, o)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return items, err
		}
		items = append(items, page.Items...)
	}
	return items, nil
}

// signer signs raw REST requests with a master key, as azcosmos does
// (HMAC-SHA256 over verb, resource type, resource link and date).
type signer struct{ key []byte }

func newSigner(t testing.TB, key string) signer {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(key)
	if err != nil {
		t.Fatal(err)
	}
	return signer{key: b}
}

// sign sets x-ms-date (unless already set) and Authorization for a request on
// the resource type and link the gateway derives from the request path.
func (s signer) sign(req *http.Request) {
	date := req.Header.Get("x-ms-date")
	if date == "" {
		date = time.Now().UTC().Format(http.TimeFormat)
		req.Header.Set("x-ms-date", date)
	}
	resType, link := resourceOf(req.URL.EscapedPath())
	payload := strings.ToLower(req.Method) + "\n" + strings.ToLower(resType) + "\n" + link + "\n" + strings.ToLower(date) + "\n\n"
	mac := hmac.New(sha256.New, s.key)
	mac.Write([]byte(payload))
	sig := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	req.Header.Set("Authorization", url.QueryEscape("type=master&ver=1.0&sig="+sig))
}

// resourceOf derives the signed resource type and link from an escaped
// request path: an odd number of segments names a feed (its type is the last
// segment, its link the parent), an even number one resource; offers are
// signed by their lower-cased id. It follows the gateway's decoding (twice,
// backslash as slash, cut at '#', trailing blanks dropped).
func resourceOf(escaped string) (resType, link string) {
	p, err := url.PathUnescape(escaped)
	if err != nil {
		p = escaped
	}
	p = strings.ReplaceAll(p, `\`, "/")
	if i := strings.IndexByte(p, '#'); i >= 0 {
		p = p[:i]
	}
	if twice, err := url.PathUnescape(p); err == nil {
		p = twice
	}
	p = strings.Trim(p, "/")
	if p == "" {
		return "", ""
	}
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = strings.TrimRight(s, " \t")
	}
	n := len(segs)
	if n%2 == 1 {
		return segs[n-1], strings.Join(segs[:n-1], "/")
	}
	if segs[n-2] == "offers" {
		return "offers", strings.ToLower(segs[n-1])
	}
	return segs[n-2], strings.Join(segs, "/")
}

// rawResponse is a response read to the end.
type rawResponse struct {
	status int
	header http.Header
	body   []byte
}

// rawDo sends a signed request to srv and reads the whole response.
func rawDo(t testing.TB, srv *emulator.Server, method, path string, header map[string]string, body []byte) rawResponse {
	t.Helper()
	return rawDoAuth(t, srv, method, path, header, body, newSigner(t, srv.Key()).sign)
}

// rawDoAuth sends a request that authorize authenticates to srv and reads
// the whole response.
func rawDoAuth(t testing.TB, srv *emulator.Server, method, path string, header map[string]string, body []byte, authorize func(*http.Request)) rawResponse {
	t.Helper()
	req, err := http.NewRequest(method, strings.TrimSuffix(srv.Endpoint(), "/")+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	req.Header.Set("x-ms-version", "2020-07-15")
	authorize(req)
	hc := srv.HTTPClient()
	defer hc.CloseIdleConnections()
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return rawResponse{status: resp.StatusCode, header: resp.Header, body: b}
}

// withHeader returns a context that makes the SDK add h to its request.
func withHeader(ctx context.Context, kv ...string) context.Context {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return runtime.WithHTTPHeader(ctx, h)
}
