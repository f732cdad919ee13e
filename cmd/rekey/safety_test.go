package main

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rekey-dev/rekey/internal/emulator"
	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/transform"
)

// The data-safety tests: each tries to break one promise of "How the copy
// stays correct" with the emulator's faults, a kill at the worst moment or
// a second worker.

// sourceOfOrders creates src and fills it with n orders.
func sourceOfOrders(t *testing.T, e *e2e, src string, ru, n int) {
	t.Helper()
	c := e.container(src, ru, "/region")
	for i := 0; i < n; i++ {
		put(t, c, regions[i%len(regions)], order(i, 1))
	}
}

// fileStateWithLeases records a migration in a file state as `rekey run`
// does and creates the leases of the first n of its source's feed ranges
// only: the state a crash leaves while the first leases are written.
func fileStateWithLeases(t *testing.T, e *e2e, src, dst string, keys []string, n int) (total int) {
	t.Helper()
	ctx := context.Background()
	spec, err := transform.ParseSpec(keys)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := transform.New(spec, []string{"/region"})
	if err != nil {
		t.Fatal(err)
	}
	ranges, err := e.client.Container(testDB, src).FeedRanges(ctx)
	if err != nil {
		t.Fatal(err)
	}
	store, err := lease.OpenFile(e.state)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	host := strings.TrimPrefix(strings.TrimSuffix(e.srv.Endpoint(), "/"), "https://")
	meta := migrate.NewMeta(host+"/"+testDB+"/"+src, host+"/"+testDB+"/"+dst, tr, time.Time{})
	if _, err := store.Init(ctx, meta); err != nil {
		t.Fatal(err)
	}
	for _, fr := range ranges[:n] {
		r := lease.Range{Min: fr.Min, Max: fr.Max}
		if _, err := store.Create(ctx, lease.Lease{ID: lease.TokenFor(r), Range: r}); err != nil {
			t.Fatal(err)
		}
	}
	return len(ranges)
}

// A crash while the first leases are created leaves some feed ranges
// without a lease. The next start must cover the whole source: before the
// fix it followed the ranges it found and exited "caught up" with items
// missing.
func TestRunFillsTheLeasesACrashLeftOut(t *testing.T) {
	e := newE2E(t)
	sourceOfOrders(t, e, "orders", 100_000, 1500) // 17 physical partitions
	keys := []string{"/tenantId"}
	e.container("target", 40_000, keys[0])
	total := fileStateWithLeases(t, e, "orders", "target", keys, 8)
	if total != 17 {
		t.Fatalf("the source has %d feed ranges, want 17", total)
	}
	out, errOut, code := cli(t, context.Background(), append([]string{"run", "--until-caught-up", "--poll-interval", "20ms"}, e.args("orders", "target", keys...)...)...)
	if code != 0 || !strings.Contains(out, "(17 feed ranges)") {
		t.Fatalf("resume: exit %d\n%s%s", code, out, errOut)
	}
	checkCopy(t, e.client.Container(testDB, "orders"), e.client.Container(testDB, "target"), keys, []string{"/region"}, nil)
}

