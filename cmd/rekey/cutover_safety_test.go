package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rekey-dev/rekey/internal/cosmos"
	"github.com/rekey-dev/rekey/internal/emulator"
	"github.com/rekey-dev/rekey/migrate"
)

// These tests race the application against verify, --fix and cutover. The
// race is made deterministic with the emulator's fault API: a one-shot
// latency fault holds the first request of a kind that only the step under
// test makes, the test waits until that fault has fired (the step is then
// inside its window), writes as the application, and the held request goes
// on after the write.

var safetyKeys = []string{"/tenantId"}

// migrated copies n orders into the target and returns the emulator and
// both containers.
func migrated(t *testing.T, n int) (*e2e, *cosmos.Container, *cosmos.Container) {
	t.Helper()
	e := newE2E(t)
	src := e.container("orders", 12_000, "/region")
	for i := 0; i < n; i++ {
		put(t, src, region(i), order(i, 1))
	}
	run := append([]string{"run", "--until-caught-up", "--create-target", "--target-throughput", "12000"}, e.args("orders", "target", safetyKeys...)...)
	if out, errOut, code := cli(t, context.Background(), run...); code != 0 {
		t.Fatalf("run: exit %d\n%s%s", code, out, errOut)
	}
	return e, src, e.client.Container(testDB, "target")
}

func tenant(i int) string { return order(i, 1)["tenantId"].(string) }

func region(i int) string { return regions[i%len(regions)] }

type cliResult struct {
	out, errOut string
	code        int
}

// during runs rekey in the background, waits until the one-shot fault
// fires, runs app, and returns the command's result.
func during(t *testing.T, e *e2e, fault emulator.Fault, app func(), args ...string) cliResult {
	t.Helper()
	fault.Count = 1
	id, err := e.srv.InjectFault(fault)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan cliResult, 1)
	go func() {
		out, errOut, code := cli(t, context.Background(), args...)
		done <- cliResult{out, errOut, code}
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, waiting := e.srv.Faults()[id]; !waiting {
			break
		}
		select {
		case r := <-done:
			t.Fatalf("rekey %s ended before the fault fired: exit %d\n%s%s", args[0], r.code, r.out, r.errOut)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("rekey %s never made the request the fault waits for", args[0])
		}
	}
	app()
	return <-done
}

// jsonField digs a field out of a JSON document; nil when absent.
func jsonField(t *testing.T, doc string, path ...string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(doc), &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, doc)
	}
	for _, p := range path {
		m, _ := v.(map[string]any)
		v = m[p]
	}
	return v
}

func jsonCount(t *testing.T, doc string, path ...string) int {
	f, _ := jsonField(t, doc, path...).(float64)
	return int(f)
}

// sameItem reports whether the container holds body's content under key.
func sameItem(t *testing.T, c *cosmos.Container, key string, body map[string]any) bool {
	t.Helper()
	it, err := c.Read(context.Background(), keyOf(key), body["id"].(string))
	if err != nil {
		return false
	}
	want, _ := json.Marshal(body)
	a, _ := migrate.ContentDigest(it.Body, nil)
	b, _ := migrate.ContentDigest(want, nil)
	return a == b
}

// A stale target item whose source item the application writes while
// verify rechecks it is still a difference: verify compares the new version
// and reports it in flight. Before, a moved _ts settled it and verify exited
// 0, "the copy matches".
func TestVerifyReportsAStaleItemWrittenDuringItsRecheck(t *testing.T) {
	e, src, tgt := migrated(t, 20)
	stale := order(3, 1)
	stale["total"] = -1.0
	put(t, tgt, tenant(3), stale)
	it, err := src.Read(context.Background(), keyOf(region(3)), itemID(3))
	if err != nil {
		t.Fatal(err)
	}
	ts := int64(jsonCount(t, string(it.Body), "_ts"))
	waitFor(t, 5*time.Second, "the next second, so the write moves _ts", func() bool { return time.Now().Unix() > ts })

	// The recheck's read of item 3 in the source waits 3 s; the application
	// writes item 3 meanwhile.
	r := during(t, e, emulator.Fault{Container: "orders", Operations: []string{"read"}, Latency: 3 * time.Second},
		func() { put(t, src, region(3), order(3, 2)) },
		append([]string{"verify", "-o", "json", "--recheck-delay", "1ms"}, e.args("orders", "target", safetyKeys...)...)...)
	if r.code != ExitDiffers || jsonField(t, r.out, "clean") != false {
		t.Fatalf("verify over a stale item: exit %d (want %d)\n%s%s", r.code, ExitDiffers, r.out, r.errOut)
	}
	if jsonCount(t, r.out, "changed", "count") != 1 || jsonCount(t, r.out, "inFlight") != 1 || !strings.Contains(r.out, `"inFlight": true`) {
		t.Fatalf("want item 3 changed and marked in flight:\n%s", r.out)
	}
}

