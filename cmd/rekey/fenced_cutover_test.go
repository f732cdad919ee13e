package main

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// jobArgs are a Kubernetes Job pod's arguments: a shared cosmos:// state,
// a short lease TTL so that the test's waits are short.
func jobArgs(e *e2e, keys []string, extra ...string) []string {
	e.state = "cosmos://rekey/leases"
	a := append([]string{"run", "--create-target", "--target-throughput", "12000", "--lease-ttl", "2s", "--poll-interval", "50ms"}, extra...)
	return append(a, e.args("orders", "target", keys...)...)
}

// startWorker starts rekey as a child process and returns a channel that gets
// its exit code and output once it exits; it is killed if the test ends
// first.
func startWorker(t *testing.T, args ...string) <-chan workerExit {
	t.Helper()
	cmd, out := process(t, args...)
	done := make(chan workerExit, 1)
	go func() {
		err := cmd.Wait()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			code = -1
		}
		done <- workerExit{code: code, out: out}
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return done
}

type workerExit struct {
	code int
	out  *bytes.Buffer
}

// waitExit waits for a worker to exit.
func waitExit(t *testing.T, name string, done <-chan workerExit, d time.Duration) workerExit {
	t.Helper()
	select {
	case w := <-done:
		return w
	case <-time.After(d):
		t.Fatalf("%s did not exit within %v", name, d)
	}
	return workerExit{}
}

// Two workers of a Kubernetes Job (rekey run --until-cutover on one lease
// container) sync the source while the application writes. A dry run
// stops them while it drains and they resume after it. The cutover asks
// them to stop, waits for them, drains, verifies and records; both exit 0
// after it, and the copy verifies clean. A pod restarted after the cutover
// exits 0 at once; a plain run refuses.
func TestJobWorkersStopAtTheCutover(t *testing.T) {
	e := newE2E(t)
	src := e.container("orders", 24_000, "/region") // 4 feed ranges
	for i := 0; i < 300; i++ {
		put(t, src, regions[i%len(regions)], order(i, 1))
	}
	keys := []string{"/tenantId"}
	args := jobArgs(e, keys, "--until-cutover")
	a := startWorker(t, args...)
	b := startWorker(t, args...)
	store := sharedStore(t, e, "orders", "target")
	ctx := context.Background()
	// Both workers run; between them they hold every lease, caught up (a
	// worker that joins late may hold none yet: it is a worker all the
	// same, and must stop for the cutover).
	waitFor(t, 90*time.Second, "the workers to hold every lease and catch up", func() bool {
		for name, done := range map[string]<-chan workerExit{"worker A": a, "worker B": b} {
			select {
			case w := <-done:
				t.Fatalf("%s exited early: %d\n%s", name, w.code, w.out)
			default:
			}
		}
		ls, err := store.List(ctx)
		if err != nil || len(ls) != 4 {
			return false
		}
		for _, l := range ls {
			if l.Owner == "" || l.CaughtUpAt.IsZero() {
				return false
			}
		}
		return true
	})
	// The application writes while the workers sync, then stops.
	for i := 300; i < 320; i++ {
		put(t, src, regions[i%len(regions)], order(i, 2))
	}
	put(t, src, region(7), order(7, 5))

	// A dry run stops the workers while it drains, withdraws its request,
	// and they resume: neither exits, and they take every lease again.
	r := runCLI(t, append([]string{"cutover", "--dry-run", "--lease-ttl", "2s", "--quiet-period", "500ms", "--recheck-delay", "1ms"}, e.args("orders", "target", keys...)...)...)
	if r.code != 0 || !strings.Contains(r.out, "every check passed") || !strings.Contains(r.out, "waiting for the workers to stop") {
		t.Fatalf("cutover --dry-run: exit %d\n%s%s", r.code, r.out, r.errOut)
	}
	waitFor(t, 60*time.Second, "the workers to resume after the dry run", func() bool {
		for name, done := range map[string]<-chan workerExit{"worker A": a, "worker B": b} {
			select {
			case w := <-done:
				t.Fatalf("%s exited after a dry run: %d\n%s", name, w.code, w.out)
			default:
			}
		}
		ls, err := store.List(ctx)
		if err != nil {
			return false
		}
		for _, l := range ls {
			if l.Owner == "" || l.Fence != "" {
				return false
			}
		}
		return len(ls) == 4
	})
	put(t, src, region(9), order(9, 6)) // synced by the resumed workers, or by the cutover

	out, errOut, code := cli(t, ctx, append([]string{"cutover", "--lease-ttl", "2s", "--quiet-period", "500ms", "--recheck-delay", "1ms"}, e.args("orders", "target", keys...)...)...)
	if code != 0 || !strings.Contains(out, "waiting for the workers to stop") || !strings.Contains(out, "cutover recorded at") {
		t.Fatalf("cutover: exit %d\n%s%s", code, out, errOut)
	}
	for name, done := range map[string]<-chan workerExit{"worker A": a, "worker B": b} {
		w := waitExit(t, name, done, 30*time.Second)
		if w.code != 0 || !strings.Contains(w.out.String(), "stopped for cutover") {
			t.Errorf("%s: exit %d, want 0 and stopped for cutover\n%s", name, w.code, w.out)
		}
	}
	r = runCLI(t, append([]string{"verify", "--recheck-delay", "1ms"}, e.args("orders", "target", keys...)...)...)
	if r.code != 0 || !strings.Contains(r.out, "the copy matches the source") {
		t.Fatalf("verify after the cutover: exit %d\n%s%s", r.code, r.out, r.errOut)
	}
	checkCopy(t, src, e.client.Container(testDB, "target"), keys, []string{"/region"}, nil)

	r = runCLI(t, args...)
	if r.code != 0 || !strings.Contains(r.out, "cut over; nothing to do") {
		t.Fatalf("a pod restarted after the cutover: exit %d\n%s%s", r.code, r.out, r.errOut)
	}
	plain := jobArgs(e, keys)
	r = runCLI(t, plain...)
	if r.code != ExitError || !strings.Contains(r.errOut, "has been cut over") {
		t.Fatalf("a plain run after the cutover: exit %d\n%s%s", r.code, r.out, r.errOut)
	}
	ls, err := store.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		if l.Owner != "" || l.Fence != "" {
			t.Errorf("after the cutover, lease %s: owner %q fence %q", l.ID, l.Owner, l.Fence)
		}
	}
}

