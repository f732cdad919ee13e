package pacing

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rekey-dev/rekey/migrate"
)

func TestParseControl(t *testing.T) {
	for _, tc := range []struct {
		in, err string
		want    Settings // over base {1000, 0, 32}
	}{
		{in: `{"maxRU": 5000, "maxConcurrency": 16}`, want: Settings{5000, 0, 16}},
		{in: `{"maxSourceRU": 250.5}`, want: Settings{1000, 250.5, 32}},
		{in: `{"maxRU": 0}`, want: Settings{0, 0, 32}},
		{in: `{}`, want: Settings{1000, 0, 32}},
		{in: `{"max_ru": 5000}`, err: "unknown field"},
		{in: `{"maxRU": -1}`, err: "must not be negative"},
		{in: `{"maxConcurrency": 0}`, want: Settings{1000, 0, 0}},
		{in: `{"maxConcurrency": 5000}`, err: "want 1..4096"},
		{in: `{"maxRU": "5000"}`, err: "not a control file"},
		{in: `{"maxRU": 1} {"maxRU": 2}`, err: "more than one"},
		{in: ``, err: "not a control file"},
	} {
		c, err := ParseControl([]byte(tc.in))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want one containing %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if got := c.over(Settings{1000, 0, 32}); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestControlFileIsApplied(t *testing.T) {
	path := filepath.Join(t.TempDir(), ControlFileName)
	target, source := NewRUCap(0, nil), NewRUCap(0, nil)
	lim := NewFixedLimiter(32)
	var logs bytes.Buffer
	c := NewControls(Settings{MaxRU: 1000, MaxConcurrency: 32}, target, source, lim, slog.New(slog.NewTextHandler(&logs, nil)))
	if target.Limit() != 1000 {
		t.Fatalf("the command line's max RU was not applied: %v", target.Limit())
	}

	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		c.Poll(path)
	}
	write(`{"maxRU": 5000, "maxSourceRU": 300, "maxConcurrency": 2}`)
	if got := c.Current(); got != (Settings{5000, 300, 2}) || target.Limit() != 5000 || source.Limit() != 300 {
		t.Fatalf("settings %+v, caps %v/%v", got, target.Limit(), source.Limit())
	}
	if !strings.Contains(logs.String(), "control file applied") || !strings.Contains(logs.String(), "max-ru 5000") {
		t.Fatalf("the change was not logged: %s", logs.String())
	}
	// The concurrency reached the limiter: a third request waits.
	ctx := context.Background()
	r1, _ := lim.Acquire(ctx, nil, 1)
	r2, _ := lim.Acquire(ctx, nil, 1)
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := lim.Acquire(short, nil, 1); err == nil {
		t.Fatal("maxConcurrency 2 from the control file let a third request out")
	}
	r1(migrate.Outcome{})
	r2(migrate.Outcome{})

	// A bad file is reported once and changes nothing.
	logs.Reset()
	write(`{"maxRU": -5}`)
	write(`{"maxRU": -5}`)
	if c.Current() != (Settings{5000, 300, 2}) {
		t.Fatalf("a bad file changed the settings: %+v", c.Current())
	}
	if n := strings.Count(logs.String(), "control file ignored"); n != 1 {
		t.Fatalf("the bad file was reported %d times, want once: %s", n, logs.String())
	}

	// Removing the file goes back to the command line's settings.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	c.Poll(path)
	if got := c.Current(); got != (Settings{1000, 0, 32}) || target.Limit() != 1000 || source.Limit() != 0 {
		t.Fatalf("after removing the file: %+v", got)
	}
	if s := c.Current().String(); s != "max-ru 1000  max-source-ru none  max-concurrency 32" {
		t.Fatalf("progress text %q", s)
	}
}

func TestControlsWatchPolls(t *testing.T) {
	path := filepath.Join(t.TempDir(), ControlFileName)
	target := NewRUCap(0, nil)
	c := NewControls(Settings{MaxConcurrency: 8}, target, nil, NewFixedLimiter(8), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Watch(ctx, path, 5*time.Millisecond); close(done) }()
	if err := os.WriteFile(path, []byte(`{"maxRU": 700}`), 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for target.Limit() != 700 {
		if time.Now().After(deadline) {
			t.Fatal("the watched control file was not applied")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
}
