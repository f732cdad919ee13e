package main

import (
	"strings"
	"testing"
)

// A source item the forward copy dead-lettered (here the second of two
// source items that map to one id and new key: a collision) and that the
// cutover accepted with --accept-dead-letter never reached the target; the
// source holds its only copy. A rollback leaves it in the source: the
// application did not delete it in the target, it was never there. Before,
// the rollback's check compared without the forward migration's dead
// letters, so the item showed as "missing" (what an application delete in
// the target looks like), and the rollback's cutover deleted it from the
// source: the item was gone from both containers.
func TestRollbackKeepsSourceItemsTheCutoverAcceptedAsDeadLetters(t *testing.T) {
	e := newE2E(t)
	src := e.container("orders", 12_000, "/region")
	for i := 0; i < 10; i++ {
		put(t, src, region(i), order(i, 1))
	}
	// Item 3's twin: the same id in another region, the same tenant and
	// month, so the same id and new key.
	twin := order(3, 1)
	twin["region"] = "brazilsouth"
	twin["note"] = "only in the source: its copy collided with item 3's"
	put(t, src, "brazilsouth", twin)
	args := func(cmd ...string) []string { return append(cmd, e.args("orders", "target", rollbackKeys...)...) }
	if r := runCLI(t, args("run", "--until-caught-up", "--create-target", "--target-throughput", "12000")...); r.code != 0 || !strings.Contains(r.out, "collisions 1") {
		t.Fatalf("run: exit %d, want one collision\n%s%s", r.code, r.out, r.errOut)
	}
	if r := runCLI(t, args("cutover", "--quiet-period", "300ms", "--recheck-delay", "1ms", "--accept-dead-letter")...); r.code != 0 {
		t.Fatalf("cutover --accept-dead-letter: exit %d\n%s%s", r.code, r.out, r.errOut)
	}
	// Which of the two the copy kept depends on the order it read them;
	// the other exists only in the source.
	before := map[string]bool{"original": sameItem(t, src, region(3), order(3, 1)), "twin": sameItem(t, src, "brazilsouth", twin)}
	if !before["original"] || !before["twin"] {
		t.Fatalf("before the rollback the source holds both: %v", before)
	}
	if r := runCLI(t, args("rollback", "--until-caught-up")...); r.code != 0 {
		t.Fatalf("rollback: exit %d\n%s%s", r.code, r.out, r.errOut)
	}
	r := runCLI(t, args("rollback", "verify", "-o", "json", "--recheck-delay", "-1s")...)
	if missing, dead := jsonCount(t, r.out, "missing", "count"), jsonCount(t, r.out, "deadLettered", "count"); missing != 0 || dead != 1 {
		t.Fatalf("rollback verify: %d missing and %d dead-lettered, want the forward dead letter counted as dead-lettered, not missing\n%s", missing, dead, r.out)
	}
	if r := runCLI(t, args("rollback", "cutover", "--quiet-period", "300ms", "--recheck-delay", "1ms")...); r.code == 0 {
		t.Fatalf("rollback cutover without --accept-dead-letter recorded over a dead-lettered item\n%s", r.out)
	}
	if r := runCLI(t, args("rollback", "cutover", "--quiet-period", "300ms", "--recheck-delay", "1ms", "--accept-dead-letter")...); r.code != 0 {
		t.Fatalf("rollback cutover --accept-dead-letter: exit %d\n%s%s", r.code, r.out, r.errOut)
	}
	after := map[string]bool{"original": sameItem(t, src, region(3), order(3, 1)), "twin": sameItem(t, src, "brazilsouth", twin)}
	if !after["original"] || !after["twin"] {
		t.Fatalf("the rollback deleted a source item the cutover accepted as a dead letter (never in the target): still in the source %v", after)
	}
}
