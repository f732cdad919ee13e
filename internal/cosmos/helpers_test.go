package cosmos

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rekey-dev/rekey/internal/emulator"
	"github.com/rekey-dev/rekey/internal/emulator/emulatortest"
	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/transform"
)

const testDB = "db"

// env is one in-process emulator and a client of it.
type env struct {
	srv    *emulator.Server
	client *Client
}

func newEnv(t testing.TB, opts ...emulatortest.Option) *env {
	t.Helper()
	srv := emulatortest.Start(t, opts...)
	return &env{srv: srv, client: newTestClient(t, srv, nil)}
}

// newTestClient connects to srv with its key over a client that trusts its
// certificate; mutate, when set, adjusts the config first.
func newTestClient(t testing.TB, srv *emulator.Server, mutate func(*Config)) *Client {
	t.Helper()
	cfg := Config{Endpoint: srv.Endpoint(), AccountKey: srv.Key(), HTTPClient: emulatortest.HTTPClient(t, srv)}
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := NewClient(context.Background(), cfg)
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// container creates db/id keyed by paths (/pk when none) with ru RU/s.
func (e *env) container(t testing.TB, id string, ru int, paths ...string) *Container {
	t.Helper()
	if len(paths) == 0 {
		paths = []string{"/pk"}
	}
	if err := e.client.CreateContainer(tctx(t), testDB, id, migrate.Definition{Paths: paths}, ru, 0); err != nil {
		t.Fatalf("create container %s: %v", id, err)
	}
	return e.client.Container(testDB, id)
}

// tctx is a context that ends with the test, bounded so a hang fails fast.
func tctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// key builds a string key.
func key(parts ...string) migrate.Key {
	k := make(migrate.Key, len(parts))
	for i, p := range parts {
		k[i] = transform.StringValue(p)
	}
	return k
}

// doc is an item body: fields as given, encoded as JSON.
func doc(t testing.TB, fields map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(fields)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// itemBody is {"id": id, "pk": pk, "v": v}.
func itemBody(t testing.TB, id, pk string, v int) []byte {
	return doc(t, map[string]any{"id": id, "pk": pk, "v": v})
}

// fields decodes an item body.
func fields(t testing.TB, body []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("item body %s: %v", body, err)
	}
	return m
}

// mustCreate creates an item or fails the test.
func mustCreate(t testing.TB, c *Container, k migrate.Key, body []byte) migrate.WriteResult {
	t.Helper()
	res, err := c.Create(tctx(t), k, body)
	if err != nil {
		t.Fatalf("create %s: %v", body, err)
	}
	return res
}

// inject adds a fault to srv or fails the test.
func inject(t testing.TB, srv *emulator.Server, f emulator.Fault) {
	t.Helper()
	if _, err := srv.InjectFault(f); err != nil {
		t.Fatalf("inject fault: %v", err)
	}
	t.Cleanup(srv.ClearFaults)
}

// recorder is an http.RoundTripper that records request headers and can
// rewrite them before they are sent.
type recorder struct {
	next    http.RoundTripper
	rewrite func(*http.Request)

	mu      sync.Mutex
	headers []http.Header
	paths   []string // "METHOD /path", one per recorded request
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if r.rewrite != nil {
		req = req.Clone(req.Context())
		r.rewrite(req)
	}
	r.mu.Lock()
	r.headers = append(r.headers, req.Header.Clone())
	r.paths = append(r.paths, req.Method+" "+req.URL.Path)
	r.mu.Unlock()
	return r.next.RoundTrip(req)
}

// seen returns the recorded headers.
func (r *recorder) seen() []http.Header {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]http.Header(nil), r.headers...)
}

// last returns the headers of the last request whose "METHOD /path" ends
// with suffix, and whether there was one.
func (r *recorder) last(suffix string) (http.Header, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.paths) - 1; i >= 0; i-- {
		if strings.HasSuffix(r.paths[i], suffix) {
			return r.headers[i], true
		}
	}
	return nil, false
}

// recordingClient returns a client of srv whose requests pass through a
// recorder.
func recordingClient(t testing.TB, srv *emulator.Server, rewrite func(*http.Request), mutate func(*Config)) (*Client, *recorder) {
	t.Helper()
	hc := emulatortest.HTTPClient(t, srv)
	rec := &recorder{next: hc.Transport, rewrite: rewrite}
	c := newTestClient(t, srv, func(cfg *Config) {
		cfg.HTTPClient = &http.Client{Transport: rec}
		if mutate != nil {
			mutate(cfg)
		}
	})
	return c, rec
}

// http1Client returns a client of srv that speaks HTTP/1.1 only: the
// emulator can drop a connection (Fault.CloseConnection) only by hijacking
// it, which HTTP/2 does not allow.
func http1Client(t testing.TB, srv *emulator.Server) *Client {
	t.Helper()
	// A custom TLS config without ForceAttemptHTTP2 keeps the transport on
	// HTTP/1.1 (ALPN offers only http/1.1).
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: srv.CertPool(), MinVersion: tls.VersionTLS12}}
	t.Cleanup(tr.CloseIdleConnections)
	return newTestClient(t, srv, func(cfg *Config) { cfg.HTTPClient = &http.Client{Transport: tr} })
}

// undefinedSentinel is a string key the rewriting transport of
// undefinedKeyClient turns into the undefined key [{}], which azcosmos
// cannot send: tests use it to store items without their key field.
const undefinedSentinel = "__undefined__"

func undefinedKeyClient(t testing.TB, srv *emulator.Server) *Client {
	c, _ := recordingClient(t, srv, func(req *http.Request) {
		const h = "x-ms-documentdb-partitionkey"
		if v := req.Header.Get(h); strings.Contains(v, `"`+undefinedSentinel+`"`) {
			req.Header.Set(h, strings.ReplaceAll(v, `"`+undefinedSentinel+`"`, "{}"))
		}
	}, nil)
	return c
}
