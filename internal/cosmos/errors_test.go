package cosmos

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rekey-dev/rekey/internal/emulator"
	"github.com/rekey-dev/rekey/migrate"
)

func emulatorFault429(count int, retryAfter time.Duration) emulator.Fault {
	return emulator.Fault{Status: http.StatusTooManyRequests, Count: count, RetryAfter: retryAfter, Operations: []string{"write"}}
}

func TestErrorClassesFromInjectedFaults(t *testing.T) {
	e := newEnv(t)
	c := e.container(t, "c", 400)
	mustCreate(t, c, key("p"), itemBody(t, "existing", "p", 1))
	write := func() error {
		_, err := c.Create(tctx(t), key("p"), itemBody(t, "new", "p", 1))
		return err
	}
	h1 := http1Client(t, e.srv).Container(testDB, "c")
	writeHTTP1 := func() error {
		_, err := h1.Create(tctx(t), key("p"), itemBody(t, "new", "p", 1))
		return err
	}
	read := func() error {
		_, err := c.Read(tctx(t), key("p"), "existing")
		return err
	}
	tests := []struct {
		name      string
		fault     emulator.Fault
		do        func() error
		status    int
		sentinels []error
	}{
		{"429", emulatorFault429(1, 250*time.Millisecond), write, 429, []error{migrate.ErrThrottled}},
		{"503 write", emulator.Fault{Status: 503, Count: 1, Operations: []string{"write"}}, write, 503, []error{migrate.ErrTransient}},
		{"503 read", emulator.Fault{Status: 503, Count: 1, Operations: []string{"read"}}, read, 503, []error{migrate.ErrTransient}},
		{"408 write", emulator.Fault{Status: 408, Count: 1, Operations: []string{"write"}}, write, 408, []error{migrate.ErrTransient}},
		{"449 write", emulator.Fault{Status: 449, Count: 1, Operations: []string{"write"}}, write, 449, []error{migrate.ErrTransient}},
		{"500 write", emulator.Fault{Status: 500, Count: 1, Operations: []string{"write"}}, write, 500, []error{migrate.ErrTransient}},
		{"connection dropped", emulator.Fault{CloseConnection: true, Count: 1, Operations: []string{"write"}}, writeHTTP1, 0, []error{migrate.ErrTransient}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inject(t, e.srv, tt.fault)
			err := tt.do()
			var re *migrate.RequestError
			if !errors.As(err, &re) {
				t.Fatalf("err = %v (%T), want a *migrate.RequestError", err, err)
			}
			if re.Status != tt.status {
				t.Errorf("status %d, want %d (%v)", re.Status, tt.status, err)
			}
			for _, s := range tt.sentinels {
				if !errors.Is(err, s) {
					t.Errorf("%v does not match %v", err, s)
				}
			}
			if tt.status == 0 {
				// The emulator sends the start of a response and hangs up.
				if !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Errorf("%v: want the cause, io.ErrUnexpectedEOF, in the chain", err)
				}
				return
			}
			if re.ActivityID == "" || re.Message == "" || strings.ContainsAny(re.Message, "\r\n") || strings.Contains(re.Message, "ActivityId") {
				t.Errorf("activity %q, message %q: want both, message one line without the activity", re.ActivityID, re.Message)
			}
			if tt.status == 429 && (re.RetryAfter != 250*time.Millisecond || re.SubStatus != 3200) {
				t.Errorf("429: retry after %v, substatus %d; want 250ms, 3200", re.RetryAfter, re.SubStatus)
			}
		})
	}
}

