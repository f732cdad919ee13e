package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rekey-dev/rekey/internal/emulator"
)

// stall makes the requests of ops on container hang for a minute, and
// returns a func that reports whether one of them has started.
func stall(t *testing.T, e *e2e, container string, ops ...string) (id string, started func() bool) {
	t.Helper()
	id, err := e.srv.InjectFault(emulator.Fault{Database: testDB, Container: container, Operations: ops, Latency: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return id, func() bool { return e.srv.Faults()[id].Fired > 0 }
}

// liveProcess starts rekey as a child process whose output the test may
// read while it runs.
func liveProcess(t *testing.T, args ...string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	out := &syncBuffer{}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "REKEY_TEST_MAIN=1")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, out
}

// exitCodeOf returns a channel that gets cmd's exit code when it exits.
func exitCodeOf(cmd *exec.Cmd) <-chan int {
	done := make(chan int, 1)
	go func() {
		err := cmd.Wait()
		var ee *exec.ExitError
		switch {
		case err == nil:
			done <- 0
		case errors.As(err, &ee):
			done <- ee.ExitCode()
		default:
			done <- -1
		}
	}()
	return done
}

// exitWithin returns the exit code from done, failing the test when it
// does not come within d.
func exitWithin(t *testing.T, cmd *exec.Cmd, done <-chan int, out fmt.Stringer, d time.Duration) int {
	t.Helper()
	select {
	case code := <-done:
		return code
	case <-time.After(d):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("still running %v after the signal\n%s", d, out)
	}
	return -1
}

// The first Ctrl+C says what it finishes and waits for it; the second
// abandons the pages in flight and exits 130 at once, well before the
// shutdown timeout; the resume copies everything.
func TestCtrlCTwiceStopsAtOnce(t *testing.T) {
	e := newE2E(t)
	src := e.container("orders", 12_000, "/region")
	for i := 0; i < 300; i++ {
		put(t, src, regions[i%len(regions)], order(i, 1))
	}
	e.container("target", 12_000, "/tenantId")
	keys := []string{"/tenantId"}
	fault, writing := stall(t, e, "target", "write", "batch", "bulk")
	args := append([]string{"run", "--shutdown-timeout", "5m", "--page-size", "50", "--poll-interval", "20ms"}, e.args("orders", "target", keys...)...)
	args = withFlag(args, "--log-level", "info")
	cmd, out := liveProcess(t, append(args, "--log-format", "text")...)
	done := exitCodeOf(cmd)
	waitFor(t, 30*time.Second, "a write in flight", writing)

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	stopping := regexp.MustCompile(`stopping: finishing ([1-9][0-9]*) pages? in flight; Ctrl\+C again to stop now`)
	waitFor(t, 10*time.Second, "the first Ctrl+C's line", func() bool { return stopping.MatchString(out.String()) })
	select {
	case code := <-done:
		t.Fatalf("the first Ctrl+C did not wait for the pages in flight: exit %d\n%s", code, out)
	case <-time.After(300 * time.Millisecond):
	}
	second := time.Now()
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := exitWithin(t, cmd, done, out, 20*time.Second); code != ExitInterrupted {
		t.Fatalf("after the second Ctrl+C: exit %d, want %d\n%s", code, ExitInterrupted, out)
	}
	t.Logf("exited %v after the second Ctrl+C:\n%s", time.Since(second).Round(time.Millisecond), out)
	if !strings.Contains(out.String(), "abandoning the pages in flight") {
		t.Errorf("the second Ctrl+C says nothing:\n%s", out)
	}

	e.srv.RemoveFault(fault)
	res, errOut, code := cli(t, context.Background(), append(args, "--until-caught-up")...)
	if code != 0 {
		t.Fatalf("resume: exit %d\n%s%s", code, res, errOut)
	}
	checkCopy(t, src, e.client.Container(testDB, "target"), keys, []string{"/region"}, nil)
}

// SIGINT exits 130 from every command, whatever it was waiting for.
func TestSIGINTExits130FromEveryCommand(t *testing.T) {
	e, base := caughtUpMigration(t)
	for _, c := range []struct {
		name  string
		args  []string
		stall string   // the container whose requests hang
		ops   []string // which of them
	}{
		{"plan", []string{"plan"}, "orders", []string{"read", "query", "changefeed"}},
		{"verify", []string{"verify"}, "target", []string{"read", "query", "changefeed"}},
		{"cutover", []string{"cutover", "--dry-run"}, "orders", []string{"changefeed"}},
		{"deadletter replay", []string{"deadletter", "replay"}, "orders", []string{"metadata"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			fault, waiting := stall(t, e, c.stall, c.ops...)
			defer e.srv.RemoveFault(fault)
			cmd, out := liveProcess(t, append(c.args, base...)...)
			done := exitCodeOf(cmd)
			waitFor(t, 30*time.Second, c.name+" to wait on the emulator", waiting)
			if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			if code := exitWithin(t, cmd, done, out, 20*time.Second); code != ExitInterrupted {
				t.Errorf("exit %d, want %d\n%s", code, ExitInterrupted, out)
			}
		})
	}
}