// The same crash with leases in a lease container, killed for real: the
// lease container answers slowly, so the worker is killed after some of its
// 17 leases exist; a second worker then completes the copy.
func TestRunSharedKilledWhileCreatingLeases(t *testing.T) {
	e := newE2E(t)
	sourceOfOrders(t, e, "orders", 100_000, 1500)
	keys := []string{"/tenantId"}
	e.state = "cosmos://rekey/leases"
	args := append([]string{"run", "--create-target", "--target-throughput", "40000", "--poll-interval", "20ms", "--lease-ttl", "2s"}, e.args("orders", "target", keys...)...)
	// Create the lease container first, so that only lease writes are slow.
	if err := e.client.EnsureLeaseContainer(context.Background(), "rekey", "leases"); err != nil {
		t.Fatal(err)
	}
	slow, err := e.srv.InjectFault(emulator.Fault{Database: "rekey", Container: "leases", Operations: []string{"write"}, Latency: 150 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	cmd, out := process(t, args...)
	store := sharedStore(t, e, "orders", "target")
	waitFor(t, 30*time.Second, "the first leases", func() bool {
		ls, err := store.List(context.Background())
		return err == nil && len(ls) >= 3
	})
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	ls, err := store.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) >= 17 {
		t.Fatalf("the worker created all %d leases before it was killed; the test needs it killed halfway\n%s", len(ls), out)
	}
	t.Logf("killed with %d of 17 leases created", len(ls))
	e.srv.RemoveFault(slow)
	res, errOut, code := cli(t, context.Background(), append(args, "--until-caught-up")...)
	if code != 0 {
		t.Fatalf("second worker: exit %d\n%s%s", code, res, errOut)
	}
	checkCopy(t, e.client.Container(testDB, "orders"), e.client.Container(testDB, "target"), keys, []string{"/region"}, nil)
}

// sharedStore opens the lease container of a cosmos:// migration.
func sharedStore(t *testing.T, e *e2e, src, dst string) lease.Store {
	t.Helper()
	store, err := lease.NewCosmos(e.client.LeaseDocuments("rekey", "leases"), leasePrefix(mustRef(t, testDB+"/"+src), mustRef(t, testDB+"/"+dst)))
	if err != nil {
		t.Fatal(err)
	}
	return store
}

// A migration started --start-from now and killed before its first
// checkpoint resumes from the start it recorded, not from a new "now":
// before the fix every item changed between the two starts was lost.
func TestRunResumesFromTheRecordedStart(t *testing.T) {
	e := newE2E(t)
	sourceOfOrders(t, e, "orders", 12_000, 50)
	time.Sleep(1100 * time.Millisecond) // a start time has second granularity
	keys := []string{"/tenantId"}
	args := append([]string{"run", "--create-target", "--target-throughput", "12000", "--start-from", "now", "--poll-interval", "20ms"}, e.args("orders", "target", keys...)...)
	// Every change-feed read takes long, so the worker is killed after it
	// recorded its start and created its leases, before any checkpoint.
	slow, err := e.srv.InjectFault(emulator.Fault{Container: "orders", Operations: []string{"changefeed"}, Latency: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	cmd, out := process(t, args...)
	waitFor(t, 20*time.Second, "the leases", func() bool {
		m, err := filepath.Glob(filepath.Join(e.state, "leases", "*.json"))
		return err == nil && len(m) == 2
	})
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	e.srv.RemoveFault(slow)

	time.Sleep(1100 * time.Millisecond)
	src := e.client.Container(testDB, "orders")
	changed := map[string]bool{}
	for _, i := range []int{3, 17, 60, 61} { // two updates, two creates between the starts
		put(t, src, regions[i%len(regions)], order(i, 2))
		changed[itemID(i)] = true
	}
	time.Sleep(1100 * time.Millisecond)
	res, errOut, code := cli(t, context.Background(), append(args, "--until-caught-up")...)
	if code != 0 {
		t.Fatalf("resume: exit %d\n%s%s\nfirst run:\n%s", code, res, errOut, out)
	}
	got := map[string]bool{}
	for _, body := range all(t, e.client.Container(testDB, "target")) {
		id, _, err := mustTransformer(t, keys).SourceKeyOf(body)
		if err != nil {
			t.Fatal(err)
		}
		got[id] = true
	}
	for id := range changed {
		if !got[id] {
			t.Errorf("item %s, changed between the first start and the resume, is not in the target", id)
		}
	}
	if len(got) != len(changed) {
		t.Errorf("the target holds %d items, want the %d changed after the recorded start", len(got), len(changed))
	}

	// An explicit start that contradicts the recorded one is refused.
	_, errOut, code = cli(t, context.Background(), append([]string{"run", "--until-caught-up", "--start-from", "beginning"}, e.args("orders", "target", keys...)...)...)
	if code != ExitError || !strings.Contains(errOut, "started from") {
		t.Fatalf("--start-from beginning on a migration started from now: exit %d %s", code, errOut)
	}
}

func mustTransformer(t *testing.T, keys []string) *transform.Transformer {
	t.Helper()
	spec, err := transform.ParseSpec(keys)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := transform.New(spec, []string{"/region"})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// A failure that must stop the run (writes answered 503 past every retry)
// stops every range and exits 1 naming the cause, within the shutdown
// timeout of the failure: before the fix `run` hung, printing progress
// items=0, until it was killed.
func TestRunStopsOnAFatalError(t *testing.T) {
	e := newE2E(t)
	sourceOfOrders(t, e, "orders", 24_000, 400)
	keys := []string{"/tenantId"}
	e.container("target", 40_000, keys[0])
	if _, err := e.srv.InjectFault(emulator.Fault{Container: "target", Operations: []string{"write", "batch", "bulk"}, Status: 503}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	out, errOut, code := cli(t, ctx, append([]string{"run", "--until-caught-up", "--shutdown-timeout", "3s"}, e.args("orders", "target", keys...)...)...)
	if ctx.Err() != nil {
		t.Fatalf("run did not stop on a fatal error within 90s\n%s%s", out, errOut)
	}
	if code != ExitRunFailed || !strings.Contains(errOut, "503") || !strings.Contains(errOut, "giving up") {
		t.Fatalf("run on a target that answers 503: exit %d, want %d naming the 503\n%s%s", code, ExitRunFailed, out, errOut)
	}
	if strings.Contains(out, "interrupted") {
		t.Errorf("a failure reported as an interruption:\n%s", out)
	}
}

// A worker whose pages take longer than the lease TTL keeps its leases
// (a heartbeat renews them whatever the pages do), and a second worker
// never applies a range at the same time: before the fix both worked on
// one range and an older page overwrote newer data (verify found stale
// items while status said caught up).
func TestRunSharedSlowPagesNeverOverwriteNewerData(t *testing.T) {
	e := newE2E(t)
	sourceOfOrders(t, e, "orders", 24_000, 300) // 4 physical partitions
	keys := []string{"/tenantId"}
	e.state = "cosmos://rekey/leases"
	e.container("target", 40_000, keys[0])
	args := append([]string{"run", "--lease-ttl", "2s", "--poll-interval", "50ms", "--page-size", "20"}, e.args("orders", "target", keys...)...)
	if _, err := e.srv.InjectFault(emulator.Fault{Container: "target", Operations: []string{"write", "batch", "bulk", "read"}, Latency: 1500 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	var workers []*exec.Cmd
	var outs []fmt.Stringer
	for w := 0; w < 2; w++ { // two processes: two owners
		cmd, out := process(t, args...)
		workers, outs = append(workers, cmd), append(outs, out)
	}
	stop := make(chan struct{})
	deleted, wait := churn(t, e.client.Container(testDB, "orders"), 300, stop)
	time.Sleep(8 * time.Second) // several TTLs of slow pages under updates
	close(stop)
	wait()
	e.srv.ClearFaults()
	for i, cmd := range workers {
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		var ee *exec.ExitError
		if err := cmd.Wait(); !errors.As(err, &ee) || ee.ExitCode() != ExitInterrupted {
			t.Errorf("worker %d after SIGTERM: %v\n%s", i, err, outs[i])
		}
	}
	// A last worker drains what is left from the checkpoints: a stale
	// write that landed after its page was checkpointed stays stale.
	out, errOut, code := cli(t, context.Background(), append(args, "--until-caught-up")...)
	if code != 0 {
		t.Fatalf("final worker: exit %d\n%s%s", code, out, errOut)
	}
	checkCopy(t, e.client.Container(testDB, "orders"), e.client.Container(testDB, "target"), keys, []string{"/region"}, deleted)
}

// Workers release their leases when they stop, even when the shutdown
// timeout cut a slow page short, so another worker takes them at once
// instead of after the TTL: before the fix the release ran with the
// context the timeout had cancelled, and the leases kept their dead owner.
func TestRunReleasesItsLeasesWhenItStops(t *testing.T) {
	e := newE2E(t)
	sourceOfOrders(t, e, "orders", 24_000, 200)
	keys := []string{"/tenantId"}
	e.state = "cosmos://rekey/leases"
	e.container("target", 24_000, keys[0])
	args := append([]string{"run", "--poll-interval", "20ms", "--shutdown-timeout", "500ms"}, e.args("orders", "target", keys...)...)
	if _, err := e.srv.InjectFault(emulator.Fault{Container: "target", Operations: []string{"write", "batch", "bulk"}, Latency: 3 * time.Second}); err != nil {
		t.Fatal(err)
	}
	cmd, out := process(t, args...)
	store := sharedStore(t, e, "orders", "target")
	waitFor(t, 30*time.Second, "the leases to be taken", func() bool {
		ls, err := store.List(context.Background())
		if err != nil || len(ls) == 0 {
			return false
		}
		for _, l := range ls {
			if l.Owner == "" {
				return false
			}
		}
		return true
	})
	time.Sleep(500 * time.Millisecond) // pages in flight, slower than the shutdown timeout
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var ee *exec.ExitError
	if err := cmd.Wait(); !errors.As(err, &ee) || ee.ExitCode() != ExitInterrupted {
		t.Fatalf("after SIGTERM: %v\n%s", err, out)
	}
	if !strings.Contains(out.String(), "abandoned a page") {
		t.Fatalf("no page was cut short by the shutdown timeout; the test needs one\n%s", out)
	}
	ls, err := store.List(context.Background())
	if err != nil || len(ls) == 0 {
		t.Fatalf("leases: %v %v", ls, err)
	}
	for _, l := range ls {
		if l.Owner != "" {
			t.Errorf("lease %s is still owned by %q after its worker stopped\n%s", l.ID, l.Owner, out)
		}
	}
}

// A worker that joins late gets its share by asking: the owner finishes the
// page it is writing, checkpoints it and hands the lease over, so nothing
// is copied twice. Before the fix the newcomer stole the lease mid-page and
// redid what the owner was still writing.
func TestRunLateJoinerTakesOverAtACheckpoint(t *testing.T) {
	e := newE2E(t)
	sourceOfOrders(t, e, "orders", 24_000, 1200) // 4 physical partitions
	keys := []string{"/tenantId"}
	e.state = "cosmos://rekey/leases"
	e.container("target", 40_000, keys[0])
	args := append([]string{"run", "--until-caught-up", "--lease-ttl", "2s", "--poll-interval", "50ms", "--page-size", "25"}, e.args("orders", "target", keys...)...)
	// Slow pages: the newcomer's request always finds the owner mid-page.
	if _, err := e.srv.InjectFault(emulator.Fault{Container: "target", Operations: []string{"write", "batch", "bulk"}, Latency: 200 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	a, aOut := process(t, args...)
	store := sharedStore(t, e, "orders", "target")
	waitFor(t, 20*time.Second, "the first worker to hold every lease", func() bool {
		ls, err := store.List(context.Background())
		if err != nil || len(ls) != 4 {
			return false
		}
		copied := int64(0)
		for _, l := range ls {
			if l.Owner == "" {
				return false
			}
			copied += l.Items
		}
		return copied >= 100
	})
	bOut, bErr, code := cli(t, context.Background(), args...)
	if code != 0 {
		t.Fatalf("late worker: exit %d\n%s%s", code, bOut, bErr)
	}
	if err := a.Wait(); err != nil {
		t.Fatalf("first worker: %v\n%s", err, aOut)
	}
	for name, out := range map[string]string{"first": aOut.String(), "late": bOut} {
		if !strings.Contains(out, "already there 0;") {
			t.Errorf("the %s worker rewrote items the other had written:\n%s", name, out)
		}
	}
	if !strings.Contains(bOut, "items read") || strings.Contains(bOut, "items read        0\n") {
		t.Errorf("the late worker copied nothing: it got no lease\n%s", bOut)
	}
	checkCopy(t, e.client.Container(testDB, "orders"), e.client.Container(testDB, "target"), keys, []string{"/region"}, nil)
}
