package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rekey-dev/rekey/internal/cosmos"
	"github.com/rekey-dev/rekey/internal/emulator/emulatortest"
	"github.com/rekey-dev/rekey/migrate"
)

// TestRunAgainstAThrottledTarget migrates into a target of 1,000 RU/s
// (one partition), which 32 writes in flight would outrun many times over:
// the run must finish with every item copied and no more than 5% of its
// requests answered 429, the share the service calls healthy. (In `rekey
// bench`, 32 writes in flight without per-partition pacing, waiting only
// each 429's retry-after, get about 40% of their requests throttled.)
func TestRunAgainstAThrottledTarget(t *testing.T) {
	e := newE2E(t)
	src := e.container("orders", 10000, "/region")
	dst := e.container("byCustomer", 1000, "/customerId")
	seedOrders(t, src, 600)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	stdout, stderr, code := cli(t, ctx, append([]string{"run", "--until-caught-up"}, e.args("orders", "byCustomer", "/customerId")...)...)
	t.Logf("the run took %v", time.Since(start).Round(time.Millisecond))
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	checkCopy(t, src, dst, []string{"/customerId"}, []string{"/region"}, nil)
	m, err := e.srv.ContainerMetrics(testDB, "byCustomer")
	if err != nil {
		t.Fatal(err)
	}
	attempts := m.Requests + m.Throttled
	share := float64(m.Throttled) / float64(attempts)
	t.Logf("target: %d requests, %d answered 429 (%.2f%%)", attempts, m.Throttled, 100*share)
	if share > 0.05 {
		t.Fatalf("%.1f%% of the target's requests were throttled (%d of %d), want at most 5%%", 100*share, m.Throttled, attempts)
	}
	if !strings.Contains(stdout, "(target: ") {
		t.Fatalf("the summary does not report the target's 429s:\n%s", stdout)
	}
}

// manualClock is the emulator's clock in a test that moves it by hand.
type manualClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// TestRunYieldsToTheApplication migrates into a target of 1,000 RU/s while
// the application writes into it at high priority, on the emulator's
// physics and a clock the test moves: a partition's budget refills only
// when the test advances the clock, 50 ms (50 RU) at a time, so contention
// is certain whatever the machine's load. The migration (at --priority
// low) is throttled once the budget falls to the 20% the service keeps for
// high priority; at each such moment the application writes, and is never
// throttled; the migration backs off and completes the copy.
//
// The test fails when the priority is ignored (the migration sent at high
// priority drains the budget to zero, and the application's write at that
// moment is throttled): see yieldsToTheApplication's priority argument.
func TestRunYieldsToTheApplication(t *testing.T) {
	appThrottled, contended := yieldsToTheApplication(t, "low")
	if contended < 10 {
		t.Fatalf("the application wrote at only %d moments of contention: the test proves nothing", contended)
	}
	if appThrottled > 0 {
		t.Fatalf("the application was throttled %d times in %d writes at moments the migration was throttled: the migration did not yield", appThrottled, contended)
	}
}

// yieldsToTheApplication runs the migration at priority against the
// application and returns how often the application's writes were
// throttled, of how many it made at moments the migration was throttled.
func yieldsToTheApplication(t *testing.T, priority string) (appThrottled, contended int) {
	t.Helper()
	clock := &manualClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	e := newE2E(t, emulatortest.WithClock(clock.Now))
	src := e.container("orders", 10000, "/region")
	dst := e.container("byCustomer", 1000, "/customerId")
	seedOrders(t, src, 600) // ~3,600 RU of creates: more than the 1,000 RU the target holds
	clock.Advance(10 * time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	type result struct {
		stdout, stderr string
		code           int
	}
	done := make(chan result, 1)
	go func() {
		// At most 8 writes in flight: those admitted above the reserve
		// cannot, once charged, take the budget below zero.
		args := append([]string{"run", "--until-caught-up", "--max-concurrency", "8"}, e.args("orders", "byCustomer", "/customerId")...)
		stdout, stderr, code := cli(t, ctx, withFlag(args, "--priority", priority)...)
		done <- result{stdout, stderr, code}
	}()
	throttled := func() int64 {
		m, err := e.srv.ContainerMetrics(testDB, "byCustomer")
		if err != nil {
			t.Error(err)
		}
		return m.Throttled
	}
	seen := throttled()
	for app := 0; ; {
		// Wait until the budget has run down to a 429, or 2 s at most
		// (the migration may be waiting out a retry-after).
		fresh := false
		for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline) && !fresh; {
			select {
			case r := <-done:
				if r.code != 0 {
					t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
				}
				t.Logf("%s: the application wrote at %d moments of contention, throttled %d times\n%s", priority, contended, appThrottled, r.stdout)
				clock.Advance(time.Minute) // a full budget to read both containers
				checkCopy(t, src, dst, []string{"/customerId"}, []string{"/region"}, appIDs(app))
				return appThrottled, contended
			case <-time.After(2 * time.Millisecond):
			}
			if n := throttled(); n > seen {
				seen, fresh = n, true
			}
		}
		if fresh {
			// The clock stands still: the budget is at most the reserve
			// and stays so until the clock moves. The application writes
			// one item now, at high priority.
			contended++
			body, _ := json.Marshal(map[string]any{"id": fmt.Sprintf("app-%d", app), "customerId": fmt.Sprintf("app-%d", app)})
			_, err := dst.Create(ctx, keyOf(fmt.Sprintf("app-%d", app)), body)
			switch {
			case errors.Is(err, migrate.ErrThrottled):
				appThrottled++
			case err != nil:
				t.Fatal(err)
			default:
				app++
			}
			seen = throttled()
		}
		clock.Advance(50 * time.Millisecond)
	}
}

