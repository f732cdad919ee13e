package main

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/rekey-dev/rekey/internal/bench"
)

// TestBenchSmoke runs `rekey bench` on a few hundred items: the emulator
// child starts, both writers copy everything, and the JSON report holds
// their figures.
func TestBenchSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an emulator process")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stdout, stderr, code := cli(t, ctx, "bench", "--items", "300", "--target-ru", "6000", "--source-ru", "6000",
		"--timeout", "90s", "-o", "json", "--log-level", "warn", "--max-source-ru", "5000")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	var rep struct {
		Items   int            `json:"items"`
		Results []bench.Result `json:"results"`
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	if rep.Items != 300 || len(rep.Results) != 2 {
		t.Fatalf("report %+v", rep)
	}
	rk, nv := rep.Results[0], rep.Results[1]
	if rk.Writer != "rekey bulk (paced)" || rk.InTarget != 300 || rk.Written != 300 || rk.Lost != 0 {
		t.Fatalf("rekey result %+v", rk)
	}
	if nv.Writer != "naive" || nv.InTarget+nv.Lost != 300 {
		t.Fatalf("naive result %+v", nv)
	}
	if rk.ProvisionedRU != 6000 || rk.Partitions != 1 || rk.Overall.RUPerSec <= 0 || rk.CPUSeconds <= 0 || rk.PeakRSSMB <= 0 {
		t.Fatalf("rekey figures %+v", rk)
	}
	if rk.MaxSourceRU != 5000 || rk.WorstSourceSecondRU <= 0 || nv.MaxSourceRU != 0 || nv.WorstSourceSecondRU != 0 {
		t.Fatalf("the source's worst second: rekey %+v, naive %+v", rk, nv)
	}
}
