package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/migrate/cutover"
)

// The keys of the all-versions tests: tenantId, which the mutations
// change, feeds the new key, so a key-field change moves an item.
var versionedKeys = []string{"/pk={tenantId}-{createdAt|yyyyMM}"}

// syncWhileMutating copies a source of n items with rekey run --mode mode
// while the application creates, updates, moves (key-field changes),
// deletes and writes items with a time to live; then lets those expire
// (the emulator's clock moves 2 minutes on) and runs until caught up.
func syncWhileMutating(t *testing.T, mode string, n int) *e2e {
	e, clock := newVersionedE2E(t)
	src := e.versionedContainer("orders", 12_000, time.Hour, -1, "/region")
	for i := 0; i < n; i++ {
		put(t, src, regions[i%len(regions)], order(i, 1))
	}
	run := append([]string{"run", "--mode", mode, "--create-target", "--target-throughput", "20000", "--page-size", "40", "--poll-interval", "20ms"}, e.args("orders", "target", versionedKeys...)...)
	stop := make(chan struct{})
	wait := mutations(t, src, n, 1500, 2*time.Millisecond, stop)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		cli(t, ctx, run...) // copies, then syncs until cancelled
	}()
	wait()
	close(stop)
	cancel()
	<-done
	clock.Advance(2 * time.Minute) // the items with a time to live expire
	out, errOut, code := cli(t, context.Background(), append(run, "--until-caught-up")...)
	if code != 0 {
		t.Fatalf("run --until-caught-up: exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("mode %s, after the sync:\n%s", mode, out)
	return e
}

// Both modes end to end through the CLI while the source changes. In
// all-versions mode, after the sync and before any cutover, verify finds
// the copy clean (every live item once, under its key; nothing extra,
// orphaned or changed) and cutover's reconcile finds nothing to fix. In
// latest mode the same changes leave extra and orphaned items, which
// cutover's reconcile removes.
func TestRunBothModesWhileTheSourceChanges(t *testing.T) {
	for _, mode := range []string{"all-versions", "latest"} {
		t.Run(mode, func(t *testing.T) {
			e := syncWhileMutating(t, mode, 400)
			src, tgt := e.client.Container(testDB, "orders"), e.client.Container(testDB, "target")
			rep, code := verifyJSON(t, e, versionedKeys)
			t.Logf("mode %s, verify before cutover: source %d, target %d, extra %d, orphaned %d, changed %d, missing %d",
				mode, rep.SourceItems, rep.TargetItems, rep.Extra.Count, rep.Orphaned.Count, rep.Changed.Count, rep.Missing.Count)
			switch mode {
			case "all-versions":
				if code != 0 || !rep.Clean || rep.Extra.Count+rep.Orphaned.Count+rep.Changed.Count+rep.Missing.Count != 0 {
					t.Fatalf("verify after an all-versions sync: exit %d, %+v", code, rep)
				}
				checkCopy(t, src, tgt, versionedKeys, []string{"/region"}, nil)
				st, _, _ := cli(t, context.Background(), append([]string{"status"}, e.args("orders", "target")...)...)
				if !strings.Contains(st, "all-versions") || strings.Contains(st, "fell back") {
					t.Errorf("status after an all-versions sync:\n%s", st)
				}
			case "latest":
				if code != ExitDiffers || rep.Extra.Count == 0 || rep.Orphaned.Count == 0 {
					t.Fatalf("verify after a latest-version sync: exit %d, extra %d, orphaned %d: want both", code, rep.Extra.Count, rep.Orphaned.Count)
				}
			}
			args := append([]string{"cutover", "--quiet-period", "500ms", "--recheck-delay", "-1s", "-o", "json"}, e.args("orders", "target", versionedKeys...)...)
			out, errOut, code := cli(t, context.Background(), args...)
			var crep cutover.Report
			if err := json.Unmarshal([]byte(out), &crep); err != nil || code != 0 || !crep.Recorded {
				t.Fatalf("cutover: exit %d %v\n%s%s", code, err, out, errOut)
			}
			// A final verify that fixes anything runs again (the fix wrote
			// to the target): Verify is the last one, Verifies counts them.
			fixed := int64(0)
			if f := crep.Verify.Fix; f != nil {
				fixed = f.Deleted + f.Copied
			}
			reconciled := fixed > 0 || crep.Verifies > 1
			t.Logf("mode %s, cutover's final verifies: %d, the last fixed %d items", mode, crep.Verifies, fixed)
			if (mode == "all-versions") == reconciled {
				t.Fatalf("mode %s: cutover ran %d final verifies, the last fixing %d items", mode, crep.Verifies, fixed)
			}
			checkCopy(t, src, tgt, versionedKeys, []string{"/region"}, nil)
		})
	}
}

// rekey run killed with SIGKILL around the switch from the copy to the
// all-versions feed while the source changes: when the ranges have their
// bookmarks and copy, right after the first range switched (the others
// copying or switching), right after the last one switched (replaying the
// changes since its bookmark), and a moment later. The final
// run leaves nothing extra, orphaned or changed.
func TestRunKilledDuringTheSwitchToAllVersions(t *testing.T) {
	e, _ := newVersionedE2E(t)
	src := e.versionedContainer("orders", 18_000, time.Hour, 0, "/region")
	const n = 1500
	for i := 0; i < n; i++ {
		put(t, src, regions[i%len(regions)], order(i, 1))
	}
	args := append([]string{"run", "--mode", "all-versions", "--create-target", "--target-throughput", "3000", "--page-size", "25", "--poll-interval", "20ms"}, e.args("orders", "target", versionedKeys...)...)
	stop := make(chan struct{})
	wait := mutations(t, src, n, 100_000, 10*time.Millisecond, stop)
	var stopOnce bool
	stopMutations := func() {
		if !stopOnce {
			stopOnce = true
			close(stop)
			wait()
		}
	}
	t.Cleanup(stopMutations)

	kill := func(what string, when func() bool) {
		t.Helper()
		cmd, out := process(t, args...)
		for deadline := time.Now().Add(60 * time.Second); !when(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				t.Fatalf("timed out waiting until %s (leases %v)\n%s", what, leaseModes(t, e.state), out)
			}
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		err := cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("%s: want the process killed, got %v\n%s", what, err, out)
		}
		t.Logf("killed when %s: leases %v", what, leaseModes(t, e.state))
	}
	kill("the ranges are bookmarked and copying", func() bool {
		m := leaseModes(t, e.state)
		return countModes(m, "latest+bookmark") > 0 && countModes(m, "latest") == 0
	})
	kill("the first range switched to the all-versions feed", func() bool {
		return countModes(leaseModes(t, e.state), "all-versions") > 0
	})
	kill("the last range switched (it replays the changes since its bookmark)", func() bool {
		m := leaseModes(t, e.state)
		return len(m) > 0 && countModes(m, "all-versions") == len(m)
	})
	start := time.Now()
	kill("a moment later", func() bool { return time.Since(start) > 300*time.Millisecond })
	stopMutations()
	out, errOut, code := cli(t, context.Background(), append(args, "--until-caught-up")...)
	if code != 0 {
		t.Fatalf("final run: exit %d\n%s%s", code, out, errOut)
	}
	if m := leaseModes(t, e.state); countModes(m, "all-versions") != len(m) {
		t.Fatalf("leases after the final run: %v, want all on the all-versions feed", m)
	}
	rep, code := verifyJSON(t, e, versionedKeys)
	if code != 0 || !rep.Clean {
		t.Fatalf("verify after the kills: exit %d, missing %d, extra %d, changed %d, orphaned %d", code, rep.Missing.Count, rep.Extra.Count, rep.Changed.Count, rep.Orphaned.Count)
	}
	checkCopy(t, src, e.client.Container(testDB, "target"), versionedKeys, []string{"/region"}, nil)
}