// The application writes the source during the final verify, after the
// verify read the item. Cutover sees the change in the source's change feed
// after the verify, drains it and verifies again: the recorded cutover has
// the latest version in the target. Before, it recorded a stale copy.
func TestCutoverVerifiesAgainWhenTheSourceIsWrittenDuringItsVerify(t *testing.T) {
	e, src, tgt := migrated(t, 20)
	// A difference for the final verify to fix, so it rechecks: item 1's
	// copy was lost.
	if _, err := tgt.Delete(context.Background(), keyOf(tenant(1)), itemID(1), ""); err != nil {
		t.Fatal(err)
	}
	// The recheck's read of item 1 in the source (after both scans) waits
	// 3 s; the application writes item 5 meanwhile.
	r := during(t, e, emulator.Fault{Container: "orders", Operations: []string{"read"}, Latency: 3 * time.Second},
		func() { put(t, src, region(5), order(5, 2)) },
		append([]string{"cutover", "--quiet-period", "300ms", "--timeout", "2m", "--recheck-delay", "1ms"}, e.args("orders", "target", safetyKeys...)...)...)
	if r.code != 0 || !strings.Contains(r.out, "cutover recorded at") {
		t.Fatalf("cutover: exit %d\n%s%s", r.code, r.out, r.errOut)
	}
	if !strings.Contains(r.out, "the source changed during the final verify") {
		t.Errorf("cutover did not say it verified again:\n%s", r.out)
	}
	checkCopy(t, src, tgt, safetyKeys, []string{"/region"}, nil)
	if !sameItem(t, tgt, tenant(5), order(5, 2)) {
		t.Fatal("the target does not hold the latest version of item 5")
	}
}

// Once a cutover is recorded the application owns the target: run,
// deadletter replay, verify --fix and a second cutover refuse with exit 2,
// naming the cutover, and the target keeps the application's writes. Plain
// verify still reads.
func TestAfterCutoverNothingWritesToTheTarget(t *testing.T) {
	e, src, tgt := migrated(t, 20)
	args := func(cmd ...string) []string { return append(cmd, e.args("orders", "target", safetyKeys...)...) }
	if r := runCLI(t, args("cutover", "--quiet-period", "300ms", "--recheck-delay", "1ms")...); r.code != 0 {
		t.Fatalf("cutover: exit %d\n%s%s", r.code, r.out, r.errOut)
	}
	st := statusJSON(t, e)
	if st.Meta.Cutover == nil {
		t.Fatal("no cutover recorded")
	}
	at := st.Meta.Cutover.At.Format(time.RFC3339)

	// The application writes to the target now: a new item and an update.
	put(t, tgt, tenant(100), order(100, 1))
	put(t, tgt, tenant(2), order(2, 9))
	put(t, src, region(4), order(4, 3)) // and something still writes the source
	before := snapshot(t, tgt)

	for _, cmd := range [][]string{
		append(args("run", "--until-caught-up"), "--log-level", "info"), // it must refuse before it says it starts
		args("deadletter", "replay"),
		args("verify", "--fix", "--recheck-delay", "1ms"),
		args("cutover", "--quiet-period", "300ms"),
	} {
		r := runCLI(t, cmd...)
		if r.code != ExitError || !strings.Contains(r.errOut, "has been cut over at "+at) || !strings.Contains(r.errOut, "refused") {
			t.Errorf("%s after the cutover: exit %d (want %d)\n%s%s", strings.Join(cmd[:2], " "), r.code, ExitError, r.out, r.errOut)
		}
		if strings.Contains(r.errOut, "migration starting") {
			t.Errorf("%s after the cutover says it starts before it refuses:\n%s", strings.Join(cmd[:2], " "), r.errOut)
		}
	}
	if after := snapshot(t, tgt); after != before {
		t.Fatalf("the target changed after the cutover:\nbefore %s\nafter  %s", before, after)
	}
	r := runCLI(t, args("verify", "-o", "json", "--recheck-delay", "-1s")...)
	if r.code != ExitDiffers || jsonCount(t, r.out, "extra", "count") != 1 || jsonCount(t, r.out, "changed", "count") != 2 {
		t.Fatalf("plain verify after the cutover: exit %d\n%s%s", r.code, r.out, r.errOut)
	}
}

