package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/rekey-dev/rekey/internal/cosmos"
	"github.com/rekey-dev/rekey/migrate/status"
)

// rollbackKeys is a synthetic key: the target's items carry a field, pk,
// the source's do not.
var rollbackKeys = []string{"/pk={tenantId}-{createdAt|yyyyMM}"}

// withPK is order i at version v as the application writes it to the
// target after the cutover: with the new key's field.
func withPK(i, v int) map[string]any {
	o := order(i, v)
	o["pk"] = o["tenantId"].(string) + "-" + o["createdAt"].(string)[:4] + o["createdAt"].(string)[5:7]
	return o
}

// appWritesTarget upserts items into the target under their pk.
func appWritesTarget(t *testing.T, tgt *cosmos.Container, items ...map[string]any) {
	t.Helper()
	for _, it := range items {
		put(t, tgt, it["pk"].(string), it)
	}
}

func deleteTarget(t *testing.T, tgt *cosmos.Container, i int) {
	t.Helper()
	if _, err := tgt.Delete(context.Background(), keyOf(withPK(i, 1)["pk"].(string)), itemID(i), ""); err != nil {
		t.Fatalf("delete target item %d: %v", i, err)
	}
}

// cutOver migrates 40 source items with application writes before the
// cutover (updates and creates copied by a second run), and cuts over.
func cutOver(t *testing.T, e *e2e, args func(...string) []string) (*cosmos.Container, *cosmos.Container) {
	t.Helper()
	src := e.container("orders", 12_000, "/region")
	for i := 0; i < 40; i++ {
		put(t, src, region(i), order(i, 1))
	}
	if r := runCLI(t, args("run", "--until-caught-up", "--create-target", "--target-throughput", "12000")...); r.code != 0 {
		t.Fatalf("run: exit %d\n%s%s", r.code, r.out, r.errOut)
	}
	// The application writes the source before the cutover: an update and
	// a create, which the next run copies.
	put(t, src, region(3), order(3, 2))
	put(t, src, region(40), order(40, 1))
	if r := runCLI(t, args("run", "--until-caught-up")...); r.code != 0 {
		t.Fatalf("run again: exit %d\n%s%s", r.code, r.out, r.errOut)
	}
	if r := runCLI(t, args("cutover", "--quiet-period", "300ms", "--recheck-delay", "1ms")...); r.code != 0 {
		t.Fatalf("cutover: exit %d\n%s%s", r.code, r.out, r.errOut)
	}
	return src, e.client.Container(testDB, "target")
}

// Migrate with application writes on both sides of the cutover, then roll
// back: the application's creates, updates and deletes in the target (an
// item updated twice, one updated then deleted, one updated again after
// the rollback had copied it) reach the source through rekey rollback and
// its cutover, and the source then matches the target mapped back: the
// rollback's verify and the migration's verify are clean. The rollback's
// cutover records that the source is the application's again; after it,
// forward and rollback commands refuse. Both with a state directory and
// with a lease container.
func TestRollbackRoundTrip(t *testing.T) {
	t.Run("directory", func(t *testing.T) { rollbackRoundTrip(t, "") })
	t.Run("lease-container", func(t *testing.T) { rollbackRoundTrip(t, "cosmos://rekey/leases") })
}

