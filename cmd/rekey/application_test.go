package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/rekey-dev/rekey/migrate/plan"
)

// plan and cutover say what the application must write from the cutover
// on: the key paths, the synthetic key's template, and an example item as
// the application wrote it and as it must write it now; the state records
// it, and status shows it.
func TestPlanAndCutoverSayWhatTheApplicationWrites(t *testing.T) {
	e := newE2E(t)
	src := e.container("orders", 12_000, "/region")
	for i := 0; i < 30; i++ {
		put(t, src, region(i), order(i, 1))
	}
	keys := []string{"/pk={tenantId}-{createdAt|yyyyMM}"}
	args := func(cmd ...string) []string { return append(cmd, e.args("orders", "target", keys...)...) }

	r := runCLI(t, args("plan", "--target-throughput", "12000")...)
	if r.code != 0 {
		t.Fatalf("plan: exit %d\n%s%s", r.code, r.out, r.errOut)
	}
	for _, want := range []string{"after the cutover the application writes the new key:", "partition key: /pk",
		"/pk = {tenantId}-{createdAt|yyyyMM}", "example, as the application wrote it:", `"pk":"tenant-`} {
		if !strings.Contains(r.out, want) {
			t.Errorf("plan does not say %q:\n%s", want, r.out)
		}
	}
	r = runCLI(t, args("plan", "--target-throughput", "12000", "-o", "json")...)
	var p plan.Plan
	if err := json.Unmarshal([]byte(r.out), &p); err != nil || p.Application == nil || len(p.Application.Synthetic) != 1 || p.Application.After == nil {
		t.Fatalf("plan -o json: %v\n%s", err, r.out)
	}
	var before, after map[string]any
	if json.Unmarshal(p.Application.Before, &before) != nil || json.Unmarshal(p.Application.After, &after) != nil {
		t.Fatalf("plan's example: %s / %s", p.Application.Before, p.Application.After)
	}
	if _, ok := before["pk"]; ok || after["pk"] != after["tenantId"].(string)+"-"+after["createdAt"].(string)[:4]+after["createdAt"].(string)[5:7] {
		t.Fatalf("plan's example before %v, after %v", before, after)
	}
	if _, ok := before["_rid"]; ok {
		t.Fatalf("the example as the application wrote it has system properties: %v", before)
	}

	if r := runCLI(t, args("run", "--until-caught-up", "--create-target", "--target-throughput", "12000")...); r.code != 0 {
		t.Fatalf("run: exit %d\n%s%s", r.code, r.out, r.errOut)
	}
	r = runCLI(t, args("cutover", "--quiet-period", "300ms", "--recheck-delay", "1ms")...)
	if r.code != 0 {
		t.Fatalf("cutover: exit %d\n%s%s", r.code, r.out, r.errOut)
	}
	for _, want := range []string{"point the application at shop/target and have it write the new key:", "partition key: /pk",
		"/pk = {tenantId}-{createdAt|yyyyMM}", "and as it must write it from now on:", "rekey rollback"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("cutover does not say %q:\n%s", want, r.out)
		}
	}
	st := statusJSON(t, e)
	app := st.Meta.Cutover.Application
	if app == nil || len(app.KeyPaths) != 1 || app.KeyPaths[0] != "/pk" || app.Synthetic[0].Template != "{tenantId}-{createdAt|yyyyMM}" || app.Before == nil || app.After == nil {
		t.Fatalf("the state's record of the application's writes: %+v", app)
	}
	if len(st.Meta.Cutover.Follow) == 0 || st.Meta.Cutover.SourceHorizon == 0 {
		t.Fatalf("the cutover did not record where the target's feed stands or the source's horizon: %+v", st.Meta.Cutover)
	}
	r = runCLI(t, "status", "--state", e.state)
	if r.code != 0 || !strings.Contains(r.out, "the application writes to the target now:") || !strings.Contains(r.out, "/pk = {tenantId}-{createdAt|yyyyMM}") {
		t.Fatalf("status: exit %d\n%s%s", r.code, r.out, r.errOut)
	}
}
