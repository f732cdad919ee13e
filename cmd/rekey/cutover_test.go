package main

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rekey-dev/rekey/internal/emulator"
	"github.com/rekey-dev/rekey/migrate/status"
)

func statusJSON(t *testing.T, e *e2e, args ...string) status.Report {
	t.Helper()
	out, errOut, code := cli(t, context.Background(), append([]string{"status", "-o", "json", "--state", e.state}, args...)...)
	if code != 0 {
		t.Fatalf("status: exit %d\n%s%s", code, out, errOut)
	}
	var st status.Report
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status output %q: %v", out, err)
	}
	return st
}

// Cutover refuses before the initial copy is complete, while dead letters
// are pending, and while the source keeps changing; it succeeds once the
// writes stop, and status follows every phase.
func TestCutoverGates(t *testing.T) {
	e := newE2E(t)
	src := e.container("orders", 12_000, "/region")
	for i := 0; i < 200; i++ {
		put(t, src, regions[i%len(regions)], order(i, 1))
	}
	keys := []string{"/tenantId"}
	cutover := func(extra ...string) (string, string, int) {
		// The interrupted run below abandons a page: the cutover's wait
		// for its unanswered writes is kept short. The quiet period is the
		// shortest a cutover waits (1s); the timeout leaves room for a
		// verify that fixes and one more on a loaded machine.
		args := append([]string{"cutover", "--quiet-period", "1s", "--timeout", "15s", "--recheck-delay", "100ms", "--max-request-time", "1s"}, e.args("orders", "target", keys...)...)
		return cli(t, context.Background(), append(args, extra...)...)
	}

	// A run that cannot write anything: the copy is not complete.
	if _, err := e.client.Container(testDB, "orders").FeedRanges(context.Background()); err != nil {
		t.Fatal(err)
	}
	fault, err := e.srv.InjectFault(emulator.Fault{Container: "target", Operations: []string{"write", "batch", "bulk"}, Status: 429, RetryAfter: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	_, _, code := cli(t, ctx, append([]string{"run", "--create-target", "--target-throughput", "12000"}, e.args("orders", "target", keys...)...)...)
	cancel()
	if code != ExitInterrupted {
		t.Fatalf("the throttled run: exit %d, want %d", code, ExitInterrupted)
	}
	if st := statusJSON(t, e); st.Phase != status.PhaseCopying {
		t.Fatalf("phase %q, want copying", st.Phase)
	}
	out, errOut, code := cutover()
	if code != ExitRefused || !strings.Contains(errOut, "initial copy is not complete") {
		t.Fatalf("cutover before the copy: exit %d\n%s%s", code, out, errOut)
	}
	e.srv.RemoveFault(fault)

	// A dead letter: refused unless accepted.
	put(t, src, "eu", map[string]any{"id": "no-tenant", "region": "eu"})
	if out, errOut, code := cli(t, context.Background(), append([]string{"run", "--until-caught-up"}, e.args("orders", "target", keys...)...)...); code != 0 {
		t.Fatalf("run: exit %d\n%s%s", code, out, errOut)
	}
	st := statusJSON(t, e, e.args("orders", "target", keys...)...)
	if st.Phase != status.PhaseSyncing || st.DeadLetters != 1 || st.Items != 201 {
		t.Fatalf("status after the copy: %+v", st)
	}
	for _, r := range st.Ranges {
		if r.LagItems == nil || *r.LagItems != 0 {
			t.Fatalf("range %s: lag %v, want 0 after catching up", r.ID, r.LagItems)
		}
	}
	// Refused at once: before the workers are stopped, the drain, and the
	// quiet wait for which the application's writes must be stopped.
	out, errOut, code = cutover()
	if code != ExitRefused || !strings.Contains(errOut, "1 items could not be copied") || strings.Contains(out, "requesting the cutover") || strings.Contains(out, "draining") {
		t.Fatalf("cutover with a dead letter: exit %d\n%s%s", code, out, errOut)
	}
	if _, err := src.Delete(context.Background(), keyOf("eu"), "no-tenant", ""); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = cutover("--accept-dead-letter", "--dry-run")
	if code != 0 || !strings.Contains(out, "every check passed") {
		t.Fatalf("dry run on a clean copy: exit %d\n%s%s", code, out, errOut)
	}

	// The application keeps writing: refused after the timeout. Status
	// sees the lag meanwhile.
	stop := make(chan struct{})
	deleted, wait := churn(t, src, 200, stop)
	time.Sleep(200 * time.Millisecond)
	lagged := statusJSON(t, e, e.args("orders", "target", keys...)...)
	var behind int64
	for _, r := range lagged.Ranges {
		behind += *r.LagItems
	}
	if behind == 0 {
		t.Errorf("status shows no lag while the source changes")
	}
	out, errOut, code = cutover("--accept-dead-letter", "--timeout", "3s")
	close(stop)
	wait()
	if code != ExitRefused || !strings.Contains(errOut, "still being written") || !strings.Contains(out, "the application's writes to the source must be stopped") {
		t.Fatalf("cutover while writing: exit %d\n%s%s", code, out, errOut)
	}

	// Writes stopped. The deletes left extra copies in the target, which a
	// dry run reports apart, as what the cutover would fix, without
	// refusing; the cutover fixes them.
	out, errOut, code = cutover("--accept-dead-letter", "--dry-run")
	wouldFix := regexp.MustCompile(`cutover would fix ([1-9][0-9]*) differences first: 0 missing, ([1-9][0-9]*) extra, 0 changed, 0 orphaned`)
	if m := wouldFix.FindStringSubmatch(out); code != 0 || m == nil || m[1] != m[2] || !strings.Contains(out, "every check passed") {
		t.Fatalf("dry run after deletes: exit %d\n%s%s", code, out, errOut)
	}
	if st := statusJSON(t, e); st.Phase == status.PhaseCutOver {
		t.Fatal("a dry run recorded the cutover")
	}
	out, errOut, code = cutover("--accept-dead-letter")
	if code != 0 || !strings.Contains(out, "cutover recorded at") || !strings.Contains(out, "point the application at shop/target") {
		t.Fatalf("cutover: exit %d\n%s%s", code, out, errOut)
	}
	st = statusJSON(t, e)
	if st.Phase != status.PhaseCutOver || st.Meta.Cutover == nil || st.Meta.Cutover.VerifyDigest == "" || st.Meta.Cutover.Items == 0 {
		t.Fatalf("status after the cutover: %+v", st)
	}
	checkCopy(t, src, e.client.Container(testDB, "target"), keys, []string{"/region"}, deleted)
}
