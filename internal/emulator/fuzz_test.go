package emulator_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rekey-dev/rekey/internal/emulator"
)

// serviceStatuses are the statuses the service answers REST requests with.
var serviceStatuses = map[int]bool{
	200: true, 201: true, 204: true, 207: true, 304: true,
	400: true, 401: true, 403: true, 404: true, 405: true, 409: true,
	410: true, 412: true, 413: true, 429: true,
}

// FuzzHandler sends one arbitrary request, signed so that it passes
// authorization, to a fresh emulator holding a database, a Hash container
// with a split range, a MultiHash container and a few items. Whatever the
// method, path, headers and body, the emulator must not panic, must answer
// with a status the service uses, and every error must carry the service's
// {"code","message"} body.
//
// header is "Name: value" lines. A request that Go's HTTP server would
// refuse before the handler (an invalid method, request URI or header) is
// skipped.
func FuzzHandler(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s.method, s.path, s.header, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, method, path, header string, body []byte) {
		req := fuzzRequest(method, path, header, body)
		if req == nil {
			t.Skip()
		}
		var panics atomic.Int32
		emu := newFuzzEmulator(t, &panics)
		if !strings.Contains(strings.ToLower(header), "authorization:") {
			newSigner(t, emulator.WellKnownKey).sign(req)
		}
		rec := httptest.NewRecorder()
		emu.ServeHTTP(rec, req)
		checkFuzzResponse(t, req, rec, panics.Load())
	})
}

// fuzzRequest builds the request as Go's server would hand it to the
// handler, or nil when the server would refuse it.
func fuzzRequest(method, path, header string, body []byte) *http.Request {
	if method == "" || strings.IndexFunc(method, func(r rune) bool { return r <= ' ' || r >= 0x7f || strings.ContainsRune(`()<>@,;:\"/[]?={}`, r) }) >= 0 {
		return nil
	}
	if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " \x00\r\n") {
		return nil
	}
	u, err := url.ParseRequestURI(path)
	if err != nil {
		return nil
	}
	req := httptest.NewRequest(http.MethodGet, "https://127.0.0.1:8081/", bytes.NewReader(body))
	req.Method = method
	req.URL = u
	req.URL.Scheme, req.URL.Host = "", ""
	req.RequestURI = path
	req.Host = "127.0.0.1:8081"
	for _, line := range strings.Split(header, "\n") {
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !validHeader(name, value) {
			return nil
		}
		req.Header.Add(name, value)
	}
	return req
}

func validHeader(name, value string) bool {
	if name == "" {
		return false
	}
	for _, r := range name {
		if r <= ' ' || r >= 0x7f || strings.ContainsRune(`()<>@,;:\"/[]?={}`, r) {
			return false
		}
	}
	for _, r := range value {
		if (r < ' ' && r != '\t') || r == 0x7f {
			return false
		}
	}
	return true
}

// newFuzzEmulator returns an emulator with db/c (Hash /pk, ranges 1-3 live
// after range 0 split), db/h (MultiHash /a /b) and items in both; panics
// counts the handler panics it logs.
func newFuzzEmulator(t *testing.T, panics *atomic.Int32) *emulator.Emulator {
	t.Helper()
	emu, err := emulator.New(emulator.Options{
		SplitDelay: time.Millisecond,
		Logger:     slog.New(panicCounter{n: panics}),
	})
	if err != nil {
		t.Fatal(err)
	}
	s := newSigner(t, emulator.WellKnownKey)
	do := func(method, path string, hdr map[string]string, body string) {
		req := httptest.NewRequest(method, "https://127.0.0.1:8081"+path, strings.NewReader(body))
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		s.sign(req)
		rec := httptest.NewRecorder()
		emu.ServeHTTP(rec, req)
		if rec.Code >= 300 {
			t.Fatalf("setup %s %s: %d %s", method, path, rec.Code, rec.Body)
		}
	}
	do("POST", "/dbs", map[string]string{"x-ms-offer-throughput": "400"}, `{"id":"db"}`)
	do("POST", "/dbs/db/colls", map[string]string{"x-ms-offer-throughput": "12000"}, `{"id":"c","partitionKey":{"paths":["/pk"],"kind":"Hash","version":2}}`)
	do("POST", "/dbs/db/colls", nil, `{"id":"h","partitionKey":{"paths":["/a","/b"],"kind":"MultiHash","version":2}}`)
	if err := emu.SplitRange("db", "c", "0"); err != nil {
		t.Fatal(err)
	}
	for _, pk := range []string{"a", "b", "c"} {
		for _, id := range []string{"1", "2"} {
			do("POST", "/dbs/db/colls/c/docs", map[string]string{"x-ms-documentdb-partitionkey": `["` + pk + `"]`},
				`{"id":"`+id+`","pk":"`+pk+`","n":`+id+`,"arr":[1,{"x":2}],"o":{"p":"q"}}`)
		}
	}
	do("POST", "/dbs/db/colls/h/docs", map[string]string{"x-ms-documentdb-partitionkey": `["t",1]`}, `{"id":"1","a":"t","b":1}`)
	return emu
}

// panicCounter is a slog handler that counts error records: the emulator
// logs one for every panic it recovers from.
type panicCounter struct{ n *atomic.Int32 }

func (p panicCounter) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelError }
func (p panicCounter) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "panic") {
		p.n.Add(1)
	}
	return nil
}
func (p panicCounter) WithAttrs([]slog.Attr) slog.Handler { return p }
func (p panicCounter) WithGroup(string) slog.Handler      { return p }

func checkFuzzResponse(t *testing.T, req *http.Request, rec *httptest.ResponseRecorder, panics int32) {
	t.Helper()
	body := rec.Body.Bytes()
	what := req.Method + " " + req.RequestURI
	if panics > 0 {
		t.Fatalf("%s: the handler panicked: %d %s", what, rec.Code, body)
	}
	if !serviceStatuses[rec.Code] {
		t.Fatalf("%s: status %d is not one the service answers: %s", what, rec.Code, body)
	}
	if cl := rec.Header().Get("Content-Length"); cl != "" && cl != strconv.Itoa(len(body)) {
		t.Fatalf("%s: Content-Length %s for a body of %d bytes", what, cl, len(body))
	}
	switch {
	case rec.Code == http.StatusNotModified || rec.Code == http.StatusNoContent:
		if len(body) != 0 {
			t.Fatalf("%s: %d with a body %q", what, rec.Code, body)
		}
	case rec.Code >= 400:
		var eb errorBody
		dec := json.NewDecoder(bytes.NewReader(body))
		if err := dec.Decode(&eb); err != nil || eb.Code == "" || eb.Message == "" {
			t.Fatalf("%s: %d error body %q is not {\"code\",\"message\"}", what, rec.Code, body)
		}
		if eb.Code != statusCodes[rec.Code] {
			t.Fatalf("%s: %d with code %q", what, rec.Code, eb.Code)
		}
		if _, err := dec.Token(); err != io.EOF {
			t.Fatalf("%s: trailing data after the error body %q", what, body)
		}
	case len(body) > 0 && !json.Valid(body):
		t.Fatalf("%s: %d with a body that is not JSON: %q", what, rec.Code, body)
	}
	if rec.Code == http.StatusTooManyRequests && rec.Header().Get("x-ms-retry-after-ms") == "" {
		t.Fatalf("%s: 429 without x-ms-retry-after-ms", what)
	}
}