// A bookmark that fell out of the retention window (the emulator's clock
// moves past it): rekey run says so, falls back to the latest-version feed
// for the range, records it (rekey status shows it), copies the update
// made meanwhile, and the delete it could not see is left to verify --fix.
func TestRunFallsBackWhenItsPositionLeftTheRetention(t *testing.T) {
	e, clock := newVersionedE2E(t)
	src := e.versionedContainer("orders", 6_000, 10*time.Minute, 0, "/region")
	for i := 0; i < 30; i++ {
		put(t, src, regions[i%len(regions)], order(i, 1))
	}
	run := append([]string{"run", "--until-caught-up", "--create-target", "--target-throughput", "6000", "--log-level", "warn"}, e.args("orders", "target", versionedKeys...)...)
	if out, errOut, code := cli(t, context.Background(), run...); code != 0 {
		t.Fatalf("run: exit %d\n%s%s", code, out, errOut)
	}
	moved := order(3, 5)
	moved["tenantId"] = "tenant-moved"
	put(t, src, regions[3%len(regions)], moved)
	if _, err := src.Delete(context.Background(), keyOf(regions[4%len(regions)]), itemID(4), ""); err != nil {
		t.Fatal(err)
	}
	clock.Advance(11 * time.Minute) // the changes, and the ranges' positions before them, leave the retention

	out, errOut, code := cli(t, context.Background(), run...)
	if code != 0 || !strings.Contains(out, "fell back") || !strings.Contains(errOut, "older than the source's change feed retention") {
		t.Fatalf("run after the retention passed: exit %d, want it to say it fell back\n%s%s", code, out, errOut)
	}
	st, _, _ := cli(t, context.Background(), append([]string{"status"}, e.args("orders", "target")...)...)
	if !strings.Contains(st, "fell back from the all-versions feed") || !strings.Contains(st, "retention") {
		t.Errorf("status does not show the fallback:\n%s", st)
	}
	rep, code := verifyJSON(t, e, versionedKeys)
	if code != ExitDiffers || rep.Extra.Count != 1 || rep.Orphaned.Count != 1 || rep.Missing.Count+rep.Changed.Count != 0 {
		t.Fatalf("verify after the fallback: exit %d, %+v: want the delete (extra) and the move's old copy (orphaned), nothing else", code, rep)
	}
	if rep, code = verifyJSON(t, e, versionedKeys, "--fix"); code != 0 {
		t.Fatalf("verify --fix: exit %d, %+v", code, rep)
	}
	checkCopy(t, src, e.client.Container(testDB, "target"), versionedKeys, []string{"/region"}, nil)
}

