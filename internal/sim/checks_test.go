package sim

import (
	"strconv"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/transform"
)

// testWorld is a world of seed 1 for checks, inside a bubble.
func testWorld(t *testing.T) *world {
	t.Helper()
	w, err := newWorld(Generate(1), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.close)
	return w
}

// violated counts the violations of an invariant in a result.
func violated(res []Violation, inv string) int {
	n := 0
	for _, v := range res {
		if v.Invariant == inv {
			n++
		}
	}
	return n
}

// The one-loop-per-range check, against a deliberate violation: two
// processes applying pages of overlapping ranges at once.
func TestOneLoopCheckCatchesTwoLoops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := testWorld(t)
		a, b := w.newProcess("a", -1), w.newProcess("b", -1)
		left, right, whole := migrate.FeedRange{Min: "", Max: "20"}, migrate.FeedRange{Min: "20", Max: "FF"}, migrate.FeedRange{Min: "", Max: "FF"}
		w.check.pageApplying(a, "L", left)
		w.check.pageApplying(b, "R", right) // disjoint: fine
		w.check.pageApplied(b, "R", right)
		if n := violated(w.check.result(), InvOneLoop); n != 0 {
			t.Fatalf("disjoint ranges: %d violations", n)
		}
		w.check.pageApplying(b, "whole", whole)
		if n := violated(w.check.result(), InvOneLoop); n != 1 {
			t.Fatalf("overlapping ranges applied at once: %d violations, want 1", n)
		}
		w.check.pageApplied(b, "whole", whole)
		a.crash("test") // a dead process applies nothing more
		w.check.pageApplying(b, "L", left)
		if n := violated(w.check.result(), InvOneLoop); n != 1 {
			t.Fatalf("after the first loop's process crashed: %d violations, want still 1", n)
		}
		if got := w.check.observerCalls(); got != 4 {
			t.Fatalf("observer calls %d, want 4", got)
		}
	})
}

func TestTilingFindsGapsAndOverlaps(t *testing.T) {
	l := func(min, max string) lease.Lease {
		return lease.Lease{ID: min + "-" + max, Range: lease.Range{Min: min, Max: max}}
	}
	for _, tt := range []struct {
		leases []lease.Lease
		want   string
	}{
		{[]lease.Lease{l("", "FF")}, ""},
		{[]lease.Lease{l("20", "FF"), l("", "20")}, ""},
		{[]lease.Lease{l("", "20")}, "no lease owns [20, FF)"},
		{[]lease.Lease{l("", "10"), l("20", "FF")}, "no lease owns [10, 20)"},
		{[]lease.Lease{l("", "30"), l("20", "FF")}, "overlaps"},
		{nil, "no lease owns [, FF)"},
	} {
		got := strings.Join(tiling(tt.leases), "; ")
		if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
			t.Errorf("tiling(%v) = %q, want %q", tt.leases, got, tt.want)
		}
	}
}

// The no-older-over-newer check, against deliberate violations.
func TestMonotonicCheckCatchesOlderOverNewer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := testWorld(t)
		p := w.newProcess("w", 0)
		key := migrate.Key{transform.StringValue("c1")}
		body := func(tenant string, v int) []byte {
			return []byte(`{"id":"i1","tenant":"` + tenant + `","customer":"c1","v":` + strconv.Itoa(v) + `}`)
		}
		newer := migrate.Item{Body: body("t1", 7)}
		w.check.targetWritten(p, "replace", key, "i1", newer, true, body("t1", 9), false)
		w.check.targetWritten(p, "replace", key, "i1", newer, true, body("t2", 3), false) // another source item
		w.check.targetWritten(p, "replace", key, "i1", newer, true, body("t1", 3), true)  // landed after a crash
		if n := violated(w.check.result(), InvMonotonic); n != 0 {
			t.Fatalf("legitimate writes: %d violations", n)
		}
		w.check.targetWritten(p, "replace", key, "i1", newer, true, body("t1", 3), false)
		if n := violated(w.check.result(), InvMonotonic); n != 1 {
			t.Fatalf("v3 over v7: %d violations, want 1", n)
		}
		w.check.targetWritten(p, "delete", key, "i1", newer, true, nil, false)
		w.check.targetWritten(p, "create", key, "i1", migrate.Item{}, false, body("t1", 5), false)
		if n := violated(w.check.result(), InvMonotonic); n != 2 {
			t.Fatalf("v5 created where v7 was deleted: %d violations, want 2", n)
		}
	})
}

// The simulator catches a pipeline that loses writes: a target that
// acknowledges some creates without storing them, sent one by one (seed 3
// runs --bulk=false) or in bulk requests (seed 1).
func TestSimulatorCatchesLostWrites(t *testing.T) {
	for _, tc := range []struct {
		seed uint64
		bulk bool
	}{{3, false}, {1, true}} {
		if Generate(tc.seed).Bulk != tc.bulk {
			t.Fatalf("seed %d no longer runs --bulk=%v: pick another", tc.seed, tc.bulk)
		}
		var res *Result
		synctest.Test(t, func(t *testing.T) {
			n := 0
			var err error
			res, err = Simulate(tc.seed, Options{loseCreate: func(string) bool { n++; return n%7 == 0 }})
			if err != nil {
				t.Fatal(err)
			}
		})
		if violated(res.Violations, InvComplete) == 0 {
			t.Fatalf("seed %d with lost creates broke %v, want %s:\n%s", tc.seed, invariantsOf(res), InvComplete, res.Report())
		}
	}
}
