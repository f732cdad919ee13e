package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Report is what `rekey bench` prints: each writer's Result.
type Report struct {
	Options     Options  `json:"-"`
	Endpoint    string   `json:"-"`
	SeedSeconds float64  `json:"seedSeconds"`
	Results     []Result `json:"results"`
}

// Result is one writer's run.
type Result struct {
	Writer        string  `json:"writer"`
	Written       int64   `json:"written"`  // items the writer reports written
	InTarget      int64   `json:"inTarget"` // items the target holds after
	Lost          int64   `json:"lost"`     // dead-lettered (rekey) or failed for good (naive)
	Seconds       float64 `json:"seconds"`
	ItemsPerSec   float64 `json:"itemsPerSec"`
	ProvisionedRU float64 `json:"provisionedRU"`
	Partitions    int     `json:"partitions"`
	MaxRU         float64 `json:"maxRU,omitempty"`
	// WorstSecondRU is the most RU/s the target spent over any one
	// second of the run (from samples a tenth of a second apart),
	// FirstSecondRU over its first second.
	WorstSecondRU float64 `json:"worstSecondRU"`
	FirstSecondRU float64 `json:"firstSecondRU"`
	// WorstSourceSecondRU and FirstSourceSecondRU are the same of the
	// source's reads, measured for a writer under --max-source-ru
	// (MaxSourceRU).
	MaxSourceRU         float64 `json:"maxSourceRU,omitempty"`
	WorstSourceSecondRU float64 `json:"worstSourceSecondRU,omitempty"`
	FirstSourceSecondRU float64 `json:"firstSourceSecondRU,omitempty"`
	// Overall is the whole run; Steady leaves out the first and last 10%
	// of the items (SteadyFromSamples false: too short to tell).
	Overall           Figures `json:"overall"`
	Steady            Figures `json:"steady"`
	SteadyFromSamples bool    `json:"steadyFromSamples"`
	// ClientRequests and ClientThrottled are the writer's own count of its
	// requests to the target and their 429s.
	ClientRequests  int64   `json:"clientRequests"`
	ClientThrottled int64   `json:"clientThrottled"`
	CPUSeconds      float64 `json:"cpuSeconds"`
	CPUPer10kItems  float64 `json:"cpuSecondsPer10kItems"`
	PeakRSSMB       float64 `json:"peakRSSMB"`
	PeakRSSKind     string  `json:"peakRSSKind"`
}

// Figures are a window's figures, from the emulator's counters.
type Figures struct {
	Seconds     float64 `json:"seconds"`
	ItemsPerSec float64 `json:"itemsPerSec"`
	RUPerSec    float64 `json:"ruPerSec"`
	// Utilisation is RUPerSec over the provisioned RU/s; CapUse over
	// --max-ru when one is set.
	Utilisation float64 `json:"utilisation"`
	CapUse      float64 `json:"capUse,omitempty"`
	Requests    int64   `json:"requests"`
	Throttled   int64   `json:"throttled"`
	Share429    float64 `json:"share429"`
	// Hottest is the busiest partition's RU/s over its budget; UsableRU
	// the RU/s all partitions could use with this distribution of keys,
	// and Efficiency RUPerSec over it.
	Hottest    float64 `json:"hottestPartition"`
	UsableRU   float64 `json:"usableRU"`
	Efficiency float64 `json:"efficiency"`
}

func (w window) figures(r Result) Figures {
	f := Figures{Seconds: w.seconds, ItemsPerSec: w.itemsPerSec, RUPerSec: w.ruPerSec,
		Requests: w.requests, Throttled: w.throttled, Hottest: w.hottest, UsableRU: w.usableRU}
	if r.ProvisionedRU > 0 {
		f.Utilisation = w.ruPerSec / r.ProvisionedRU
	}
	if r.MaxRU > 0 {
		f.CapUse = w.ruPerSec / r.MaxRU
	}
	if w.requests > 0 {
		f.Share429 = float64(w.throttled) / float64(w.requests)
	}
	if w.usableRU > 0 {
		f.Efficiency = w.ruPerSec / min(w.usableRU, r.ProvisionedRU)
	}
	return f
}

