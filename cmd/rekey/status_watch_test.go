package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/migrate/status"
)

// The status table fits 100 columns whatever the names: long account
// hosts, owners and EPK bounds are cut, a stale owner is marked, and the
// overall percentage and ETA are shown.
func TestStatusFits100Columns(t *testing.T) {
	now := time.Now()
	lag, lagSec := int64(12_345), 75.0
	st := status.Report{
		Meta: lease.Meta{
			Source:  "a-very-long-account-name-for-the-source.documents.azure.com/production-database/orders-2024",
			Target:  "a-very-long-account-name-for-the-target.documents.azure.com/production-database/orders-2024-v2",
			KeySpec: []string{"/tenantId", "/pk={tenantId}-{createdAt|yyyyMM}"},
		},
		Phase: status.PhaseCopying, Items: 8_800_000, RU: 123_456_789, DeadLetters: 3,
		Ranges: []status.Range{
			{Min: "", Max: "05C1DFFFFFFFF8", Items: 4_400_000, CheckpointedAt: now, CheckpointAgeSeconds: 3, CaughtUpAt: now, LagItems: &lag, LagItemsAtLeast: true, LagSeconds: &lagSec,
				Owner: "rekey-workers-7d9f8c6b5-x2x4q-with-a-long-suffix.cluster.local/123456"},
			{Min: "05C1DFFFFFFFF8", Max: "FF", Items: 4_400_000, CheckpointedAt: now.Add(-5 * time.Minute), CheckpointAgeSeconds: 300,
				Owner: "rekey-workers-7d9f8c6b5-abcde/1", Stale: true},
			{Min: "FF", Max: "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF", Owner: "cutover-host/9", Fence: "cutover-host/9"},
		},
	}
	st.WithProgress(20_000_000, 100_000)
	var out bytes.Buffer
	printStatus(&out, st)
	got := out.String()
	for _, l := range strings.Split(strings.TrimSuffix(got, "\n"), "\n") {
		if n := utf8.RuneCountInString(l); n > statusWidth {
			t.Errorf("a line of %d columns: %q", n, l)
		}
	}
	for _, want := range []string{"progress: 44.0% of 20,000,000 source items, ETA 1m52s, 100,000 items/s", "STALE rekey-workers-7d9f8c…",
		"(fenced)", "12,345+ items, 1m15s", "dead letters: 3", "phase: copying", "documents.azure.com/production-database/orders-2024-v2\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("no %q in\n%s", want, got)
		}
	}
	if strings.Count(got, "STALE") != 1 {
		t.Errorf("only the stale owner is marked:\n%s", got)
	}
}

// A lease is stale when its owner has not written it within the TTL it
// recorded (the default when it recorded none); a free lease never is.
func TestStaleOwner(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		l    lease.Lease
		want bool
	}{
		{lease.Lease{Owner: "w", Timestamp: now.Add(-2 * time.Second), TTL: time.Second}, true},
		{lease.Lease{Owner: "w", Timestamp: now.Add(-2 * time.Second), TTL: 5 * time.Second}, false},
		{lease.Lease{Owner: "w", Timestamp: now.Add(-59 * time.Second)}, false},
		{lease.Lease{Owner: "w", Timestamp: now.Add(-61 * time.Second)}, true},
		{lease.Lease{Timestamp: now.Add(-time.Hour)}, false},
	} {
		if got := status.Stale(tc.l, now); got != tc.want {
			t.Errorf("Stale(%+v) = %v, want %v", tc.l, got, tc.want)
		}
	}
}

// redrawWriter counts status --watch's redraws and cancels the command
// after n of them.
type redrawWriter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	n      int
	cancel context.CancelFunc
}

func (w *redrawWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Count(w.buf.String(), "Ctrl+C to stop") >= w.n {
		w.cancel()
	}
	return len(p), nil
}

