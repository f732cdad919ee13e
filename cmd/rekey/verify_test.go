package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/migrate/verify"
)

// verifyJSON runs rekey verify -o json and decodes the report.
func verifyJSON(t *testing.T, e *e2e, keys []string, extra ...string) (verify.Report, int) {
	t.Helper()
	args := append([]string{"verify", "-o", "json", "--recheck-delay", "-1s"}, e.args("orders", "target", keys...)...)
	out, errOut, code := cli(t, context.Background(), append(args, extra...)...)
	var rep verify.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("verify: exit %d, output not a report: %v\n%s%s", code, err, out, errOut)
	}
	return rep, code
}

func ids(c verify.Category) string {
	var out []string
	for _, d := range c.Items {
		out = append(out, d.ID)
	}
	return strings.Join(out, ",")
}

// Verify catches each kind of difference with the exact ids; --fix repairs
// them and a second verify is clean.
func TestVerifyFindsAndFixesEveryDifference(t *testing.T) {
	e := newE2E(t)
	src := e.container("orders", 12_000, "/region")
	for i := 0; i < 60; i++ {
		put(t, src, regions[i%len(regions)], order(i, 1))
	}
	keys := []string{"/pk={tenantId}-{createdAt|yyyyMM}"}
	run := append([]string{"run", "--until-caught-up", "--create-target", "--target-throughput", "12000"}, e.args("orders", "target", keys...)...)
	if out, errOut, code := cli(t, context.Background(), run...); code != 0 {
		t.Fatalf("run: exit %d\n%s%s", code, out, errOut)
	}
	if rep, code := verifyJSON(t, e, keys); code != 0 || !rep.Clean || rep.Matched != 60 {
		t.Fatalf("a fresh copy: exit %d, report %+v", code, rep)
	}

	ctx := context.Background()
	tgt := e.client.Container(testDB, "target")
	targetKey := func(i int) migrate.Key {
		o := order(i, 1)
		return keyOf(o["tenantId"].(string) + "-" + o["createdAt"].(string)[:4] + o["createdAt"].(string)[5:7])
	}
	// missing: deleted from the target
	if _, err := tgt.Delete(ctx, targetKey(1), itemID(1), ""); err != nil {
		t.Fatal(err)
	}
	// extra: the source item was deleted; the change feed cannot carry that
	if _, err := src.Delete(ctx, keyOf(regions[2%len(regions)]), itemID(2), ""); err != nil {
		t.Fatal(err)
	}
	// changed: the target copy's content differs
	changed := order(3, 1)
	changed["total"] = 99999.0
	changed["pk"] = string(targetKey(3)[0].Str)
	put(t, tgt, targetKey(3)[0].Str, changed)
	// a wrong key: the copy of item 4 sits under a key the spec does not give it
	wrong := order(4, 1)
	wrong["pk"] = "wrong-key"
	put(t, tgt, "wrong-key", wrong)
	if _, err := tgt.Delete(ctx, targetKey(4), itemID(4), ""); err != nil {
		t.Fatal(err)
	}
	// an orphan: a field the key is built from changed and the run copied it
	moved := order(5, 7)
	moved["tenantId"] = "tenant-moved"
	put(t, src, regions[5%len(regions)], moved)
	if out, errOut, code := cli(t, context.Background(), run...); code != 0 {
		t.Fatalf("run after the key-field update: exit %d\n%s%s", code, out, errOut)
	}

	rep, code := verifyJSON(t, e, keys)
	if code != ExitDiffers || rep.Clean {
		t.Fatalf("verify after the damage: exit %d (want %d), clean %v", code, ExitDiffers, rep.Clean)
	}
	for _, tc := range []struct {
		name string
		c    verify.Category
		want string
	}{
		{"missing", rep.Missing, itemID(1) + "," + itemID(4)},
		{"extra", rep.Extra, itemID(2)},
		{"changed", rep.Changed, itemID(3)},
		{"orphaned", rep.Orphaned, itemID(4) + "," + itemID(5)},
	} {
		if got := ids(tc.c); got != tc.want || tc.c.Count != int64(strings.Count(tc.want, ",")+1) {
			t.Errorf("%s: ids %q (count %d), want %q", tc.name, got, tc.c.Count, tc.want)
		}
	}
	if rep.SourceItems != 59 || rep.Matched != 56 {
		t.Errorf("counts: source %d, matched %d", rep.SourceItems, rep.Matched)
	}
	table, _, code := cli(t, context.Background(), append([]string{"verify", "--recheck-delay", "-1s"}, e.args("orders", "target", keys...)...)...)
	if code != ExitDiffers || !strings.Contains(table, "the copy differs: 6 differences") || !strings.Contains(table, itemID(3)) {
		t.Errorf("table report (exit %d):\n%s", code, table)
	}

	rep, code = verifyJSON(t, e, keys, "--fix")
	if code != 0 || !rep.Clean || rep.Fix == nil || rep.Fix.Deleted != 3 || rep.Fix.Copied != 3 || rep.Fix.Remaining != 0 {
		t.Fatalf("verify --fix: exit %d, fix %+v, report %+v", code, rep.Fix, rep)
	}
	rep, code = verifyJSON(t, e, keys)
	if code != 0 || !rep.Clean || rep.Matched != 59 || rep.TargetItems != 59 {
		t.Fatalf("verify after the fix: exit %d, report %+v", code, rep)
	}
	// A sample checks a share of the items.
	rep, code = verifyJSON(t, e, keys, "--sample", "30")
	if code != 0 || rep.Matched == 0 || rep.Matched >= 59 {
		t.Fatalf("a 30%% sample matched %d of 59 (exit %d)", rep.Matched, code)
	}
}
