package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rekey-dev/rekey/internal/cosmos"
	"github.com/rekey-dev/rekey/internal/emulator"
)

var regions = []string{"westeurope", "westeurope", "westeurope", "eastus", "japaneast"}

// order is a source item: a low-cardinality source key (region) and the
// fields the new keys are built from.
func order(i, v int) map[string]any {
	return map[string]any{
		"id":        itemID(i),
		"region":    regions[i%len(regions)],
		"tenantId":  fmt.Sprintf("tenant-%02d", i%17),
		"userId":    fmt.Sprintf("user-%03d", i%101),
		"createdAt": time.Date(2024, time.Month(1+i%12), 1+i%28, 10, 0, 0, 0, time.UTC).Format(time.RFC3339),
		"total":     float64(i) + 0.5,
		"v":         v,
		"_note":     "a user field that starts with an underscore",
	}
}

// churn inserts, updates and deletes source items until stop is closed;
// it never changes the fields keys are built from.
func churn(t *testing.T, src *cosmos.Container, next int, stop <-chan struct{}) (deleted map[string]bool, wait func()) {
	deleted = map[string]bool{}
	var mu sync.Mutex
	done := make(chan struct{})
	go func() {
		defer close(done)
		rng := rand.New(rand.NewPCG(1, 2))
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			switch n % 3 {
			case 0: // insert
				put(t, src, regions[next%len(regions)], order(next, 1))
				next++
			case 1: // update
				i := rng.IntN(next)
				mu.Lock()
				gone := deleted[itemID(i)]
				mu.Unlock()
				if !gone {
					put(t, src, regions[i%len(regions)], order(i, 2+n))
				}
			case 2: // delete
				i := rng.IntN(next)
				mu.Lock()
				if !deleted[itemID(i)] {
					deleted[itemID(i)] = true
					mu.Unlock()
					k := order(i, 0)
					if _, err := src.Delete(context.Background(), keyOf(k["region"].(string)), itemID(i), ""); err != nil {
						t.Errorf("delete %s: %v", itemID(i), err)
					}
				} else {
					mu.Unlock()
				}
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	return deleted, func() { <-done }
}

// The heart of rekey run: natural, synthetic and hierarchical keys from a
// multi-partition source that keeps changing during the copy; afterwards
// every live source item is in the target, once, under its new key, with
// identical content.
func TestRunCopiesWhileTheSourceChanges(t *testing.T) {
	for _, tc := range []struct {
		name string
		keys []string
	}{
		{"natural", []string{"/tenantId"}},
		{"synthetic", []string{"/pk={tenantId}-{createdAt|yyyyMM}"}},
		{"hierarchical", []string{"/tenantId", "/userId", "/month={createdAt|yyyyMM}"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newE2E(t)
			src := e.container("orders", 30_000, "/region") // 5 physical partitions
			for i := 0; i < 300; i++ {
				put(t, src, regions[i%len(regions)], order(i, 1))
			}
			// The first run follows the feed while the source changes, and
			// is stopped as a signal would stop it.
			args := append([]string{"run", "--create-target", "--target-throughput", "30000", "--page-size", "37", "--poll-interval", "50ms"}, e.args("orders", "orders-by-"+tc.name, tc.keys...)...)
			ctx, cancel := context.WithCancel(context.Background())
			type result struct {
				out, errOut string
				code        int
			}
			first := make(chan result, 1)
			go func() {
				out, errOut, code := cli(t, ctx, args...)
				first <- result{out, errOut, code}
			}()
			stop := make(chan struct{})
			deleted, wait := churn(t, src, 300, stop)
			time.Sleep(1500 * time.Millisecond)
			close(stop)
			wait()
			cancel()
			r := <-first
			if r.code != ExitInterrupted || !strings.Contains(r.out, "interrupted; progress checkpointed") {
				t.Fatalf("first run: exit %d, want %d\n%s%s", r.code, ExitInterrupted, r.out, r.errOut)
			}
			// A second run resumes from the checkpoints and catches up.
			out, errOut, code := cli(t, context.Background(), append(args, "--until-caught-up")...)
			if code != 0 {
				t.Fatalf("second run: exit %d\n%s%s", code, out, errOut)
			}
			if !strings.Contains(out, "caught up") {
				t.Errorf("summary:\n%s", out)
			}
			checkCopy(t, src, e.client.Container(testDB, "orders-by-"+tc.name), tc.keys, []string{"/region"}, deleted)
		})
	}
}

// 429 storms on the target and a split of a source range in the middle of
// the copy: the run completes and nothing is lost.
func TestRunThroughThrottlingAndSplit(t *testing.T) {
	e := newE2E(t)
	src := e.container("orders", 12_000, "/region") // 2 physical partitions
	for i := 0; i < 400; i++ {
		put(t, src, regions[i%len(regions)], order(i, 1))
	}
	keys := []string{"/pk={tenantId}-{createdAt|yyyyMM}"}
	if _, err := e.srv.InjectFault(emulator.Fault{Container: "target", Operations: []string{"write", "batch", "bulk"}, Status: 429, Probability: 0.3, RetryAfter: 5 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	split := make(chan error, 1)
	go func() {
		waitFor(t, 10*time.Second, "the copy to start", func() bool {
			m, err := e.srv.ContainerMetrics(testDB, "target")
			return err == nil && m.Items > 50
		})
		split <- e.srv.SplitRange(testDB, "orders", "0")
	}()
	out, errOut, code := cli(t, ctx, append([]string{"run", "--until-caught-up", "--create-target", "--target-throughput", "20000", "--page-size", "20", "--max-concurrency", "4"}, e.args("orders", "target", keys...)...)...)
	if code != 0 {
		t.Fatalf("run: exit %d\n%s%s", code, out, errOut)
	}
	if err := <-split; err != nil {
		t.Fatalf("split: %v", err)
	}
	checkCopy(t, src, e.client.Container(testDB, "target"), keys, []string{"/region"}, nil)
	m, _ := e.srv.ContainerMetrics(testDB, "target")
	if !strings.Contains(out, "throttled (429)") || m.Throttled > 0 {
		t.Logf("summary:\n%s", out)
	}
	var throttled int
	fmt.Sscanf(out[strings.Index(out, "throttled (429)")+len("throttled (429)"):], "%d", &throttled)
	if throttled == 0 {
		t.Errorf("the 429 storm never reached the writer:\n%s", out)
	}
	ranges, _ := src.FeedRanges(context.Background())
	if len(ranges) != 3 {
		t.Errorf("the source should have 3 ranges after the split, has %d", len(ranges))
	}
}

// --start-from now copies only the changes made after the migration began:
// a delta-only sync.
func TestRunStartFromNow(t *testing.T) {
	e := newE2E(t)
	src := e.container("orders", 12_000, "/region")
	for i := 0; i < 50; i++ {
		put(t, src, regions[i%len(regions)], order(i, 1))
	}
	time.Sleep(1100 * time.Millisecond) // If-Modified-Since has second granularity
	keys := []string{"/tenantId"}
	args := append([]string{"run", "--until-caught-up", "--create-target", "--start-from", "now"}, e.args("orders", "target", keys...)...)
	out, errOut, code := cli(t, context.Background(), args...)
	if code != 0 || !strings.Contains(out, "items read        0") {
		t.Fatalf("first run from now: exit %d\n%s%s", code, out, errOut)
	}
	put(t, src, regions[7%len(regions)], order(7, 2))
	put(t, src, regions[99%len(regions)], order(99, 1))
	// The resume says that it ignores "now" and where the migration started.
	out, errOut, code = cli(t, context.Background(), withFlag(args, "--log-level", "info")...)
	if code != 0 || !strings.Contains(out, "items read        2") {
		t.Fatalf("second run: exit %d\n%s%s", code, out, errOut)
	}
	said := regexp.MustCompile(`resuming from checkpoints; --start-from now ignored, the migration started at 20[0-9-]+T[0-9:]+Z`)
	if !said.MatchString(errOut) {
		t.Errorf("the resume with --start-from now does not say it ignores it:\n%s", errOut)
	}
	m, _ := e.srv.ContainerMetrics(testDB, "target")
	if m.Items != 2 {
		t.Fatalf("the target holds %d items, want only the 2 changed after the start", m.Items)
	}
	_, errOut, code = cli(t, context.Background(), append([]string{"run", "--start-from", "yesterday"}, e.args("orders", "target", keys...)...)...)
	if code != ExitError || !strings.Contains(errOut, "--start-from") {
		t.Fatalf("a bad --start-from: exit %d %s", code, errOut)
	}
}