// Write prints the report as text (a table) or as JSON (format "json").
func (rep *Report) Write(w io.Writer, format string) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Items     int     `json:"items"`
			ItemSize  int     `json:"itemSize"`
			TargetRU  int     `json:"targetRU"`
			MaxRU     float64 `json:"maxRU"`
			MaxSrcRU  float64 `json:"maxSourceRU"`
			Skew      float64 `json:"skew"`
			Keys      string  `json:"keys"`
			Bulk      bool    `json:"bulk"`
			LatencyMs int64   `json:"latencyMs"`
			*Report
		}{rep.Options.Items, rep.Options.ItemSize, rep.Options.TargetRU, rep.Options.MaxRU, rep.Options.MaxSourceRU, rep.Options.Skew,
			rep.Options.Keys, rep.Options.Bulk, rep.Options.Latency.Milliseconds(), rep})
	}
	o := rep.Options
	capText := "none"
	if o.MaxRU > 0 {
		capText = fmt.Sprintf("%v RU/s", o.MaxRU)
	}
	if o.MaxSourceRU > 0 {
		capText += fmt.Sprintf(" --max-source-ru %v RU/s", o.MaxSourceRU)
	}
	parts := 0
	if len(rep.Results) > 0 {
		parts = rep.Results[0].Partitions
	}
	fmt.Fprintf(w, "rekey bench: %d items of %d bytes, %s keys; targets of %d RU/s over %d partitions; latency %v; skew %.2f; rekey --bulk=%v --max-ru %s; source seeded in %.1fs\n\n",
		o.Items, o.ItemSize, o.Keys, o.TargetRU, parts, o.Latency, o.Skew, o.Bulk, capText, rep.SeedSeconds)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	row := func(name string, cell func(r Result) string) {
		cells := []string{name}
		for _, r := range rep.Results {
			cells = append(cells, cell(r))
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
	}
	row("", func(r Result) string { return r.Writer })
	row("items in target", func(r Result) string { return fmt.Sprint(r.InTarget) })
	row("items lost", func(r Result) string { return fmt.Sprint(r.Lost) })
	row("seconds", func(r Result) string { return fmt.Sprintf("%.1f", r.Seconds) })
	row("items/s", func(r Result) string { return fmt.Sprintf("%.0f", r.ItemsPerSec) })
	row("items/s, steady", func(r Result) string { return fmt.Sprintf("%.0f", r.Steady.ItemsPerSec) })
	row("target RU/s, steady", func(r Result) string { return fmt.Sprintf("%.0f", r.Steady.RUPerSec) })
	row("utilisation, steady", func(r Result) string { return fmt.Sprintf("%.3f", r.Steady.Utilisation) })
	row("utilisation, overall", func(r Result) string { return fmt.Sprintf("%.3f", r.Overall.Utilisation) })
	if o.MaxRU > 0 {
		row("RU/s over --max-ru, steady", func(r Result) string { return fmt.Sprintf("%.3f", r.Steady.CapUse) })
		row("RU/s over --max-ru, overall", func(r Result) string { return fmt.Sprintf("%.3f", r.Overall.CapUse) })
		row("worst second over --max-ru", func(r Result) string { return fmt.Sprintf("%.3f", r.WorstSecondRU/o.MaxRU) })
		row("first second over --max-ru", func(r Result) string { return fmt.Sprintf("%.3f", r.FirstSecondRU/o.MaxRU) })
	} else {
		row("worst second, RU/s", func(r Result) string { return fmt.Sprintf("%.0f", r.WorstSecondRU) })
	}
	if o.MaxSourceRU > 0 {
		row("source: worst second over --max-source-ru", func(r Result) string { return capShare(r.WorstSourceSecondRU, r.MaxSourceRU) })
		row("source: first second over --max-source-ru", func(r Result) string { return capShare(r.FirstSourceSecondRU, r.MaxSourceRU) })
	}
	row("429 share, steady", func(r Result) string { return pct(r.Steady.Share429) })
	row("429 share, overall", func(r Result) string { return pct(r.Overall.Share429) })
	row("requests (429s), overall", func(r Result) string {
		return fmt.Sprintf("%d (%d)", r.Overall.Requests, r.Overall.Throttled)
	})
	if o.Skew > 0 {
		row("hottest partition / budget", func(r Result) string { return fmt.Sprintf("%.3f", r.Steady.Hottest) })
		row("usable RU/s with these keys", func(r Result) string { return fmt.Sprintf("%.0f", r.Steady.UsableRU) })
		row("RU/s over usable, steady", func(r Result) string { return fmt.Sprintf("%.3f", r.Steady.Efficiency) })
	}
	row("client CPU s / 10k items", func(r Result) string { return fmt.Sprintf("%.2f", r.CPUPer10kItems) })
	row("peak RSS, MB", func(r Result) string { return fmt.Sprintf("%.0f", r.PeakRSSMB) })
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(rep.Results) == 2 {
		a, b := rep.Results[0], rep.Results[1]
		fmt.Fprintf(w, "\n%s / %s: items/s %s, steady utilisation %s, 429 share %s, CPU per item %s\n",
			a.Writer, b.Writer, ratio(a.ItemsPerSec, b.ItemsPerSec), ratio(a.Steady.Utilisation, b.Steady.Utilisation),
			ratio(a.Steady.Share429, b.Steady.Share429), ratio(a.CPUPer10kItems, b.CPUPer10kItems))
	}
	if !rep.Results[0].SteadyFromSamples {
		fmt.Fprintln(w, "(the run was too short to tell a steady state: steady figures are the whole run's)")
	}
	return nil
}

// capShare is RU/s over a cap, "-" for a writer not under it.
func capShare(ru, cap float64) string {
	if cap <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.3f", ru/cap)
}

func pct(v float64) string { return fmt.Sprintf("%.2f%%", 100*v) }

func ratio(a, b float64) string {
	if b == 0 {
		if a == 0 {
			return "1x"
		}
		return "inf"
	}
	return fmt.Sprintf("%.2fx", a/b)
}
