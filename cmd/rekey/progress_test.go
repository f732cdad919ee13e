package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/migrate/pipeline"
	"github.com/rekey-dev/rekey/migrate/status"
)

// reportOf is a state's report: ranges with items, caught up or not, the
// caught-up ones probed with lag.
func reportOf(phase string, items []int64, caughtUp []bool, lagItems int64, lagSeconds float64) status.Report {
	rep := status.Report{Phase: phase}
	for i, n := range items {
		r := status.Range{ID: string(rune('a' + i)), Items: n}
		if caughtUp[i] {
			r.CaughtUpAt = time.Now()
			li, ls := lagItems, lagSeconds
			r.LagItems, r.LagSeconds = &li, &ls
		}
		rep.Items += n
		rep.Ranges = append(rep.Ranges, r)
	}
	return rep
}

// A resumed copy starts from what the state checkpointed (44%, not 0),
// its ETA comes from the items remaining at the migration's rate; once
// every range caught up the view is of syncing, with the lag.
func TestProgressViewKnowsItsPhase(t *testing.T) {
	s := pipeline.StatsSnapshot{Created: 10, Elapsed: 3 * time.Second} // this process wrote 10 since it resumed
	v := viewOf(s, reportOf(status.PhaseCopying, []int64{5000, 3800}, []bool{true, false}, 0, 0), true, 20_000, 100, 50)
	if !v.copying() || v.Items != 8800 || v.Percent != 44 || !v.HasETA || v.ETA != 112*time.Second || v.Worker != 10 {
		t.Errorf("resumed copy: %+v; want copying 8800 items, 44%%, ETA 1m52s, worker 10", v)
	}
	v = viewOf(s, reportOf(status.PhaseSyncing, []int64{12_000, 8000}, []bool{true, true}, 6, 3), true, 20_000, 0, 0)
	if v.copying() || !v.CaughtUp || v.HasETA || !v.HasLag || v.Lag.LagItems != 12 || v.Lag.LagSeconds != 3 {
		t.Errorf("syncing: %+v; want caught up, no ETA, lag 12 items 3s", v)
	}
	line := fit(v.parts(), 200)
	if !strings.HasPrefix(line, "syncing  lag 12 items, 3s  20,000 items copied") {
		t.Errorf("syncing line %q", line)
	}
	// Before the state is read: this process's counts, phase starting.
	v = viewOf(s, status.Report{}, false, 20_000, 0, 0)
	if v.Phase != phaseStarting || v.Items != 10 {
		t.Errorf("before the state is read: %+v", v)
	}
}

// lines splits terminal output into what each redraw leaves on one line,
// without the erase-line sequence.
func lines(out string) []string {
	out = strings.ReplaceAll(out, "\x1b[K", "")
	return strings.FieldsFunc(out, func(r rune) bool { return r == '\r' || r == '\n' })
}

// On terminals 80 and 160 columns wide no redraw is wider than the
// terminal less one column, whatever the phase and however long the
// settings: the bar while copying (with its percentage), the copy's end
// kept on screen, then the syncing line with its lag.
func TestProgressFitsTheTerminal(t *testing.T) {
	for _, width := range []int{80, 160} {
		var out bytes.Buffer
		p := &progressReporter{terminal: true, out: &out, width: func() int { return width }}
		long := "max RU 50000  max source RU 20000  concurrency 64  pace 123456 RU/s over 25 partitions"
		copying := viewOf(pipeline.StatsSnapshot{Elapsed: time.Minute, Throttled: 12345, WriteRequests: 1_000_000, WritesThrottled: 12345, DeadLettered: 3},
			reportOf(status.PhaseCopying, []int64{5_000_000, 3_800_000}, []bool{true, false}, 0, 0), true, 20_000_000, 123_456, 987_654)
		copying.Settings = long
		p.draw(copying)
		syncing := viewOf(pipeline.StatsSnapshot{Elapsed: time.Hour}, reportOf(status.PhaseSyncing, []int64{12_000_000, 8_000_000}, []bool{true, true}, 10_000, 75),
			true, 20_000_000, 12, 3000)
		syncing.Settings = long
		p.draw(syncing)
		p.draw(syncing)
		p.clear()
		got := out.String()
		for _, l := range lines(got) {
			if n := utf8.RuneCountInString(l); n > width-1 {
				t.Errorf("%d columns: a line of %d: %q", width, n, l)
			}
		}
		for _, want := range []string{"44%", "copying 8,800,000/20,000,000", "ETA 1m31s", "copied 20,000,000 items in 1h0m0s; every range has caught up\n", "syncing  lag 20,000 items, 1m15s"} {
			if !strings.Contains(got, want) {
				t.Errorf("%d columns: no %q in %q", width, want, got)
			}
		}
		if width == 160 && !strings.Contains(got, "123,456 items/s  987,654 RU/s  429s 1.2%  dead 3") {
			t.Errorf("160 columns: the rates should fit: %q", got)
		}
	}
}

// Without a terminal, progress is a log line per interval: in JSON it
// carries the phase, caughtUp and durations as strings.
func TestProgressJSONLines(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{ReplaceAttr: durationsAsText}))
	copying := viewOf(pipeline.StatsSnapshot{Elapsed: 2100 * time.Millisecond}, reportOf(status.PhaseCopying, []int64{100, 0}, []bool{true, false}, 0, 2), true, 1000, 10, 5)
	syncing := viewOf(pipeline.StatsSnapshot{Elapsed: 90 * time.Second}, reportOf(status.PhaseSyncing, []int64{600, 400}, []bool{true, true}, 4, 2), true, 1000, 0, 0)
	log.Info("progress", copying.logArgs()...)
	log.Info("progress", syncing.logArgs()...)
	dec := json.NewDecoder(&buf)
	var first, second map[string]any
	if err := dec.Decode(&first); err != nil {
		t.Fatal(err)
	}
	if err := dec.Decode(&second); err != nil {
		t.Fatal(err)
	}
	if first["phase"] != "copying" || first["caughtUp"] != false || first["eta"] != "1m30s" || first["elapsed"] != "2s" || first["percent"] != 10.0 || first["ranges"] != 2.0 {
		t.Errorf("copying line: %v", first)
	}
	if second["phase"] != "syncing" || second["caughtUp"] != true || second["lag"] != "2s" || second["lagItems"] != 8.0 || second["eta"] != nil || second["elapsed"] != "1m30s" {
		t.Errorf("syncing line: %v", second)
	}
}