func runCLI(t *testing.T, args ...string) cliResult {
	t.Helper()
	out, errOut, code := cli(t, context.Background(), args...)
	return cliResult{out, errOut, code}
}

// snapshot lists a container's items by id and content digest.
func snapshot(t *testing.T, c *cosmos.Container) string {
	t.Helper()
	var lines []string
	for _, body := range all(t, c) {
		d, err := migrate.ContentDigest(body, nil)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, jsonField(t, string(body), "id").(string)+"="+d.String())
	}
	slices.Sort(lines)
	return strings.Join(lines, " ")
}

// The commands that continue a migration refuse an empty state with exit 2
// and create nothing.
func TestCommandsThatContinueAMigrationCreateNoState(t *testing.T) {
	e := newE2E(t)
	e.container("orders", 12_000, "/region")
	e.container("target", 12_000, "/tenantId")
	for _, cmd := range [][]string{{"cutover"}, {"deadletter", "replay"}, {"verify", "--fix"}} {
		r := runCLI(t, append(cmd, e.args("orders", "target", safetyKeys...)...)...)
		if r.code != ExitError || !strings.Contains(r.errOut, "no migration in state") {
			t.Errorf("%s on an empty state: exit %d (want %d)\n%s%s", cmd[0], r.code, ExitError, r.out, r.errOut)
		}
		if _, err := os.Stat(e.state); !os.IsNotExist(err) {
			t.Fatalf("%s created %s (%v)", cmd[0], e.state, err)
		}
	}
	if _, err := os.Stat(filepath.Join(e.state, "state.json")); !os.IsNotExist(err) {
		t.Fatal("a state was created")
	}
}

// The application writes three items in the target between verify's
// examination and its fix: the fix's delete (an extra item), replace (a
// changed one) and copy (a missing one) are conditional on what verify
// compared, so each finds a newer version and leaves it. Before, the delete
// was unconditional and the copy replaced whatever it found.
func TestVerifyFixNeverOverwritesAnApplicationWrite(t *testing.T) {
	e, src, tgt := migrated(t, 20)
	ctx := context.Background()
	if _, err := src.Delete(ctx, keyOf(region(1)), itemID(1), ""); err != nil { // extra
		t.Fatal(err)
	}
	stale := order(2, 1)
	stale["total"] = -1.0
	put(t, tgt, tenant(2), stale)                                               // changed
	if _, err := tgt.Delete(ctx, keyOf(tenant(3)), itemID(3), ""); err != nil { // missing
		t.Fatal(err)
	}
	app := map[int]map[string]any{1: order(1, 50), 2: order(2, 51), 3: order(3, 52)}
	// The fix's first write to the target waits 3 s; the application writes
	// the three items meanwhile.
	r := during(t, e, emulator.Fault{Container: "target", Operations: []string{"write"}, Latency: 3 * time.Second},
		func() {
			for i, body := range app {
				put(t, tgt, tenant(i), body)
			}
		},
		append([]string{"verify", "--fix", "-o", "json", "--recheck-delay", "1ms"}, e.args("orders", "target", safetyKeys...)...)...)
	if r.code != ExitDiffers {
		t.Errorf("verify --fix: exit %d (want %d)\n%s%s", r.code, ExitDiffers, r.out, r.errOut)
	}
	for i, body := range app {
		if !sameItem(t, tgt, tenant(i), body) {
			t.Errorf("the fix overwrote the application's write of item %d", i)
		}
	}
	if jsonCount(t, r.out, "fix", "deleted") != 0 || jsonCount(t, r.out, "fix", "copied") != 0 ||
		jsonCount(t, r.out, "fix", "skipped") != 3 || jsonCount(t, r.out, "fix", "remaining") != 3 {
		t.Fatalf("fix report:\n%s", r.out)
	}
}