// status --watch INTERVAL redraws with the overall percentage until it is
// interrupted, then exits 130; bad intervals are refused.
func TestStatusWatch(t *testing.T) {
	e := newE2E(t)
	src := e.container("orders", 12_000, "/region")
	for i := range 50 {
		put(t, src, regions[i%len(regions)], order(i, 1))
	}
	conn := e.args("orders", "orders-by-tenant", "/tenantId")
	if out, errOut, code := cli(t, context.Background(), append([]string{"run", "--create-target", "--until-caught-up", "--poll-interval", "20ms"}, conn...)...); code != 0 {
		t.Fatalf("run: exit %d\n%s%s", code, out, errOut)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	w := &redrawWriter{n: 3, cancel: cancel}
	root := newRootCommand()
	root.SetArgs(append([]string{"status", "--watch", "50ms"}, conn...))
	root.SetOut(w)
	root.SetErr(io.Discard)
	err := root.ExecuteContext(ctx)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != ExitInterrupted {
		t.Fatalf("status --watch: %v, want exit %d", err, ExitInterrupted)
	}
	got := w.buf.String()
	if n := strings.Count(got, "every 50ms, Ctrl+C to stop"); n < 3 || !strings.Contains(got, "progress: 100.0% of 50 source items") || !strings.Contains(got, "phase: syncing") {
		t.Errorf("%d redraws:\n%s", n, got)
	}
	for _, bad := range [][]string{{"--watch", "soon"}, {"--watch=-1s"}, {"5s"}} {
		if out, errOut, code := cli(t, context.Background(), append([]string{"status"}, append(bad, conn...)...)...); code != ExitError {
			t.Errorf("status %v: exit %d, want %d\n%s%s", bad, code, ExitError, out, errOut)
		}
	}
}

// A worker killed with its leases held leaves them owned; once its lease
// TTL has passed without a renewal, status marks the owner STALE (and
// -o json says stale), while the leases a live worker holds are not.
func TestStatusMarksAStaleOwner(t *testing.T) {
	e := newE2E(t)
	src := e.container("orders", 12_000, "/region")
	for i := range 100 {
		put(t, src, regions[i%len(regions)], order(i, 1))
	}
	args := append([]string{"run", "--create-target", "--poll-interval", "20ms", "--lease-ttl", "1s"}, e.args("orders", "target", "/tenantId")...)
	cmd, out := process(t, args...)
	owned := func() bool {
		out, _, code := cli(t, context.Background(), "status", "-o", "json", "--state", e.state)
		var st status.Report
		if code != 0 || json.Unmarshal([]byte(out), &st) != nil {
			return false // not created yet
		}
		for _, r := range st.Ranges {
			if r.Owner == "" || r.Stale || r.CheckpointedAt.IsZero() { // a checkpoint records the TTL
				return false
			}
		}
		return len(st.Ranges) > 0
	}
	waitFor(t, 30*time.Second, "the worker to hold and checkpoint every lease", owned)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	waitFor(t, 30*time.Second, "every lease of the killed worker to be stale", func() bool {
		st := statusJSON(t, e)
		for _, r := range st.Ranges {
			if !r.Stale {
				return false
			}
		}
		return true
	})
	table, errOut, code := cli(t, context.Background(), "status", "--state", e.state)
	if code != 0 || strings.Count(table, "STALE") != len(statusJSON(t, e).Ranges) {
		t.Errorf("status: exit %d, want every owner STALE\n%s%s\n%s", code, table, errOut, out)
	}
}

// The change feed the ranges follow is one line when they all follow the
// same one and a column when they differ, so the table keeps its 100
// columns; a fallback is a note below the table, wrapped, never cut.
func TestStatusShowsTheFeed(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ranges := []status.Range{
		{Min: "", Max: "80", Mode: lease.ModeAllVersions, Owner: "w/1"},
		{Min: "80", Max: "FF", Mode: lease.ModeAllVersions, Owner: "w/1"},
	}
	var out bytes.Buffer
	printRanges(&out, ranges)
	if got := out.String(); !strings.HasPrefix(got, "change feed: all-versions-and-deletes\nRANGE  ") || strings.Contains(got, "FEED") {
		t.Errorf("every range on the all-versions feed:\n%s", got)
	}
	ranges[0].SwitchesToAllVersions, ranges[0].Mode = true, lease.ModeLatest
	ranges[1].Mode = lease.ModeLatest
	ranges[1].Fallback = "its all-versions position is older than the source's change feed retention (the source keeps changes for 10m); it follows the latest-version feed from where its copy ended"
	ranges[1].FallbackAt = now
	out.Reset()
	printStatus(&out, status.Report{Phase: status.PhaseSyncing, Ranges: ranges})
	got := out.String()
	for _, want := range []string{"RANGE     FEED        ITEMS", "latest→all", "latest  ", "range [80, FF) fell back from the all-versions feed at 2026-01-02T03:04:05Z:", "from where its copy ended;"} {
		if !strings.Contains(got, want) {
			t.Errorf("no %q in\n%s", want, got)
		}
	}
	for _, l := range strings.Split(strings.TrimSuffix(got, "\n"), "\n") {
		if n := utf8.RuneCountInString(l); n > statusWidth || strings.HasSuffix(l, "…") {
			t.Errorf("a line of %d columns, or cut: %q", n, l)
		}
	}
}
