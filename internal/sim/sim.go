package sim

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/migrate/pipeline"
	"github.com/rekey-dev/rekey/migrate/verify"
)

// Result is the outcome of one simulation.
type Result struct {
	Scenario   Scenario
	Violations []Violation
	// TraceHash is the hash of the whole trace: a replay of the seed gives
	// the same.
	TraceHash string
	Lines     int           // lines of the trace
	Virtual   time.Duration // virtual time the simulation took
	Tail      []string      // the trace's last lines
	// Observed is how many pages the Runner told its Observer of; 0 means
	// the one-loop-per-range invariant was not checked.
	Observed int
	// AllVersions: the final run followed the all-versions feed; FellBack
	// counts the ranges it found fallen back to the latest-version feed
	// (exact-after-catch-up is checked only when there are none).
	AllVersions bool
	FellBack    int
}

// Failed reports whether an invariant broke.
func (r *Result) Failed() bool { return len(r.Violations) > 0 }

// Report is what a failing seed prints: the seed, its scenario, the
// broken invariants, the end of the trace, and how to replay it.
func (r *Result) Report() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s", r.Scenario)
	fmt.Fprintf(&b, "violations:\n")
	for _, v := range r.Violations {
		fmt.Fprintf(&b, "  %s\n", v)
	}
	fmt.Fprintf(&b, "trace (last %d of %d lines, hash %.16s):\n", len(r.Tail), r.Lines, r.TraceHash)
	for _, l := range r.Tail {
		fmt.Fprintf(&b, "  %s\n", l)
	}
	fmt.Fprintf(&b, "replay: REKEY_SIM_SEED=%d go test ./internal/sim -run TestSimulation -v\n", r.Scenario.Seed)
	return b.String()
}

// Simulate runs the scenario of a seed. It must run inside a
// testing/synctest bubble, whose fake clock every timer and sleep of the
// simulation (and of the code under test) runs on.
//
// It has three phases. Chaos: workers join, leave and crash, the service
// faults and splits, the application writes, the operator changes the
// control file and tries a cutover. Healthy: the faults stop, the
// application stops writing the source, a final run catches up and a
// cutover accepting the dead letters records the switch. After the
// cutover: the application writes to the target, and rekey's commands run
// again. Invariants are checked as requests take effect and at the end of
// each phase.
func Simulate(seed uint64, opts Options) (*Result, error) {
	sc := Generate(seed)
	w, err := newWorld(sc, opts)
	if err != nil {
		return nil, err
	}
	defer w.close()
	if err := w.app.seed(); err != nil {
		return nil, err
	}
	if sc.StartFromNow {
		if err := w.preload(); err != nil {
			return nil, err
		}
	}
	w.chaos()
	w.healed.Store(true)
	w.trace.add("sim", "healed", "", "the chaos phase is over")
	if w.final() {
		w.afterCutover()
	}
	w.landings.Wait()
	return &Result{
		Scenario: sc, Violations: w.check.result(), TraceHash: w.trace.sum(), Lines: w.trace.count(),
		Virtual: w.elapsed(), Tail: w.trace.last(traceTail), Observed: w.check.observerCalls(),
		AllVersions: w.finalAllVersions, FellBack: w.finalFellBack,
	}, nil
}

// preload copies the source into the target as a bulk load before a
// migration that starts from now would have.
func (w *world) preload() error {
	items := w.src.Items()
	sortItems(items)
	for _, it := range items {
		res, err := w.tr.Apply(it.Body)
		if err != nil {
			continue
		}
		if _, err := w.dst.Create(context.Background(), migrate.Key(res.Key), res.Item); err != nil {
			return fmt.Errorf("preload %s: %w", it.ID, err)
		}
	}
	return nil
}

// chaos runs the chaos phase to its end and waits for every worker, the
// application and the operator to stop.
func (w *world) chaos() {
	ctx, cancel := context.WithTimeout(context.Background(), w.sc.Chaos)
	defer cancel()
	slots := make([]*slot, w.sc.Slots)
	for i := range slots {
		slots[i] = &slot{w: w, idx: i, holds: make(chan *hold)}
	}
	var wg sync.WaitGroup
	wg.Go(func() { w.app.run(ctx) })
	wg.Go(func() { w.operate(ctx, slots) })
	for _, s := range slots {
		wg.Go(func() { s.run(ctx) })
	}
	wg.Wait()
}