// An item too large for the target is dead-lettered. Verify classifies it
// as dead-lettered, not missing, so cutover --accept-dead-letter accepts
// it; a fix that tries it again (its dead letter lost) counts it as
// dead-lettered, not as copied.
func TestAcceptedDeadLettersDoNotBlockCutover(t *testing.T) {
	e := newE2E(t)
	src := e.container("orders", 12_000, "/region")
	for i := 0; i < 10; i++ {
		put(t, src, region(i), order(i, 1))
	}
	keys := []string{"/pk={tenantId}-{createdAt|yyyyMM}"}
	big := bigOrder(t, src, 10, `,"pk":"tenant-10-202411"`)
	put(t, src, region(10), big)
	args := func(cmd ...string) []string { return append(cmd, e.args("orders", "target", keys...)...) }
	if r := runCLI(t, args("run", "--until-caught-up", "--create-target", "--target-throughput", "12000")...); r.code != 0 || !strings.Contains(r.out, "dead-lettered     1 now") {
		t.Fatalf("run: exit %d\n%s%s", r.code, r.out, r.errOut)
	}

	r := runCLI(t, args("verify", "-o", "json", "--recheck-delay", "-1s")...)
	if r.code != ExitDiffers || jsonCount(t, r.out, "missing", "count") != 0 || jsonCount(t, r.out, "deadLettered", "count") != 1 {
		t.Errorf("verify: exit %d, want the big item dead-lettered, not missing\n%s%s", r.code, r.out, r.errOut)
	}
	other := filepath.Join(t.TempDir(), "other.jsonl")
	r = runCLI(t, args("verify", "--fix", "-o", "json", "--recheck-delay", "-1s", "--dead-letter", other)...)
	if r.code != ExitDiffers || jsonCount(t, r.out, "fix", "copied") != 0 || jsonCount(t, r.out, "fix", "deadLettered") != 1 || jsonCount(t, r.out, "deadLettered", "count") != 1 {
		t.Errorf("verify --fix with the dead letter lost: exit %d\n%s%s", r.code, r.out, r.errOut)
	}

	r = runCLI(t, args("cutover", "--quiet-period", "300ms", "--recheck-delay", "1ms")...)
	if r.code != ExitRefused || !strings.Contains(r.errOut, "1 items could not be copied") {
		t.Fatalf("cutover without accepting: exit %d\n%s%s", r.code, r.out, r.errOut)
	}
	r = runCLI(t, args("cutover", "--quiet-period", "300ms", "--recheck-delay", "1ms", "--accept-dead-letter")...)
	if r.code != 0 || !strings.Contains(r.out, "cutover recorded at") {
		t.Fatalf("cutover --accept-dead-letter: exit %d\n%s%s", r.code, r.out, r.errOut)
	}
}

// bigOrder is order i with a blob that makes it fit the source's 2 MB item
// limit, but not once the target's key field (added, as JSON) is in it. It
// measures what the service adds to a stored item (its system properties).
func bigOrder(t *testing.T, src *cosmos.Container, i int, added string) map[string]any {
	t.Helper()
	probe := order(i, 1)
	probe["blob"] = ""
	put(t, src, region(i), probe)
	stored, err := src.Read(context.Background(), keyOf(region(i)), itemID(i))
	if err != nil {
		t.Fatal(err)
	}
	sent, _ := json.Marshal(probe)
	system := len(stored.Body) - len(sent)
	probe["blob"] = strings.Repeat("b", 2*1024*1024-len(sent)-system-len(added)/2)
	return probe
}