func rollbackRoundTrip(t *testing.T, state string) {
	e := newE2E(t)
	if state != "" {
		e.state = state
		t.Setenv("REKEY_LEASE_TTL", "2s") // workers balance, and stop, every half second
	}
	args := func(cmd ...string) []string { return append(cmd, e.args("orders", "target", rollbackKeys...)...) }
	src, tgt := cutOver(t, e, args)

	// The application writes to the target now.
	appWritesTarget(t, tgt, withPK(100, 1), withPK(101, 1), withPK(5, 7), withPK(6, 7), withPK(6, 8), withPK(7, 7))
	deleteTarget(t, tgt, 8)
	r := runCLI(t, args("rollback", "--until-caught-up")...)
	if r.code != 0 || !strings.Contains(r.out, "rekey rollback: caught up") {
		t.Fatalf("rollback: exit %d\n%s%s", r.code, r.out, r.errOut)
	}
	if st := statusJSON(t, e, args()...); st.Phase != status.PhaseRollingBack || st.Rollback == nil || st.Rollback.Phase != status.PhaseSyncing {
		t.Fatalf("status while rolling back: %+v", st)
	}
	// More writes: item 7 (which the rollback wrote back) is deleted, item
	// 5 (written back too) updated again, and a new item.
	deleteTarget(t, tgt, 7)
	appWritesTarget(t, tgt, withPK(5, 9), withPK(102, 1))
	if r := runCLI(t, args("rollback", "--until-caught-up")...); r.code != 0 {
		t.Fatalf("rollback again: exit %d\n%s%s", r.code, r.out, r.errOut)
	}
	// The change feed carries no deletes: until the rollback's cutover the
	// source still has them.
	r = runCLI(t, args("rollback", "verify", "-o", "json", "--recheck-delay", "-1s")...)
	if r.code != ExitDiffers || jsonCount(t, r.out, "missing", "count") != 2 || jsonCount(t, r.out, "changed", "count") != 0 || jsonCount(t, r.out, "extra", "count") != 0 {
		t.Fatalf("rollback verify before its cutover: exit %d\n%s%s", r.code, r.out, r.errOut)
	}

	// With a lease container, a rollback worker runs as a Job's pod would
	// (--until-cutover) and stops for the rollback's cutover.
	var rbWorker <-chan workerExit
	if state != "" {
		rbWorker = startWorker(t, args("rollback", "--until-cutover", "--poll-interval", "50ms")...)
		waitFor(t, 60*time.Second, "the rollback worker to hold its leases", func() bool {
			st := statusJSON(t, e, args()...)
			if st.Rollback == nil || len(st.Rollback.Ranges) == 0 {
				return false
			}
			for _, r := range st.Rollback.Ranges {
				if r.Owner == "" {
					return false
				}
			}
			return true
		})
	}
	r = runCLI(t, args("rollback", "cutover", "--quiet-period", "300ms", "--recheck-delay", "1ms")...)
	if rbWorker != nil {
		if w := waitExit(t, "the rollback worker", rbWorker, 30*time.Second); w.code != 0 || !strings.Contains(w.out.String(), "stopped for cutover") {
			t.Errorf("the rollback worker: exit %d\n%s", w.code, w.out)
		}
	}
	if r.code != 0 || !strings.Contains(r.out, "rolled back at") || !strings.Contains(r.out, "point the application back at shop/orders") || !strings.Contains(r.out, "partition key: /region") {
		t.Fatalf("rollback cutover: exit %d\n%s%s", r.code, r.out, r.errOut)
	}
	for _, cmd := range [][]string{args("rollback", "verify", "--recheck-delay", "1ms"), args("verify", "--recheck-delay", "1ms")} {
		if r := runCLI(t, cmd...); r.code != 0 || !strings.Contains(r.out, "matches the source") {
			t.Errorf("%s after the rollback: exit %d\n%s%s", strings.Join(cmd[:2], " "), r.code, r.out, r.errOut)
		}
	}
	checkRolledBack(t, src, tgt)
	st := statusJSON(t, e, args()...)
	if st.Phase != status.PhaseRolledBack || st.Meta.RolledBack == nil {
		t.Fatalf("status after the rollback: %+v", st)
	}
	if r := runCLI(t, args("status")...); !strings.Contains(r.out, "phase: rolled back at") || !strings.Contains(r.out, "(cut over at ") || strings.Count(r.out, "rolled back at") != 1 {
		t.Errorf("status after the rollback:\n%s", r.out)
	}
	for _, cmd := range [][]string{args("run", "--until-caught-up"), args("rollback", "--until-caught-up"), args("cutover")} {
		if r := runCLI(t, cmd...); r.code != ExitError || !strings.Contains(r.errOut, "rolled back") {
			t.Errorf("%s after the rollback: exit %d, want %d\n%s%s", cmd[0], r.code, ExitError, r.out, r.errOut)
		}
	}
}

// checkRolledBack asserts the source holds exactly the target's items,
// each with the target's content (the new key's field included for those
// the application wrote after the cutover, absent for the others).
func checkRolledBack(t *testing.T, src, tgt *cosmos.Container) {
	t.Helper()
	byID := func(c *cosmos.Container) map[string]map[string]any {
		out := map[string]map[string]any{}
		for _, b := range all(t, c) {
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			for k := range m {
				if strings.HasPrefix(k, "_") && k != "_note" {
					delete(m, k)
				}
			}
			out[m["id"].(string)] = m
		}
		return out
	}
	s, g := byID(src), byID(tgt)
	if len(s) != len(g) {
		t.Errorf("the source holds %d items, the target %d", len(s), len(g))
	}
	for id, want := range g {
		got, ok := s[id]
		if !ok {
			t.Errorf("item %s of the target is not in the source", id)
			continue
		}
		if _, added := got["pk"]; !added {
			delete(want, "pk") // a copy the cutover left: the source never had the field
		}
		a, _ := json.Marshal(got)
		b, _ := json.Marshal(want)
		if string(a) != string(b) {
			t.Errorf("item %s: source %s, target %s", id, a, b)
		}
	}
	for _, gone := range []int{7, 8} {
		if _, ok := s[itemID(gone)]; ok {
			t.Errorf("item %d, deleted in the target, is still in the source", gone)
		}
	}
	if v := s[itemID(5)]["v"]; v != 9.0 {
		t.Errorf("item 5 in the source is at version %v, want 9", v)
	}
}

