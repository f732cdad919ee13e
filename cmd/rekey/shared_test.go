package main

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rekey-dev/rekey/lease"
)

// Two workers share a migration through a lease container, as the pods of a
// Kubernetes Job do: both get feed ranges; when one is killed, the other
// takes its leases over after the TTL and finishes the copy; dead letters
// live in the lease container, so none is lost with the killed worker.
func TestRunSharedWorkers(t *testing.T) {
	e := newE2E(t)
	src := e.container("orders", 36_000, "/region") // 6 physical partitions
	for i := 0; i < 600; i++ {
		put(t, src, regions[i%len(regions)], order(i, 1))
	}
	put(t, src, "eu", map[string]any{"id": "no-tenant", "region": "eu"})
	keys := []string{"/tenantId"}
	e.state = "cosmos://rekey/leases"
	// Each worker writes at most 1,000 RU/s, so the copy lasts long enough
	// for the second worker to join, and to take over from the first.
	args := append([]string{"run", "--create-target", "--target-throughput", "36000", "--lease-ttl", "2s", "--poll-interval", "50ms", "--page-size", "20", "--max-ru", "1000"}, e.args("orders", "target", keys...)...)

	a, aOut := process(t, args...)
	time.Sleep(300 * time.Millisecond)
	bDone := make(chan string, 1)
	go func() {
		out, errOut, code := cli(t, context.Background(), append(args, "--until-caught-up")...)
		if code != 0 {
			bDone <- "exit " + string(rune('0'+code)) + "\n" + out + errOut
			return
		}
		bDone <- "ok\n" + out + errOut
	}()

	store, err := lease.NewCosmos(e.client.LeaseDocuments("rekey", "leases"), leasePrefix(mustRef(t, testDB+"/orders"), mustRef(t, testDB+"/target")))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 45*time.Second, "both workers to hold leases", func() bool {
		ls, err := store.List(context.Background())
		if err != nil {
			return false
		}
		select {
		case msg := <-bDone:
			t.Fatalf("worker B stopped early: %q\nA: %s", msg, aOut)
		default:
		}
		owners := map[string]bool{}
		for _, l := range ls {
			if l.Owner != "" {
				owners[l.Owner] = true
			}
		}
		return len(ls) == 6 && len(owners) == 2
	})

	if err := a.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var ee *exec.ExitError
	if err := a.Wait(); !errors.As(err, &ee) {
		t.Fatalf("worker A: %v\n%s", err, aOut)
	}
	select {
	case msg := <-bDone:
		if !strings.HasPrefix(msg, "ok\n") {
			t.Fatalf("worker B: %s", msg)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("worker B did not finish after taking over worker A's leases")
	}
	if _, err := src.Delete(context.Background(), keyOf("eu"), "no-tenant", ""); err != nil {
		t.Fatal(err)
	}
	checkCopy(t, src, e.client.Container(testDB, "target"), keys, []string{"/region"}, nil)

	list, errOut, code := cli(t, context.Background(), append([]string{"deadletter", "list"}, e.args("orders", "target", keys...)...)...)
	if code != 0 || !strings.Contains(list, "no-tenant") || !strings.Contains(list, "missing-field") {
		t.Fatalf("dead letters in the lease container: exit %d\n%s%s", code, list, errOut)
	}
	st := statusJSON(t, e, e.args("orders", "target", keys...)...)
	if st.Phase != "syncing" || st.Items < 600 || st.DeadLetters != 1 {
		t.Fatalf("status: %+v", st)
	}
}