// With the target carrying the source's time to live, --ttl-expiries
// defaults to skip: the expired item's copy is left to expire by itself.
func TestRunLeavesExpiriesToTheTargetsTimeToLive(t *testing.T) {
	e, clock := newVersionedE2E(t)
	src := e.versionedContainer("orders", 6_000, time.Hour, -1, "/region")
	e.versionedContainer("target", 6_000, time.Hour, -1, "/pk")
	for i := 0; i < 10; i++ {
		o := order(i, 1)
		if i < 3 {
			o["ttl"] = 30
		}
		put(t, src, regions[i%len(regions)], o)
	}
	run := append([]string{"run", "--until-caught-up"}, e.args("orders", "target", versionedKeys...)...)
	if out, errOut, code := cli(t, context.Background(), run...); code != 0 {
		t.Fatalf("run: exit %d\n%s%s", code, out, errOut)
	}
	clock.Advance(time.Minute)
	out, errOut, code := cli(t, context.Background(), run...)
	if code != 0 || !strings.Contains(out, "expiries left to the target's TTL 3") {
		t.Fatalf("run after the expiries: exit %d\n%s%s", code, out, errOut)
	}
	if rep, code := verifyJSON(t, e, versionedKeys); code != 0 || rep.TargetItems != 7 {
		t.Fatalf("verify: exit %d, %+v: want the copies expired with their items", code, rep)
	}
}

