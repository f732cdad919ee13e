package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rekey-dev/rekey/internal/emulator"
	"github.com/rekey-dev/rekey/lease"
)

// freeAddr is a loopback address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// scrape reads /metrics as series -> value ("name{labels}"), leaving out
// the Go runtime's and the process's.
func scrape(t *testing.T, addr string) (map[string]float64, error) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	series := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "rekey_") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		series[line[:i]] = v
	}
	return series, sc.Err()
}

// A run serving --metrics-addr, scraped while it copies through 429s until
// it syncs: the counters equal the run's own summary (-o json) at the end,
// the range metrics its state, and /healthz answers with the phase. On a
// lease container (a Job's worker) the state's RU count too.
func TestMetricsMatchTheRunsEndState(t *testing.T) {
	for _, state := range []string{"directory", "cosmos://rekey/leases"} {
		t.Run(strings.ReplaceAll(state, "/", "_"), func(t *testing.T) {
			e := newE2E(t)
			if state != "directory" {
				e.state = state
			}
			m := scrapedRun(t, e)
			leaseRU, ok := m[`rekey_request_units_total{side="leases"}`]
			if shared := state != "directory"; shared != ok || shared && leaseRU <= 0 {
				t.Errorf("lease container RU %v (present %v) with a %s state", leaseRU, ok, state)
			}
		})
	}
}

// scrapedRun runs a migration with --metrics-addr until it syncs, checks
// the last scrape against the run's summary and returns it.
func scrapedRun(t *testing.T, e *e2e) map[string]float64 {
	t.Helper()
	src := e.container("orders", 12_000, "/region") // 2 physical partitions
	const items = 240
	for i := range items {
		put(t, src, regions[i%len(regions)], order(i, 1))
	}
	if _, err := e.srv.InjectFault(emulator.Fault{Container: "orders-by-tenant", Operations: []string{"write", "batch", "bulk"}, Status: 429, Count: 4, RetryAfter: 5 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	args := append([]string{"run", "--create-target", "--target-throughput", "12000", "--page-size", "40", "--poll-interval", "50ms",
		"--metrics-addr", addr, "-o", "json"}, e.args("orders", "orders-by-tenant", "/tenantId")...)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		out, errOut string
		code        int
	}
	done := make(chan result, 1)
	go func() {
		out, errOut, code := cli(t, ctx, args...)
		done <- result{out, errOut, code}
	}()

	written := func(m map[string]float64) float64 {
		return m[`rekey_items_written_total{outcome="created"}`] + m[`rekey_items_written_total{outcome="updated"}`] + m[`rekey_items_written_total{outcome="unchanged"}`]
	}
	var m map[string]float64
	deadline := time.Now().Add(60 * time.Second)
	for {
		var err error
		m, err = scrape(t, addr)
		if err == nil && m[`rekey_phase{phase="syncing"}`] == 1 && written(m) == items && m["rekey_migration_items"] == items {
			break
		}
		if time.Now().After(deadline) {
			cancel()
			r := <-done
			t.Fatalf("the run never reached syncing with %d items written (last scrape %v, err %v)\n%s%s", items, m, err, r.out, r.errOut)
		}
		time.Sleep(100 * time.Millisecond)
	}
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	health, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(health), `"phase":"syncing"`) {
		t.Errorf("/healthz: %d %s", resp.StatusCode, health)
	}
	cancel()
	r := <-done
	if r.code != ExitInterrupted {
		t.Fatalf("exit %d, want %d\n%s%s", r.code, ExitInterrupted, r.out, r.errOut)
	}
	var rep runReport
	var raw struct {
		Stats map[string]any `json:"stats"`
	}
	if err := json.Unmarshal([]byte(r.out), &rep); err != nil {
		t.Fatalf("run -o json: %v\n%s", err, r.out)
	}
	_ = json.Unmarshal([]byte(r.out), &raw)
	s := raw.Stats
	num := func(k string) float64 { f, _ := s[k].(float64); return f }
	if rep.Outcome != "interrupted" || rep.Feed != lease.ModeLatest { // the source keeps no all-versions feed
		t.Errorf("outcome %q, feed %q; want interrupted, latest", rep.Outcome, rep.Feed)
	}
	for series, want := range map[string]float64{
		"rekey_items_read_total":                         num("read"),
		`rekey_items_written_total{outcome="created"}`:   num("created"),
		`rekey_items_written_total{outcome="updated"}`:   num("updated"),
		`rekey_items_written_total{outcome="unchanged"}`: num("unchanged"),
		"rekey_items_dead_lettered_total":                num("deadLettered"),
		`rekey_throttled_total{side="target"}`:           num("writesThrottled"),
		"rekey_target_requests_total":                    num("writeRequests"),
		"rekey_retries_total":                            num("retries"),
		`rekey_request_units_total{side="target"}`:       num("createRU") + num("checkRU") + num("replaceRU") + num("deleteRU") + num("lookupRU"),
		"rekey_source_items":                             items,
		"rekey_migration_items":                          items,
		"rekey_in_flight_requests":                       0,
	} {
		if got, ok := m[series]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v (the run's summary)", series, got, ok, want)
		}
	}
	if num("read") != items || num("created") != items || num("writesThrottled") < 1 {
		t.Errorf("summary: read %v, created %v, target 429s %v; want %d, %d, >= 1", num("read"), num("created"), num("writesThrottled"), items, items)
	}
	if s["elapsed"] == nil || !strings.HasSuffix(s["elapsed"].(string), "s") {
		t.Errorf("stats.elapsed = %v, want a duration string", s["elapsed"])
	}
	ranges := 0
	for series, v := range m {
		switch {
		case strings.HasPrefix(series, "rekey_range_caught_up{"):
			ranges++
			if v != 1 {
				t.Errorf("%s = %v, want 1", series, v)
			}
		case strings.HasPrefix(series, "rekey_range_lag_items{"), strings.HasPrefix(series, "rekey_range_owner_stale{"),
			strings.HasPrefix(series, "rekey_range_all_versions{"), strings.HasPrefix(series, "rekey_range_fell_back{"):
			if v != 0 {
				t.Errorf("%s = %v, want 0", series, v)
			}
		}
	}
	if ranges != 2 {
		t.Errorf("%d ranges with rekey_range_caught_up, want 2", ranges)
	}
	if m[`rekey_request_units_total{side="source"}`] <= 0 {
		t.Errorf("no source RU counted")
	}
	return m
}