func TestErrorClassesFromServiceAnswers(t *testing.T) {
	e := newEnv(t)
	c := e.container(t, "c", 400)
	mustCreate(t, c, key("p"), itemBody(t, "1", "p", 1))
	big := doc(t, map[string]any{"id": "big", "pk": "p", "blob": strings.Repeat("x", 2<<20+1)})
	tests := []struct {
		name      string
		do        func() error
		status    int
		subStatus int
		sentinel  error
	}{
		{"conflict", func() error { _, err := c.Create(tctx(t), key("p"), itemBody(t, "1", "p", 1)); return err }, 409, 0, migrate.ErrConflict},
		{"not found", func() error { _, err := c.Read(tctx(t), key("p"), "nope"); return err }, 404, 0, migrate.ErrNotFound},
		{"container not found", func() error { _, err := e.client.Container(testDB, "nope").Definition(tctx(t)); return err }, 404, 0, migrate.ErrNotFound},
		{"too large", func() error { _, err := c.Create(tctx(t), key("p"), big); return err }, 413, 0, migrate.ErrTooLarge},
		{"key mismatch", func() error { _, err := c.Create(tctx(t), key("q"), itemBody(t, "2", "p", 1)); return err }, 400, 1001, migrate.ErrBadRequest},
		{"precondition", func() error {
			_, err := c.Replace(tctx(t), key("p"), "1", itemBody(t, "1", "p", 2), `"stale"`)
			return err
		}, 412, 0, migrate.ErrPreconditionFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do()
			var re *migrate.RequestError
			if !errors.As(err, &re) || re.Status != tt.status || re.SubStatus != tt.subStatus {
				t.Fatalf("err = %v (%+v); want status %d substatus %d", err, re, tt.status, tt.subStatus)
			}
			if !errors.Is(err, tt.sentinel) || errors.Is(err, migrate.ErrTransient) {
				t.Errorf("%v: want %v only", err, tt.sentinel)
			}
		})
	}
}

func TestCancellationIsNotARequestError(t *testing.T) {
	e := newEnv(t)
	c := e.container(t, "c", 400)

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.Create(cancelled, key("p"), itemBody(t, "1", "p", 1))
	assertContextError(t, err, context.Canceled)

	// The deadline passes long before the answer (a wide margin, so a
	// loaded machine does not see the answer first).
	inject(t, e.srv, emulator.Fault{Latency: time.Second, Count: 1, Operations: []string{"read"}})
	short, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	_, err = c.Read(short, key("p"), "1")
	assertContextError(t, err, context.DeadlineExceeded)
}

func assertContextError(t *testing.T, err, want error) {
	t.Helper()
	var re *migrate.RequestError
	if !errors.Is(err, want) || errors.As(err, &re) {
		t.Fatalf("err = %v (%T), want %v and no RequestError", err, err, want)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		headers map[string]string
		want    time.Duration
	}{
		{map[string]string{"x-ms-retry-after-ms": "250"}, 250 * time.Millisecond},
		{map[string]string{"x-ms-retry-after-ms": "1.5"}, 1500 * time.Microsecond},
		{map[string]string{"x-ms-retry-after-ms": "12", "Retry-After": "3"}, 12 * time.Millisecond},
		{map[string]string{"Retry-After": "3"}, 3 * time.Second},
		{map[string]string{"Retry-After": now.Add(2 * time.Second).Format(http.TimeFormat)}, 2 * time.Second},
		{map[string]string{"Retry-After": "soon"}, 0},
		{map[string]string{}, 0},
	}
	for _, tt := range tests {
		h := http.Header{}
		for k, v := range tt.headers {
			h.Set(k, v)
		}
		if got := retryAfter(h, now); got != tt.want {
			t.Errorf("retryAfter(%v) = %v, want %v", tt.headers, got, tt.want)
		}
	}
}

func TestServiceMessage(t *testing.T) {
	tests := map[string]string{
		`{"code":"NotFound","message":"Entity not found.\r\nActivityId: 1, Microsoft.Azure.Documents.Common/2.14.0"}`: "Entity not found.",
		`{"code":"X","message":"Message: {\"Errors\":[\"bad\"]}\nActivityId: 2"}`:                                     `Message: {"Errors":["bad"]}`,
		"plain text failure\nsecond line": "plain text failure",
		"":                                "",
	}
	for body, want := range tests {
		if got := serviceMessage([]byte(body)); got != want {
			t.Errorf("serviceMessage(%q) = %q, want %q", body, got, want)
		}
	}
	if got := serviceMessage([]byte(strings.Repeat("é", 400))); len(got) > maxMessage+3 || !strings.HasSuffix(got, "...") {
		t.Errorf("long message not truncated: %d bytes", len(got))
	}
}

func TestClassifyKeepsPlainErrorsFatal(t *testing.T) {
	c := &Client{secrets: []string{secretKey}}
	err := c.classify(context.Background(), "op", errors.New("decode failed near "+secretKey))
	var re *migrate.RequestError
	if errors.As(err, &re) || errors.Is(err, migrate.ErrTransient) {
		t.Errorf("a client-side error classified as a request failure: %v", err)
	}
	if strings.Contains(err.Error(), secretKey) {
		t.Errorf("classify leaks a secret: %v", err)
	}
	if c.classify(context.Background(), "op", nil) != nil {
		t.Error("classify(nil) != nil")
	}
}
