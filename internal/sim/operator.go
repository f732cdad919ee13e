package sim

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// event is something the operator or the service does at a time of the
// chaos phase.
type event struct {
	at time.Duration
	do func(ctx context.Context)
}

// operate runs the chaos phase's schedule: splits of the source and the
// target, control-file changes, and cutover attempts while the
// application writes.
func (w *world) operate(ctx context.Context, slots []*slot) {
	var events []event
	for _, s := range w.sc.Splits {
		events = append(events, event{s.At, func(context.Context) { w.split(s) }})
	}
	for _, c := range w.sc.Controls {
		events = append(events, event{c.At, func(context.Context) { w.writeControl(c.JSON) }})
	}
	for i, at := range w.sc.Cutovers {
		events = append(events, event{at, func(ctx context.Context) { w.cutoverAttempt(ctx, i+1, slots) }})
	}
	sort.SliceStable(events, func(i, j int) bool { return events[i].at < events[j].at })
	for _, e := range events {
		if sleepUntil(ctx, w, e.at) != nil {
			return
		}
		e.do(ctx)
	}
}

// split splits a partition of the source or the target.
func (w *world) split(s Split) {
	c, side := w.src, "source"
	if s.Target {
		c, side = w.dst, "target"
	}
	w.apply(func() {
		outcome := fmt.Sprintf("%d partitions", len(c.Partitions())+1)
		if err := c.Split(s.EPK); err != nil {
			outcome = "error: " + short(err)
		}
		w.trace.add("service", "split", side, outcome)
	})
}

// writeControl writes the control file the workers watch.
func (w *world) writeControl(json string) {
	outcome := "written"
	if err := os.WriteFile(w.controlPath(), []byte(json), 0o644); err != nil {
		outcome = "error: " + short(err)
	}
	w.trace.add("operator", "control", json, outcome)
}

// cutoverAttempt is an operator running cutover while the application
// still writes. With a state directory the workers are stopped first, as
// the command asks (they hold its lock), and started again after. On a
// lease container the cutover mostly runs while they work: it stops them
// itself (a fenced cutover), and now and then a second operator runs a
// cutover at the same time, which must be refused while the first runs.
func (w *world) cutoverAttempt(ctx context.Context, n int, slots []*slot) {
	fenced := w.dice.fixed("fenced", strconv.Itoa(n))
	stopFirst := !w.sc.Shared || chance(fenced, 0.3)
	var holds []*hold
	defer func() {
		for _, h := range holds {
			close(h.release)
		}
	}()
	for _, s := range slots {
		if !stopFirst {
			break
		}
		h := &hold{stopped: make(chan struct{}), release: make(chan struct{})}
		select {
		case s.holds <- h:
			holds = append(holds, h)
			<-h.stopped
		case <-ctx.Done():
			return
		}
	}
	var second chan struct{}
	if w.sc.Shared && chance(fenced, 0.3) {
		second = make(chan struct{})
		after := between(fenced, 0, 5*time.Second)
		go func() {
			defer close(second)
			if sleepUntil(ctx, w, w.elapsed()+after) == nil {
				w.runCutover(fmt.Sprintf("cutover.%db", n))
			}
		}()
	}
	w.runCutover(fmt.Sprintf("cutover.%d", n))
	if second != nil {
		<-second
	}
}

// runCutover runs one operator's cutover.
func (w *world) runCutover(name string) {
	p := w.newProcess(name, -1)
	r := w.dice.fixed("cutover", p.name)
	quiet, timeout, accept := between(r, time.Second, 10*time.Second), between(r, 10*time.Second, time.Minute), chance(r, 0.5)
	err := w.supervise(p, nil, func(ctx context.Context) error {
		return p.withState(ctx, time.Time{}, func(st *state) error {
			rep, err := p.cutoverCommand(ctx, st, quiet, timeout, accept, func(step string) {
				// Now and then the application, not stopped, writes
				// while the final verify runs.
				if strings.HasPrefix(step, "verifying") && chance(r, 0.5) {
					late := 150 * time.Millisecond // mostly while the verify scans
					if chance(r, 0.3) {
						late = 1500 * time.Millisecond
					}
					w.app.nudge(between(r, 0, late))
				}
			})
			if rep != nil {
				w.trace.add(p.name, "report", "", fmt.Sprintf("recorded %v, drained %d, quiet for %v", rep.Recorded, rep.Drained, rep.QuietFor))
			}
			return err
		})
	})
	w.afterExit(p, err)
}
