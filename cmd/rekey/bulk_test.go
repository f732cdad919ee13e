package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rekey-dev/rekey/internal/cosmos"
	"github.com/rekey-dev/rekey/internal/emulator"
	"github.com/rekey-dev/rekey/internal/emulator/emulatortest"
	"github.com/rekey-dev/rekey/migrate"
)

// End-to-end tests of the bulk write path (rekey run's default): each
// operation of a bulk request answered on its own, a split of the target
// while it is copied into, a kill in the middle of bulk requests, and
// Entra ID tokens.

var bulkKeys = []string{"/tenantId"}

// bulkRequests is the number of bulk requests a run's summary reports.
func bulkRequests(t *testing.T, summary string) int {
	t.Helper()
	m := regexp.MustCompile(`(\d+) bulk requests`).FindStringSubmatch(summary)
	if m == nil {
		t.Fatalf("no bulk requests in the summary:\n%s", summary)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// deadLetters lists the migration's dead letters by source id.
func deadLetters(t *testing.T, e *e2e, keys []string) map[string]migrate.DeadLetter {
	t.Helper()
	out, errOut, code := cli(t, context.Background(), append([]string{"deadletter", "list", "-o", "json"}, e.args("orders", "target", keys...)...)...)
	if code != 0 {
		t.Fatalf("deadletter list: exit %d\n%s", code, errOut)
	}
	dead := map[string]migrate.DeadLetter{}
	for _, dl := range decodeDeadLetterList(t, out) {
		dead[dl.SourceID] = dl
	}
	return dead
}

// TestRunBulkHandlesEachOperationsAnswer: one bulk response carries a 429
// (resent after its retry-after), a 410 (routed again), a 413 (the item is
// dead-lettered) and 409s: an injected one (the existing item is read, is
// not there, and the item is created again), one on an older copy of the
// same source item (replaced with If-Match) and one on another source
// item's copy under the same id and new key (a collision, dead-lettered).
// Everything else is copied, nothing is overwritten silently.
func TestRunBulkHandlesEachOperationsAnswer(t *testing.T) {
	e := newE2E(t)
	src := e.container("orders", 12_000, "/region")
	// Items 5 and 7 are written last, so that they come in the last
	// requests: the injected faults fire on the first operations the
	// emulator serves, whichever they are, and must not hit those two.
	for i := 0; i < 300; i++ {
		if i != 5 && i != 7 {
			put(t, src, region(i), order(i, 2))
		}
	}
	put(t, src, region(5), order(5, 2))
	put(t, src, region(7), order(7, 2))
	tgt := e.container("target", 12_000, bulkKeys...)
	put(t, tgt, tenant(5), order(5, 1)) // an older copy of item 5
	collider := order(7, 1)
	collider["region"] = "nowhere" // another source item's copy under item 7's id and key
	put(t, tgt, tenant(7), collider)
	var faults []string
	for _, f := range []emulator.Fault{
		{Container: "target", BulkOperationStatus: 429, RetryAfter: 30 * time.Millisecond, Count: 2},
		{Container: "target", BulkOperationStatus: 410, Count: 1},
		{Container: "target", BulkOperationStatus: 413, Count: 1},
		{Container: "target", BulkOperationStatus: 409, Count: 1},
	} {
		id, err := e.srv.InjectFault(f)
		if err != nil {
			t.Fatal(err)
		}
		faults = append(faults, id)
	}
	out, errOut, code := cli(t, context.Background(), append([]string{"run", "--until-caught-up"}, e.args("orders", "target", bulkKeys...)...)...)
	if code != 0 {
		t.Fatalf("run: exit %d\n%s%s", code, out, errOut)
	}
	for _, id := range faults {
		if _, pending := e.srv.Faults()[id]; pending {
			t.Fatalf("fault %s never fired: %+v", id, e.srv.Faults()[id])
		}
	}
	if n := bulkRequests(t, out); n == 0 || n > 20 {
		t.Fatalf("%d bulk requests for 300 items", n)
	}
	dead := deadLetters(t, e, bulkKeys)
	var tooLarge string
	for id, dl := range dead {
		if dl.Kind == migrate.KindTooLarge {
			tooLarge = id
		}
	}
	if len(dead) != 2 || dead[itemID(7)].Kind != migrate.KindCollision || tooLarge == "" {
		t.Fatalf("dead letters %v, want item 7's collision and the item answered 413", dead)
	}
	if !sameItem(t, tgt, tenant(7), collider) {
		t.Fatal("the collision overwrote the other source item's copy")
	}
	if !sameItem(t, tgt, tenant(5), order(5, 2)) {
		t.Fatal("the older copy of item 5 was not replaced by its new version")
	}
	// Every other item is there once, as the source has it.
	m, err := e.srv.ContainerMetrics(testDB, "target")
	if err != nil {
		t.Fatal(err)
	}
	if m.Items != 299 { // 300, less the one answered 413, plus the collider
		t.Fatalf("target holds %d items, want 299", m.Items)
	}
	for i := 0; i < 300; i++ {
		if id := itemID(i); id != tooLarge && i != 7 && !sameItem(t, tgt, tenant(i), order(i, 2)) {
			t.Fatalf("item %d is not in the target as the source has it", i)
		}
	}
	if !strings.Contains(out, "updated 1") || !strings.Contains(out, "throttled (429)   2") {
		t.Fatalf("summary:\n%s", out)
	}
}

// TestRunBulkThroughATargetSplit: the target's partition splits while it is
// copied into in bulk; requests to the old range are answered 410 and their
// operations routed to the children. Every item is copied exactly once.
func TestRunBulkThroughATargetSplit(t *testing.T) {
	e := newE2E(t)
	src := e.container("orders", 12_000, "/region")
	for i := 0; i < 600; i++ {
		put(t, src, region(i), order(i, 1))
	}
	e.container("target", 6_000, bulkKeys...) // one partition, range "0"
	// Slow bulk requests, so that the split lands in the middle of the copy.
	slow, err := e.srv.InjectFault(emulator.Fault{Container: "target", Operations: []string{"bulk"}, Latency: 30 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer e.srv.RemoveFault(slow)
	split := make(chan error, 1)
	go func() {
		waitFor(t, 20*time.Second, "the copy to start", func() bool {
			m, err := e.srv.ContainerMetrics(testDB, "target")
			return err == nil && m.Items > 50
		})
		split <- e.srv.SplitRange(testDB, "target", "0")
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	out, errOut, code := cli(t, ctx, append([]string{"run", "--until-caught-up", "--page-size", "50"}, e.args("orders", "target", bulkKeys...)...)...)
	if code != 0 {
		t.Fatalf("run: exit %d\n%s%s", code, out, errOut)
	}
	if err := <-split; err != nil {
		t.Fatalf("split: %v", err)
	}
	tgt := e.client.Container(testDB, "target")
	ranges, err := tgt.PartitionKeyRanges(context.Background())
	if err != nil || len(ranges) != 2 {
		t.Fatalf("the target has %d ranges after the split (%v), want 2", len(ranges), err)
	}
	if bulkRequests(t, out) == 0 {
		t.Fatal("the run sent no bulk requests")
	}
	checkCopy(t, src, tgt, bulkKeys, []string{"/region"}, nil)
}

// TestRunBulkSurvivesKill9: rekey run killed with SIGKILL while bulk
// requests are in flight, then resumed until caught up: verify finds the
// copy clean.
func TestRunBulkSurvivesKill9(t *testing.T) {
	e := newE2E(t)
	src := e.container("orders", 12_000, "/region")
	seedOrderBatches(t, src, 3000)
	if _, err := e.srv.InjectFault(emulator.Fault{Container: "target", Operations: []string{"bulk"}, Latency: 20 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"run", "--create-target", "--target-throughput", "12000", "--page-size", "200", "--poll-interval", "20ms"}, e.args("orders", "target", bulkKeys...)...)
	for round := 0; round < 3; round++ {
		before, _ := e.srv.ContainerMetrics(testDB, "target")
		cmd, out := process(t, args...)
		waitFor(t, 30*time.Second, "bulk writes to land", func() bool {
			m, err := e.srv.ContainerMetrics(testDB, "target")
			return err == nil && m.Items > before.Items+200
		})
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		err := cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: want the process killed, got %v\n%s", round, err, out)
		}
		m, _ := e.srv.ContainerMetrics(testDB, "target")
		t.Logf("round %d: killed with %d items in the target", round, m.Items)
	}
	out, errOut, code := cli(t, context.Background(), append(args, "--until-caught-up")...)
	if code != 0 {
		t.Fatalf("final run: exit %d\n%s%s", code, out, errOut)
	}
	if bulkRequests(t, out) == 0 {
		t.Fatalf("the final run sent no bulk requests:\n%s", out)
	}
	vout, verr, vcode := cli(t, context.Background(), append([]string{"verify", "--recheck-delay", "1ms"}, e.args("orders", "target", bulkKeys...)...)...)
	if vcode != 0 {
		t.Fatalf("verify after the kills: exit %d\n%s%s", vcode, vout, verr)
	}
	checkCopy(t, src, e.client.Container(testDB, "target"), bulkKeys, []string{"/region"}, nil)
}

// seedOrderBatches writes n orders in transactional batches of one region.
func seedOrderBatches(t *testing.T, src *cosmos.Container, n int) {
	t.Helper()
	byRegion := map[string][][]byte{}
	for i := 0; i < n; i++ {
		b, _ := json.Marshal(order(i, 1))
		byRegion[region(i)] = append(byRegion[region(i)], b)
	}
	for r, bodies := range byRegion {
		for first := 0; first < len(bodies); first += 100 {
			chunk := bodies[first:min(first+100, len(bodies))]
			var res migrate.BatchResult
			err := migrate.Retry(context.Background(), func() error {
				var err error
				res, err = src.CreateBatch(context.Background(), keyOf(r), chunk)
				return err
			})
			if err != nil || !res.Committed {
				t.Fatalf("seed batch: %v %+v", err, res)
			}
		}
	}
}

// TestRunBulkWithEntraID: rekey run as a separate process, without a key,
// authenticates with Entra ID tokens through DefaultAzureCredential (the
// emulator's managed identity endpoint) against an account whose local
// (key) authentication is disabled, and copies in bulk requests.
func TestRunBulkWithEntraID(t *testing.T) {
	e := newE2E(t, emulatortest.WithEntra())
	src := e.container("orders", 12_000, "/region")
	for i := 0; i < 300; i++ {
		put(t, src, region(i), order(i, 1))
	}
	e.container("target", 12_000, bulkKeys...) // tokens cannot create containers
	if err := e.srv.SetLocalAuthDisabled(true); err != nil {
		t.Fatal(err)
	}
	args := []string{"run", "--until-caught-up", "--endpoint", e.srv.Endpoint(), "--insecure",
		"--source", testDB + "/orders", "--target", testDB + "/target", "--state", e.state, "--log-level", "warn", "--key", bulkKeys[0]}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), "REKEY_TEST_MAIN=1"), e.srv.ManagedIdentityEnv()...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("rekey run with Entra ID: %v\n%s", err, out)
	}
	if bulkRequests(t, string(out)) == 0 {
		t.Fatalf("the run sent no bulk requests:\n%s", out)
	}
	// With a key the run is refused (local authentication is disabled).
	refused, _, code := cli(t, context.Background(), append([]string{"run", "--until-caught-up"}, e.args("orders", "target", bulkKeys...)...)...)
	if code == 0 {
		t.Fatalf("a run with the key succeeded although local authentication is disabled:\n%s", refused)
	}
	if err := e.srv.SetLocalAuthDisabled(false); err != nil {
		t.Fatal(err)
	}
	checkCopy(t, src, e.client.Container(testDB, "target"), bulkKeys, []string{"/region"}, nil)
}
