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
	// -o json gives each key as its JSON (an array, not a string holding
	// one) and its size in bytes beside a human string; the table too says
	// small sizes in bytes, not "~0.00 GB".
	args := append([]string{"plan", "-o", "json", "--sample", "400"}, e.args("orders", "orders-v2", "/region")...)
	out, _, _ := cli(t, context.Background(), args...)
	var raw struct {
		TopKeys []map[string]any `json:"topKeys"`
	}
	if err := json.Unmarshal([]byte(out), &raw); err != nil || len(raw.TopKeys) == 0 {
		t.Fatalf("plan -o json: %v\n%s", err, out)
	}
	top := raw.TopKeys[0]
	if key, ok := top["key"].([]any); !ok || len(key) != 1 || key[0] != "westeurope" {
		t.Errorf("topKeys[0].key = %#v, want the JSON array [\"westeurope\"]", top["key"])
	}
	if b, ok := top["estimatedBytes"].(float64); !ok || b <= 0 || b != float64(int64(b)) {
		t.Errorf("topKeys[0].estimatedBytes = %#v, want a whole number of bytes", top["estimatedBytes"])
	}
	if s, _ := top["estimatedSize"].(string); !strings.HasSuffix(s, " KB") && !strings.HasSuffix(s, " B") {
		t.Errorf("topKeys[0].estimatedSize = %q: 300 small items are bytes or KB", s)
	}
	table, _, _ := cli(t, context.Background(), append([]string{"plan", "--sample", "400"}, e.args("orders", "orders-v2", "/region")...)...)
	if strings.Contains(table, "0.00 GB") || !strings.Contains(table, `["westeurope"]`) || !strings.Contains(table, " KB at full size") {
		t.Errorf("plan's table:\n%s", table)
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
