package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// customerOrder is a source item; an empty customer leaves the field out.
func customerOrder(id, region, customer string) map[string]any {
	m := map[string]any{"id": id, "region": region}
	if customer != "" {
		m["customerId"] = customer
	}
	return m
}

// A resume that changes (or removes) a placeholder default which keys of
// items already written were built with is refused: it would re-key those
// items silently (their next versions under the new key, their copies left
// under the old one). A default no written item used may change, and one
// may be added where there was none.
func TestResumeRefusesAChangedDefaultThatWasUsed(t *testing.T) {
	e := newE2E(t)
	src := e.container("orders", 12_000, "/region")
	for i, c := range []string{"c1", "c2", "c3", "", "", ""} {
		put(t, src, "eu", customerOrder(itemID(i), "eu", c))
	}
	run := func(key string) (string, string, int) {
		return cli(t, context.Background(), append([]string{"run", "--until-caught-up", "--create-target", "--target-throughput", "12000", "--poll-interval", "20ms"},
			e.args("orders", "target", key)...)...)
	}
	if out, errOut, code := run("/pk={customerId?none}"); code != 0 {
		t.Fatalf("first run: exit %d\n%s%s", code, out, errOut)
	}
	for _, key := range []string{"/pk={customerId?zzz}", "/pk={customerId}"} {
		out, errOut, code := run(key)
		if code != ExitError || !strings.Contains(errOut, `keys built with the default "none"`) || !strings.Contains(errOut, `--key '/pk={customerId?none}'`) {
			t.Errorf("resume with --key %s: exit %d, want %d and a refusal naming the default and the recorded spec\n%s%s", key, code, ExitError, out, errOut)
		}
	}
	put(t, src, "eu", customerOrder(itemID(3), "eu", "")) // a new version of an item keyed with the default
	if out, errOut, code := run("/pk={customerId?none}"); code != 0 {
		t.Fatalf("resume with the recorded spec: exit %d\n%s%s", code, out, errOut)
	}
	out, errOut, code := cli(t, context.Background(), append([]string{"verify", "--recheck-delay", "-1s"}, e.args("orders", "target", "/pk={customerId?none}")...)...)
	if code != 0 {
		t.Fatalf("verify: exit %d\n%s%s", code, out, errOut)
	}

	// Another migration whose items all have the field: its default was
	// never used, so it may change; and a default may be added.
	e.state = filepath.Join(t.TempDir(), "state2")
	src2 := e.container("orders2", 12_000, "/region")
	for i := 0; i < 3; i++ {
		put(t, src2, "eu", customerOrder(itemID(i), "eu", "c"))
	}
	run2 := func(key string) (string, string, int) {
		return cli(t, context.Background(), append([]string{"run", "--until-caught-up", "--create-target", "--target-throughput", "12000", "--poll-interval", "20ms"},
			e.args("orders2", "target2", key)...)...)
	}
	for _, key := range []string{"/pk={customerId}-{region}", "/pk={customerId?none}-{region}", "/pk={customerId?zzz}-{region?x}"} {
		if out, errOut, code := run2(key); code != 0 {
			t.Fatalf("run with --key %s: exit %d\n%s%s", key, code, out, errOut)
		}
	}
}
