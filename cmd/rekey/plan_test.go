package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/rekey-dev/rekey/migrate/plan"
)

// rekey plan tells a skewed key from a good one before any item is copied,
// counts the items a spec cannot transform, and creates the target.
func TestPlan(t *testing.T) {
	e := newE2E(t)
	src := e.container("orders", 24_000, "/region")
	for i := 0; i < 500; i++ {
		put(t, src, regions[i%len(regions)], order(i, 1))
	}
	plan := func(keys ...string) (plan.Plan, int) {
		args := append([]string{"plan", "-o", "json", "--sample", "400"}, e.args("orders", "orders-v2", keys...)...)
		out, errOut, code := cli(t, context.Background(), args...)
		var p plan.Plan
		if err := json.Unmarshal([]byte(out), &p); err != nil {
			t.Fatalf("plan %v: exit %d: %v\n%s%s", keys, code, err, out, errOut)
		}
		return p, code
	}
	// The region is a poor key: three values, one with 60% of the items.
	p, code := plan("/region")
	if code != ExitPlanWarnings || p.HotPartitions == 0 || p.DistinctKeys != 3 || len(p.Partitions) != 4 || p.Sampled != 400 {
		t.Fatalf("plan of /region: exit %d, %+v", code, p)
	}
	// Tenant and month spread well.
	p, code = plan("/pk={tenantId}-{createdAt|yyyyMM}")
	if code != 0 || p.HotPartitions != 0 || p.DistinctKeys < 100 || p.CopyRU <= 0 || p.CopySeconds <= 0 || p.SourceItems != 500 {
		t.Fatalf("plan of tenant-month: exit %d, %+v", code, p)
	}
	// A field most items lack: they would be dead-lettered.
	p, code = plan("/coupon")
	if code != ExitPlanWarnings || p.Failures["missing-field"] != 400 || p.FailureShare != 1 {
		t.Fatalf("plan of a missing field: exit %d, %+v", code, p)
	}
	out, errOut, code := cli(t, context.Background(), append([]string{"plan", "--create-target", "--target-throughput", "12000"}, e.args("orders", "orders-v2", "/tenantId", "/userId")...)...)
	if code != 0 || !strings.Contains(out, "target at 12000 RU/s: 2 physical partitions") {
		t.Fatalf("plan --create-target: exit %d\n%s%s", code, out, errOut)
	}
	def, err := e.client.ContainerDefinition(context.Background(), testDB, "orders-v2")
	if err != nil || def.Kind != "MultiHash" || strings.Join(def.Paths, ",") != "/tenantId,/userId" {
		t.Fatalf("the created target: %+v %v", def, err)
	}
}