// --mode and --ttl-expiries take only their values; --mode all-versions on
// a source without a change feed policy is refused with exit 2, naming the
// fix, and --mode auto then follows the latest-version feed.
func TestRunModeFlags(t *testing.T) {
	e := newE2E(t)
	src := e.container("orders", 6_000, "/region")
	put(t, src, regions[0], order(0, 1))
	base := append([]string{"run", "--until-caught-up", "--create-target", "--target-throughput", "6000"}, e.args("orders", "target", versionedKeys...)...)
	for _, tc := range []struct {
		flags []string
		want  string
	}{
		{[]string{"--mode", "incremental"}, `mode "incremental": want auto, latest or all-versions`},
		{[]string{"--ttl-expiries", "later"}, `ttl expiries "later": want apply or skip`},
		{[]string{"--mode", "all-versions"}, "change feed policy"},
	} {
		out, errOut, code := cli(t, context.Background(), append(base, tc.flags...)...)
		if code != ExitError || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, want %d saying %q\n%s%s", tc.flags, code, ExitError, tc.want, out, errOut)
		}
	}
	out, errOut, code := cli(t, context.Background(), base...)
	if code != 0 || !strings.Contains(out, "change feed       latest-version") {
		t.Fatalf("auto on a source without the all-versions feed: exit %d\n%s%s", code, out, errOut)
	}
}

// Workers sharing a lease container follow the all-versions feed: their
// leases carry the mode and the bookmark in the lease documents, and a
// worker killed with SIGKILL mid-copy has its ranges taken over where it
// left them (copying with a bookmark, or on the all-versions feed). With
// the source changing all along, verify finds nothing to reconcile.
func TestRunSharedWorkersFollowTheAllVersionsFeed(t *testing.T) {
	e, _ := newVersionedE2E(t)
	src := e.versionedContainer("orders", 24_000, time.Hour, 0, "/region") // 4 physical partitions
	for i := 0; i < 600; i++ {
		put(t, src, regions[i%len(regions)], order(i, 1))
	}
	e.state = "cosmos://rekey/leases"
	args := append([]string{"run", "--create-target", "--target-throughput", "24000", "--lease-ttl", "2s", "--poll-interval", "50ms", "--page-size", "20", "--max-ru", "1000"}, e.args("orders", "target", versionedKeys...)...)
	stop := make(chan struct{})
	wait := mutations(t, src, 600, 600, 5*time.Millisecond, stop)
	t.Cleanup(func() { close(stop); wait() })

	a, aOut := process(t, args...)
	store, err := lease.NewCosmos(e.client.LeaseDocuments("rekey", "leases"), leasePrefix(mustRef(t, testDB+"/orders"), mustRef(t, testDB+"/target")))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 45*time.Second, "worker A to bookmark its ranges", func() bool {
		ls, err := store.List(context.Background())
		return err == nil && len(ls) == 4 && ls[0].Bookmark != ""
	})
	bDone := make(chan string, 1)
	go func() {
		out, errOut, code := cli(t, context.Background(), append(args, "--until-caught-up")...)
		bDone <- fmt.Sprintf("exit %d\n%s%s", code, out, errOut)
	}()
	waitFor(t, 45*time.Second, "both workers to hold leases", func() bool {
		ls, err := store.List(context.Background())
		owners := map[string]bool{}
		for _, l := range ls {
			owners[l.Owner] = l.Owner != ""
		}
		return err == nil && len(owners) >= 2
	})
	if err := a.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = a.Wait()
	select {
	case msg := <-bDone:
		if !strings.HasPrefix(msg, "exit 0\n") {
			t.Fatalf("worker B: %s\nA: %s", msg, aOut)
		}
	case <-time.After(90 * time.Second):
		t.Fatal("worker B did not catch up")
	}
	wait()
	if out, errOut, code := cli(t, context.Background(), append(args, "--until-caught-up")...); code != 0 {
		t.Fatalf("final run: exit %d\n%s%s", code, out, errOut)
	}
	ls, err := store.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		if !l.ReadsAllVersions() || l.Fallback != "" {
			t.Fatalf("lease %+v: want the all-versions feed, no fallback", l)
		}
	}
	if rep, code := verifyJSON(t, e, versionedKeys); code != 0 || !rep.Clean {
		t.Fatalf("verify: exit %d, missing %d, extra %d, changed %d, orphaned %d", code, rep.Missing.Count, rep.Extra.Count, rep.Changed.Count, rep.Orphaned.Count)
	}
}