// appIDs are the ids of the items the application wrote into the target,
// which are not in the source.
func appIDs(n int) map[string]bool {
	ids := map[string]bool{}
	for i := range n {
		ids[fmt.Sprintf("app-%d", i)] = true
	}
	return ids
}

// seedOrders writes n orders of region eu, each with its own customer, in
// transactional batches.
func seedOrders(t *testing.T, src *cosmos.Container, n int) {
	t.Helper()
	for first := 0; first < n; first += 100 {
		var bodies [][]byte
		for i := first; i < min(first+100, n); i++ {
			b, _ := json.Marshal(map[string]any{"id": itemID(i), "region": "eu", "customerId": fmt.Sprintf("c%d", i)})
			bodies = append(bodies, b)
		}
		if res, err := src.CreateBatch(context.Background(), keyOf("eu"), bodies); err != nil || !res.Committed {
			t.Fatalf("seed: %v %+v", err, res)
		}
	}
}

// TestRunAppliesTheControlFile starts a run that follows the feed, writes
// a control file into its state directory, and expects the change logged.
func TestRunAppliesTheControlFile(t *testing.T) {
	e := newE2E(t)
	src := e.container("orders", 10000, "/region")
	e.container("byCustomer", 10000, "/customerId")
	put(t, src, "eu", map[string]any{"id": "1", "region": "eu", "customerId": "c1"})
	args := append([]string{"run", "--max-ru", "800"}, e.args("orders", "byCustomer", "/customerId")...)
	args = append(args, "--log-level", "info", "--log-format", "json", "--progress-interval", "100ms")
	out := &syncBuffer{}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "REKEY_TEST_MAIN=1")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	waitFor(t, 20*time.Second, "the migration to start", func() bool {
		return strings.Contains(out.String(), "migration starting")
	})
	if err := os.WriteFile(filepath.Join(e.state, "control.json"), []byte(`{"maxRU": 2500, "maxConcurrency": 8}`), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the control file to be applied", func() bool {
		return strings.Contains(out.String(), "control file applied")
	})
	waitFor(t, 20*time.Second, "the progress line to show it", func() bool {
		return strings.Contains(out.String(), "max-ru 2500  max-source-ru none  max-concurrency 8")
	})
	var start struct {
		Settings string `json:"settings"`
	}
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.Contains(line, "migration starting") {
			_ = json.Unmarshal([]byte(line), &start)
		}
	}
	if start.Settings != "max-ru 800  max-source-ru none  max-concurrency none" {
		t.Fatalf("the start line shows settings %q", start.Settings)
	}
}

// syncBuffer is a bytes.Buffer a child process writes while the test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestRunControlFileCapChangeDoesNotFreeze: a control file that sets an RU
// cap of 0.01 RU/s (a write would wait minutes for it) holds the copy, and
// deleting the file releases the writes already waiting at once, so the run
// finishes with every item copied instead of sleeping out waits computed at
// the old cap.
func TestRunControlFileCapChangeDoesNotFreeze(t *testing.T) {
	e := newE2E(t)
	src := e.container("orders", 12_000, "/region")
	seedOrderBatches(t, src, 1000)
	control := filepath.Join(e.state, "control.json")
	if err := os.MkdirAll(e.state, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(control, []byte(`{"maxRU": 0.01, "maxSourceRU": 0.01}`), 0o644); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"run", "--until-caught-up", "--create-target", "--target-throughput", "12000", "--poll-interval", "20ms"}, e.args("orders", "target", bulkKeys...)...)
	args = append(args, "--log-format", "json", "--log-level", "info")
	out := &syncBuffer{}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "REKEY_TEST_MAIN=1")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Kill()
		<-exited
	}()
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(out.String(), "max-ru 0.01  max-source-ru 0.01"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the 0.01 RU/s cap was not applied within 30 s:\n%s", out)
		}
	}
	select {
	case err := <-exited:
		exited <- err // for the deferred wait
		t.Fatalf("the run ended under a cap of 0.01 RU/s: %v\n%s", err, out)
	case <-time.After(time.Second):
	}
	if err := os.Remove(control); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err // for the deferred wait
		if err != nil {
			t.Fatalf("run after the cap was lifted: %v\n%s", err, out)
		}
	case <-time.After(90 * time.Second):
		t.Fatalf("the run did not finish within 90 s of the cap being lifted:\n%s", out)
	}
	checkCopy(t, src, e.client.Container(testDB, "target"), bulkKeys, []string{"/region"}, nil)
}