// Rates come from samples at least a second apart, over the last 5s.
func TestRateWindow(t *testing.T) {
	var w rateWindow
	t0 := time.Unix(0, 0)
	if i, r := w.add(t0, 1000, 0); i != 0 || r != 0 {
		t.Errorf("first sample: %v %v", i, r)
	}
	if i, _ := w.add(t0.Add(500*time.Millisecond), 1500, 0); i != 0 {
		t.Errorf("half a second: %v", i)
	}
	if i, r := w.add(t0.Add(2*time.Second), 1200, 100); i != 100 || r != 50 {
		t.Errorf("two seconds: %v items/s %v RU/s, want 100, 50", i, r)
	}
	for s := 3; s <= 60; s++ {
		w.add(t0.Add(time.Duration(s)*time.Second), 1200, 100) // stalled
	}
	if i, _ := w.add(t0.Add(61*time.Second), 1200, 100); i != 0 {
		t.Errorf("stalled for a minute: %v items/s", i)
	}
	if len(w.samples) > 7 {
		t.Errorf("%d samples kept", len(w.samples))
	}
}

// cancelOn is an io.Writer that cancels a command once what it wrote
// contains want.
type cancelOn struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	want   string
	cancel context.CancelFunc
}

func (w *cancelOn) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.want) {
		w.cancel()
	}
	return len(p), nil
}

// A resumed run's progress lines (JSON, no terminal) start from what the
// state checkpointed, not from 0, and say the phase: a migration copied
// by a first run shows all its items at once, syncing and caught up.
func TestProgressResumesFromTheState(t *testing.T) {
	e := newE2E(t)
	src := e.container("orders", 12_000, "/region")
	const items = 120
	for i := range items {
		put(t, src, regions[i%len(regions)], order(i, 1))
	}
	args := append([]string{"run", "--create-target", "--poll-interval", "20ms"}, e.args("orders", "orders-by-tenant", "/tenantId")...)
	if out, errOut, code := cli(t, context.Background(), append(args, "--until-caught-up")...); code != 0 {
		t.Fatalf("first run: exit %d\n%s%s", code, out, errOut)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	logs := &cancelOn{want: `"phase":"syncing"`, cancel: cancel}
	root := newRootCommand()
	root.SetArgs(append(args, "--progress-interval", "50ms", "--log-format", "json", "--log-level", "info"))
	root.SetOut(io.Discard)
	root.SetErr(logs)
	err := root.ExecuteContext(ctx)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != ExitInterrupted {
		t.Fatalf("resumed run: %v, want exit %d\n%s", err, ExitInterrupted, logs.buf.String())
	}
	var first map[string]any
	for _, line := range strings.Split(logs.buf.String(), "\n") {
		if strings.Contains(line, `"msg":"progress"`) && strings.Contains(line, `"phase":"syncing"`) {
			if err := json.Unmarshal([]byte(line), &first); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	if first["items"] != float64(items) || first["total"] != float64(items) || first["caughtUp"] != true || first["workerItems"] != 0.0 || first["percent"] != 100.0 {
		t.Errorf("the resumed run's progress: %v; want %d items of %d, caught up, none written by this run", first, items, items)
	}
	if el, _ := first["elapsed"].(string); !strings.HasSuffix(el, "s") {
		t.Errorf("elapsed %v: want a duration string", first["elapsed"])
	}
}

// Syncing, the progress names the change feed the ranges follow, as status
// does, and the ranges that fell back from the all-versions feed; the JSON
// line carries both.
func TestProgressViewNamesTheFeed(t *testing.T) {
	rep := reportOf(status.PhaseSyncing, []int64{600, 400}, []bool{true, true}, 0, 0)
	for i := range rep.Ranges {
		rep.Ranges[i].Mode = lease.ModeAllVersions
	}
	v := viewOf(pipeline.StatsSnapshot{}, rep, true, 1000, 0, 0)
	if line := fit(v.parts(), 200); !strings.HasPrefix(line, "syncing all-versions  lag 0 items, 0s  1,000 items copied  0 RU/s") {
		t.Errorf("all-versions syncing line %q", line)
	}
	rep.Ranges[1].Mode, rep.Ranges[1].Fallback = lease.ModeLatest, "its position left the retention window"
	v = viewOf(pipeline.StatsSnapshot{}, rep, true, 1000, 0, 0)
	if line := fit(v.parts(), 200); !strings.HasPrefix(line, "syncing mixed  lag 0 items, 0s  1,000 items copied  1 fell back to latest") {
		t.Errorf("line with a fallback %q", line)
	}
	var out bytes.Buffer
	slog.New(slog.NewJSONHandler(&out, nil)).Info("progress", v.logArgs()...)
	var line map[string]any
	if err := json.Unmarshal(out.Bytes(), &line); err != nil || line["feed"] != "mixed" || line["fallbacks"] != 1.0 {
		t.Errorf("JSON progress line %s (%v): want feed mixed, fallbacks 1", out.String(), err)
	}
}