// While a cutover runs, a second cutover is refused (exit 3, naming the
// first), and so are deadletter replay and verify --fix (exit 2); a worker
// started meanwhile waits and exits 0 once the first cutover is recorded.
func TestASecondCutoverIsRefused(t *testing.T) {
	e := newE2E(t)
	src := e.container("orders", 12_000, "/region")
	for i := 0; i < 50; i++ {
		put(t, src, regions[i%len(regions)], order(i, 1))
	}
	keys := []string{"/tenantId"}
	if r := runCLI(t, jobArgs(e, keys, "--until-caught-up")...); r.code != 0 {
		t.Fatalf("run: exit %d\n%s%s", r.code, r.out, r.errOut)
	}
	store := sharedStore(t, e, "orders", "target")
	ctx := context.Background()
	// The first cutover waits 4 s for quiet; the others come meanwhile.
	first := startWorker(t, append([]string{"cutover", "--lease-ttl", "2s", "--quiet-period", "4s", "--recheck-delay", "1ms"}, e.args("orders", "target", keys...)...)...)
	waitFor(t, 30*time.Second, "the first cutover's request", func() bool {
		m, err := store.ReadMeta(ctx)
		return err == nil && m.CutoverRequest != nil
	})
	late := startWorker(t, jobArgs(e, keys)...)
	if st := statusJSON(t, e, e.args("orders", "target", keys...)...); st.Phase != "cutting over" || st.Meta.CutoverRequest == nil {
		t.Errorf("status during the cutover: phase %q, request %+v", st.Phase, st.Meta.CutoverRequest)
	}

	r := runCLI(t, append([]string{"cutover", "--lease-ttl", "2s", "--quiet-period", "100ms"}, e.args("orders", "target", keys...)...)...)
	if r.code != ExitRefused || !strings.Contains(r.errOut, "a cutover is in progress") {
		t.Errorf("a second cutover: exit %d, want %d\n%s%s", r.code, ExitRefused, r.out, r.errOut)
	}
	for _, cmd := range [][]string{{"deadletter", "replay"}, {"verify", "--fix", "--recheck-delay", "1ms"}} {
		r := runCLI(t, append(cmd, e.args("orders", "target", keys...)...)...)
		if r.code != ExitError || !strings.Contains(r.errOut, "a cutover is in progress") {
			t.Errorf("%s during a cutover: exit %d, want %d\n%s%s", cmd[0], r.code, ExitError, r.out, r.errOut)
		}
	}
	if w := waitExit(t, "the first cutover", first, 60*time.Second); w.code != 0 {
		t.Fatalf("the first cutover: exit %d\n%s", w.code, w.out)
	}
	if w := waitExit(t, "the worker started during the cutover", late, 30*time.Second); w.code != 0 || !strings.Contains(w.out.String(), "stopped for cutover") {
		t.Fatalf("the worker started during the cutover: exit %d\n%s", w.code, w.out)
	}
}

// A worker killed while it holds leases never releases them: the cutover
// waits until they expire (its --lease-ttl), fences them and cuts over.
func TestCutoverWaitsForTheLeasesOfADeadWorker(t *testing.T) {
	e := newE2E(t)
	src := e.container("orders", 12_000, "/region")
	for i := 0; i < 50; i++ {
		put(t, src, regions[i%len(regions)], order(i, 1))
	}
	keys := []string{"/tenantId"}
	cmd, out := process(t, jobArgs(e, keys)...)
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	store := sharedStore(t, e, "orders", "target")
	ctx := context.Background()
	waitFor(t, 60*time.Second, "the worker to hold its leases, caught up", func() bool {
		ls, err := store.List(ctx)
		if err != nil || len(ls) == 0 {
			return false
		}
		for _, l := range ls {
			if l.Owner == "" || l.CaughtUpAt.IsZero() {
				return false
			}
		}
		return true
	})
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	ls, err := store.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var expiry time.Time // when the last of the dead worker's leases expires
	for _, l := range ls {
		if at := l.Timestamp.Add(2 * time.Second); at.After(expiry) {
			expiry = at
		}
	}
	r := runCLI(t, append([]string{"cutover", "--lease-ttl", "2s", "--quiet-period", "300ms", "--recheck-delay", "1ms"}, e.args("orders", "target", keys...)...)...)
	if r.code != 0 {
		t.Fatalf("cutover after a worker died: exit %d\n%s%s\nworker: %s", r.code, r.out, r.errOut, out)
	}
	if now := time.Now(); now.Before(expiry) {
		t.Fatalf("the cutover finished %v before the dead worker's leases expired: it took them while they were live", expiry.Sub(now))
	}
}
