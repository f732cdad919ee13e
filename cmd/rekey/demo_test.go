package main

import (
	"context"
	"strings"
	"testing"
)

// rekey demo runs end to end: the hot partition, the migration, the proof,
// the cutover and the even distribution, on the embedded emulator.
func TestDemo(t *testing.T) {
	out, errOut, code := cli(t, context.Background(), "demo", "--items", "400", "--load-for", "400ms")
	if code != 0 {
		t.Fatalf("demo: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		"1. The source shop/orders is partitioned on /region",
		"3. rekey run --source shop/orders --target shop/orders-by-tenant-month",
		"0 dead letters",
		"0 differences",
		"cutover recorded at",
		"6. The target shop/orders-by-tenant-month",
		"7. The same application load on the target:",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	// The target's load is spread: no partition throttles.
	if tail := out[strings.Index(out, "7. The same"):]; !strings.Contains(tail, " 0 of ") {
		t.Errorf("the target throttled the application's load:\n%s", tail)
	}
}
