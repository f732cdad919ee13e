package main

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rekey-dev/rekey/internal/emulator"
	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/transform"
)

// A worker stopped while a write of it is still with the service (a slow
// create its shutdown timeout gave up on) must not let that write land
// behind a recorded cutover: the create of an item the application deleted
// meanwhile lands after the worker exited, and the cutover waits for it
// (--max-request-time) and removes the orphan in its final verify. Before,
// the cutover verified and recorded at once, and the orphan landed in the
// target afterwards (simulator seeds 3413 and 1367).
func TestCutoverWaitsForAStoppedWorkersLateWrite(t *testing.T) {
	e := newE2E(t)
	src := e.container("orders", 4000, "/region")
	for i := 0; i < 20; i++ {
		put(t, src, region(i), order(i, 1))
	}
	keys := []string{"/tenantId"}
	runArgs := append([]string{"run", "--create-target", "--shutdown-timeout", "1s", "--poll-interval", "20ms"}, e.args("orders", "target", keys...)...)
	if out, errOut, code := cli(t, context.Background(), append(runArgs, "--until-caught-up")...); code != 0 {
		t.Fatalf("initial copy: exit %d\n%s%s", code, out, errOut)
	}

	// The next write to the target takes 6 s; the service applies it after
	// the worker gave up on it and exited.
	const late = 6 * time.Second
	id, err := e.srv.InjectFault(emulator.Fault{Container: "target", Operations: []string{"write", "batch", "bulk"}, Latency: late, Count: 1})
	if err != nil {
		t.Fatal(err)
	}
	cmd, out := process(t, runArgs...)
	const doomed = 100
	put(t, src, region(doomed), order(doomed, 1))
	sent := time.Now()
	waitFor(t, 30*time.Second, "the worker to send the slow write", func() bool { _, waiting := e.srv.Faults()[id]; return !waiting })
	if _, err := src.Delete(context.Background(), migrate.Key{transform.StringValue(region(doomed))}, itemID(doomed), ""); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != ExitInterrupted {
			t.Fatalf("run after SIGTERM: %v\n%s", err, out)
		}
	}
	if time.Since(sent) >= late {
		t.Skipf("the worker took %v to stop, longer than the slow write: nothing left in flight to test on this machine", time.Since(sent))
	}

	res, errOut, code := cli(t, context.Background(), append([]string{"cutover", "--quiet-period", "1s", "--max-request-time", "10s"}, e.args("orders", "target", keys...)...)...)
	if code != 0 {
		t.Fatalf("cutover: exit %d\n%s%s", code, res, errOut)
	}
	if !strings.Contains(res, "waiting") || !strings.Contains(res, "to take effect or lapse") {
		t.Errorf("cutover did not say it waits for the stopped worker's writes:\n%s", res)
	}
	// Whatever was in flight has landed by now.
	waitFor(t, 30*time.Second, "the slow write to land", func() bool { return time.Since(sent) > late+time.Second })
	checkCopy(t, src, e.client.Container(testDB, "target"), keys, []string{"/region"}, nil)
}