// final is the healthy phase: a final run until caught up, the lease and
// completeness checks, and a cutover that must succeed. It reports whether
// the migration is cut over.
func (w *world) final() bool {
	if w.check.cutOver() {
		// Cut over during the chaos phase: the application moved to the
		// target then, and the copy must still equal the source.
		w.checkEqual("sim")
		return true
	}
	p := w.newProcess("final.run", -1)
	var sum pipeline.Summary
	err := w.superviseFor(p, 20*time.Minute, func(ctx context.Context) error {
		return p.withState(ctx, w.startFrom(), func(st *state) error {
			var err error
			sum, err = p.runCommand(ctx, st, true)
			return err
		})
	})
	if err != nil || !sum.CaughtUp {
		w.check.violate(InvLive, p.name, "the final run in a healthy world did not catch up: caught up %v, err %v", sum.CaughtUp, err)
		return false
	}
	w.check.coverage(p.name)
	if diffs := w.check.differences(false, true, blindSpot{}); len(diffs) > 0 {
		w.check.violate(InvComplete, p.name, "%d source items are not in the target at their latest version nor dead-lettered%s: %s", len(diffs), w.othersLeases(p), summarize(diffs))
	}
	w.finalAllVersions, w.finalFellBack = sum.AllVersions, sum.Fallbacks
	if sum.AllVersions && sum.Fallbacks == 0 && !w.sc.StartFromNow {
		if extra := w.check.extraCopies(); len(extra) > 0 {
			w.check.violate(InvExact, p.name, "%d target items no source item maps to after a sync on the all-versions feed without a fallback: %s", len(extra), summarize(extra))
		}
	}
	c := w.newProcess("final.cutover", -1)
	err = w.superviseFor(c, 30*time.Minute, func(ctx context.Context) error {
		return c.withState(ctx, time.Time{}, func(st *state) error {
			rep, err := c.cutoverCommand(ctx, st, time.Second, 10*time.Minute, true, nil)
			if rep != nil && rep.Verify != nil {
				w.trace.add(c.name, "verify", "", verifySummary(rep.Verify))
			}
			return err
		})
	})
	if err != nil || !w.check.cutOver() {
		w.check.violate(InvLive, c.name, "the cutover in a healthy, quiet world did not succeed: %v", err)
		return false
	}
	w.checkEqual(c.name)
	return true
}

// othersLeases notes the leases other (stopped or crashed) workers still
// held when a run judged every range caught up from their records.
func (w *world) othersLeases(p *process) string {
	ls, err := w.leases()
	if err != nil {
		return ""
	}
	var others []string
	for _, l := range ls {
		if l.Owner != "" && l.Owner != p.name {
			others = append(others, fmt.Sprintf("%s (%s)", l.ID, l.Owner))
		}
	}
	if len(others) == 0 {
		return ""
	}
	return fmt.Sprintf(" (caught up judged from the records of leases other workers held: %s)", strings.Join(others, ", "))
}

// verifySummary is a verify report on one line: the count of each kind of
// difference, with the first ids.
func verifySummary(rep *verify.Report) string {
	var parts []string
	for _, c := range []struct {
		name string
		cat  verify.Category
	}{
		{"missing", rep.Missing}, {"extra", rep.Extra}, {"changed", rep.Changed}, {"orphaned", rep.Orphaned},
		{"collisions", rep.Collisions}, {"dead-lettered", rep.DeadLettered}, {"untransformable", rep.Untransformable},
	} {
		if c.cat.Count == 0 {
			continue
		}
		var ids []string
		for i, d := range c.cat.Items {
			if i == 4 {
				break
			}
			ids = append(ids, d.ID+d.SourceKey)
		}
		parts = append(parts, fmt.Sprintf("%s %d %v", c.name, c.cat.Count, ids))
	}
	return fmt.Sprintf("matched %d; %s", rep.Matched, strings.Join(parts, "; "))
}

// checkEqual checks that the target is the transformed source.
func (w *world) checkEqual(proc string) {
	// A cutover recorded while the application wrote could not see its
	// last writes, and no command may write the target after it.
	if diffs := w.check.differences(true, true, w.check.unseenByCutover()); len(diffs) > 0 {
		w.check.violate(InvEqual, proc, "%d differences after the cutover: %s", len(diffs), summarize(diffs))
	}
}

// afterCutover is the last phase: the application writes to the target,
// then run, verify --fix and deadletter replay run again; none may touch
// what the application wrote (checked as their writes take effect).
func (w *world) afterCutover() {
	w.app.writeTarget(context.Background())
	commands := []struct {
		name string
		cmd  func(ctx context.Context, p *process, st *state) error
	}{
		{"after.run", func(ctx context.Context, p *process, st *state) error {
			_, err := p.runCommand(ctx, st, true)
			return err
		}},
		{"after.verify", func(ctx context.Context, p *process, st *state) error {
			_, err := p.verifyCommand(ctx, st, true)
			return err
		}},
		{"after.replay", func(ctx context.Context, p *process, st *state) error {
			_, err := p.replayCommand(ctx, st)
			return err
		}},
	}
	for _, c := range commands {
		p := w.newProcess(c.name, -1)
		_ = w.superviseFor(p, 20*time.Minute, func(ctx context.Context) error {
			return p.withState(ctx, time.Time{}, func(st *state) error { return c.cmd(ctx, p, st) })
		})
	}
}

// superviseFor runs an operator's command, stopping it after limit.
func (w *world) superviseFor(p *process, limit time.Duration, body func(ctx context.Context) error) error {
	stop := make(chan struct{})
	t := time.AfterFunc(limit, func() { close(stop) })
	defer t.Stop()
	err := w.supervise(p, stop, body)
	p.cancel()
	return err
}