// A source item that someone writes after the cutover is never overwritten
// by the rollback: it is dead-lettered as a conflict, listed, and counted
// as dead-lettered by the rollback's verify. Deleting the source item
// resolves it (the rollback's cutover copies the target's version back);
// one that is kept needs --accept-dead-letter, and keeps its version.
func TestRollbackNeverOverwritesASourceWriteAfterTheCutover(t *testing.T) {
	e := newE2E(t)
	args := func(cmd ...string) []string { return append(cmd, e.args("orders", "target", rollbackKeys...)...) }
	src, tgt := cutOver(t, e, args)
	time.Sleep(1100 * time.Millisecond) // _ts is in seconds: these writes come after the cutover's
	outside := order(10, 50)
	outside["note"] = "written to the source after the cutover"
	put(t, src, region(10), outside)
	put(t, src, region(11), order(11, 50))
	appWritesTarget(t, tgt, withPK(10, 2), withPK(11, 2), withPK(12, 2))

	r := runCLI(t, args("rollback", "--until-caught-up")...)
	if r.code != 0 || !strings.Contains(r.out, "of which conflicts 2") {
		t.Fatalf("rollback: exit %d\n%s%s", r.code, r.out, r.errOut)
	}
	r = runCLI(t, args("deadletter", "list", "--rollback")...)
	if r.code != 0 || !strings.Contains(r.out, itemID(10)) || !strings.Contains(r.out, itemID(11)) || !strings.Contains(r.out, "conflict") {
		t.Fatalf("deadletter list --rollback: exit %d\n%s%s", r.code, r.out, r.errOut)
	}
	if !sameItem(t, src, region(10), outside) {
		t.Fatal("the rollback overwrote a source item written after the cutover")
	}
	r = runCLI(t, args("rollback", "verify", "-o", "json", "--recheck-delay", "-1s")...)
	if r.code != ExitDiffers || jsonCount(t, r.out, "deadLettered", "count") != 2 || jsonCount(t, r.out, "changed", "count") != 0 {
		t.Fatalf("rollback verify with conflicts: exit %d\n%s%s", r.code, r.out, r.errOut)
	}
	r = runCLI(t, args("rollback", "cutover", "--quiet-period", "300ms", "--recheck-delay", "1ms")...)
	if r.code != ExitRefused || !strings.Contains(r.errOut, "2 items could not be copied") {
		t.Fatalf("rollback cutover with conflicts: exit %d\n%s%s", r.code, r.out, r.errOut)
	}
	// Item 11: the application's version wins: delete the source's.
	if _, err := src.Delete(context.Background(), keyOf(region(11)), itemID(11), ""); err != nil {
		t.Fatal(err)
	}
	r = runCLI(t, args("rollback", "cutover", "--quiet-period", "300ms", "--recheck-delay", "1ms", "--accept-dead-letter")...)
	if r.code != 0 || !strings.Contains(r.out, "rolled back at") {
		t.Fatalf("rollback cutover --accept-dead-letter: exit %d\n%s%s", r.code, r.out, r.errOut)
	}
	if !sameItem(t, src, region(10), outside) {
		t.Fatal("the rollback's cutover overwrote a source item written after the cutover")
	}
	if !sameItem(t, src, region(11), withPK(11, 2)) || !sameItem(t, src, region(12), withPK(12, 2)) {
		t.Fatal("the target's versions of items 11 and 12 did not go back to the source")
	}
	r = runCLI(t, args("rollback", "verify", "-o", "json", "--recheck-delay", "-1s")...)
	if jsonCount(t, r.out, "deadLettered", "count") != 1 || jsonCount(t, r.out, "changed", "count") != 0 || jsonCount(t, r.out, "missing", "count") != 0 {
		t.Fatalf("rollback verify after the cutover: only item 10 should differ (accepted)\n%s%s", r.out, r.errOut)
	}
}
