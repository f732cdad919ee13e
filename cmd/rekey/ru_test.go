package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// TestRUPerChange measures what one change of each kind costs while
// rekey run syncs, in both modes, on the emulator's cost model: the RU the
// target and the source consumed (the emulator's counters) while rekey run
// synced 100 changes of one kind made after the copy, divided by 100. In latest mode a delete
// or a key change costs the sync nothing on the target but leaves an item
// for reconciliation, whose cost (a verify --fix: both containers scanned)
// is reported beside it. It runs only with REKEY_RU_PER_CHANGE=1:
//
//	REKEY_RU_PER_CHANGE=1 go test ./cmd/rekey -run TestRUPerChange -v
func TestRUPerChange(t *testing.T) {
	if os.Getenv("REKEY_RU_PER_CHANGE") == "" {
		t.Skip("set REKEY_RU_PER_CHANGE=1 to measure")
	}
	const items, changes = 200, 100
	kinds := []string{"create", "update", "key change", "delete", "ttl expiry"}
	var table strings.Builder
	fmt.Fprintf(&table, "\n| mode | change | target RU/change | source RU/change | left to reconcile | reconcile RU (verify --fix, %d items) |\n| --- | --- | --- | --- | --- | --- |\n", items)
	for _, mode := range []string{"latest", "all-versions"} {
		for _, kind := range kinds {
			e, clock := newVersionedE2E(t)
			src := e.versionedContainer("orders", 12_000, time.Hour, -1, "/region")
			for i := 0; i < items; i++ {
				o := order(i, 1)
				if kind == "ttl expiry" && i < changes {
					o["ttl"] = 60
				}
				put(t, src, regions[i%len(regions)], o)
			}
			run := append([]string{"run", "--mode", mode, "--until-caught-up", "--create-target", "--target-throughput", "12000"}, e.args("orders", "target", versionedKeys...)...)
			if out, errOut, code := cli(t, context.Background(), run...); code != 0 {
				t.Fatalf("copy: exit %d\n%s%s", code, out, errOut)
			}
			for i := 0; i < changes; i++ {
				switch kind {
				case "create":
					put(t, src, regions[i%len(regions)], order(items+i, 1))
				case "update":
					put(t, src, regions[i%len(regions)], order(i, 2))
				case "key change":
					o := order(i, 2)
					o["tenantId"] = "tenant-moved"
					put(t, src, regions[i%len(regions)], o)
				case "delete":
					if _, err := src.Delete(context.Background(), keyOf(regions[i%len(regions)]), itemID(i), ""); err != nil {
						t.Fatal(err)
					}
				}
			}
			if kind == "ttl expiry" {
				clock.Advance(2 * time.Minute)
			}
			before := e.ru(t) // after the application's writes: what follows is rekey's
			if out, errOut, code := cli(t, context.Background(), run...); code != 0 {
				t.Fatalf("sync: exit %d\n%s%s", code, out, errOut)
			}
			synced := e.ru(t)
			rep, _ := verifyJSON(t, e, versionedKeys, "--fix")
			fixed := e.ru(t)
			left := int64(0)
			if rep.Fix != nil {
				left = rep.Fix.Deleted + rep.Fix.Copied
			}
			fmt.Fprintf(&table, "| %s | %s | %.1f | %.1f | %d | %.0f |\n", mode, kind,
				(synced.target-before.target)/changes, (synced.source-before.source)/changes, left,
				fixed.target-synced.target+fixed.source-synced.source)
			if mode == "all-versions" && left != 0 {
				t.Errorf("all-versions, %s: verify --fix still had %d items to fix", kind, left)
			}
		}
	}
	t.Log(table.String())
}

// ruCounters are the RU the source and the target have consumed so far.
type ruCounters struct{ source, target float64 }

func (e *e2e) ru(t *testing.T) ruCounters {
	t.Helper()
	s, err := e.srv.ContainerMetrics(testDB, "orders")
	if err != nil {
		t.Fatal(err)
	}
	d, err := e.srv.ContainerMetrics(testDB, "target")
	if err != nil {
		t.Fatal(err)
	}
	return ruCounters{source: s.RU, target: d.RU}
}
