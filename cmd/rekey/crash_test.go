package main

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// crashRounds is how many times the crash test kills rekey: 5 in CI,
// REKEY_CRASH_ROUNDS for a longer soak.
func crashRounds(t *testing.T) int {
	if s := os.Getenv("REKEY_CRASH_ROUNDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("REKEY_CRASH_ROUNDS=%q: want a positive number", s)
		}
		return n
	}
	return 5
}

// rekey run killed with SIGKILL at random moments while the source keeps
// changing, then run with --until-caught-up: nothing missing, nothing
// changed, no duplicates.
func TestRunSurvivesKill9(t *testing.T) {
	e := newE2E(t)
	src := e.container("orders", 12_000, "/region")
	for i := 0; i < 1500; i++ {
		put(t, src, regions[i%len(regions)], order(i, 1))
	}
	keys := []string{"/tenantId", "/month={createdAt|yyyyMM}"}
	args := append([]string{"run", "--create-target", "--target-throughput", "40000", "--page-size", "50", "--poll-interval", "20ms"}, e.args("orders", "target", keys...)...)
	stop := make(chan struct{})
	deleted, wait := churn(t, src, 1500, stop)
	rng := rand.New(rand.NewPCG(7, 11))
	tgt := e.client.Container(testDB, "target")
	for round := 0; round < crashRounds(t); round++ {
		cmd, out := process(t, args...)
		// Kill at a random moment: sometimes before anything was written,
		// mostly in the middle of pages.
		time.Sleep(time.Duration(150+rng.IntN(900)) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		err := cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: want the process killed, got %v\n%s", round, err, out)
		}
		m, _ := e.srv.ContainerMetrics(testDB, "target")
		t.Logf("round %d: killed; target holds %d items", round, m.Items)
	}
	close(stop)
	wait()
	out, errOut, code := cli(t, context.Background(), append(args, "--until-caught-up")...)
	if code != 0 {
		t.Fatalf("final run: exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("final run after %d kills:\n%s", crashRounds(t), out)
	checkCopy(t, src, tgt, keys, []string{"/region"}, deleted)
}

// SIGTERM stops rekey run cleanly: in-flight pages are written and
// checkpointed and the process exits with 130 within the shutdown timeout.
// While it runs, a second rekey run on the same state is refused at once.
func TestRunSIGTERMAndLock(t *testing.T) {
	e := newE2E(t)
	src := e.container("orders", 12_000, "/region")
	for i := 0; i < 500; i++ {
		put(t, src, regions[i%len(regions)], order(i, 1))
	}
	keys := []string{"/tenantId"}
	args := append([]string{"run", "--create-target", "--target-throughput", "40000", "--shutdown-timeout", "5s", "--poll-interval", "20ms"}, e.args("orders", "target", keys...)...)
	cmd, out := process(t, args...)
	waitFor(t, 20*time.Second, "the first run to copy", func() bool {
		m, err := e.srv.ContainerMetrics(testDB, "target")
		return err == nil && m.Items >= 500
	})

	start := time.Now()
	second, secondErr, code := cli(t, context.Background(), args...)
	if code != ExitError || !strings.Contains(secondErr, "locked") || !strings.Contains(secondErr, strconv.Itoa(cmd.Process.Pid)) {
		t.Fatalf("a second run on the same state: exit %d, want 2 naming pid %d\n%s%s", code, cmd.Process.Pid, second, secondErr)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the second run took %v to be refused, want at once", d)
	}

	put(t, src, regions[9999%len(regions)], order(9999, 1)) // something in flight when the signal comes
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != ExitInterrupted {
			t.Fatalf("after SIGTERM: %v, want exit %d\n%s", err, ExitInterrupted, out)
		}
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("rekey run did not exit within its 5s shutdown timeout\n%s", out)
	}
	if !strings.Contains(out.String(), "interrupted; progress checkpointed") {
		t.Errorf("summary after SIGTERM:\n%s", out)
	}
	// Resuming reads nothing already checkpointed again (at most the item
	// written after the last checkpoint).
	res, errOut, code := cli(t, context.Background(), append(args, "--until-caught-up")...)
	if code != 0 {
		t.Fatalf("resume: exit %d\n%s%s", code, res, errOut)
	}
	if !strings.Contains(res, "items read        0") && !strings.Contains(res, "items read        1\n") {
		t.Errorf("the resume re-read checkpointed pages:\n%s", res)
	}
	checkCopy(t, src, e.client.Container(testDB, "target"), keys, []string{"/region"}, nil)
}
