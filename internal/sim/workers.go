package sim

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/rekey-dev/rekey/migrate/pipeline"
)

// exitGrace is what a process may take beyond its shutdown timeout to
// return: what the Runner promises (pipeline.ExitGrace: its releases and
// wrap-up, each bounded) and a request's latency.
const exitGrace = pipeline.ExitGrace + maxLatency

// errZombie is returned for a process that did not return even after it
// was killed; it is abandoned.
var errZombie = errors.New("the process never returned")

// slot is a place for a worker, as a Kubernetes Job's pod or a laptop's
// terminal: its processes run one after another. A process leaves
// gracefully (SIGTERM) or crashes, and the next starts after a delay.
type slot struct {
	w     *world
	idx   int
	holds chan *hold // an operator asks the slot to stop and wait
}

// hold is an operator's request that a slot stop its worker and start
// none until release is closed.
type hold struct {
	stopped chan struct{}
	release chan struct{}
}

// run runs the slot's workers until ctx ends (the end of the chaos phase).
func (s *slot) run(ctx context.Context) {
	if !s.wait(ctx, s.w.sc.Joins[s.idx]-s.w.elapsed()) {
		return
	}
	for inc := 1; ctx.Err() == nil; inc++ {
		p := s.w.newProcess(fmt.Sprintf("w%d.%d", s.idx+1, inc), s.idx)
		life := s.w.dice.fixed("life", p.name)
		var leave <-chan time.Time
		if chance(life, 0.3) {
			leave = time.After(between(life, 3*time.Second, 60*time.Second))
		}
		stop := make(chan struct{})
		held := make(chan *hold, 1)
		ended := make(chan struct{})
		go func() {
			defer close(stop)
			select {
			case <-ctx.Done():
			case <-leave:
			case h := <-s.holds:
				held <- h
			case <-ended:
			}
		}()
		err := s.w.supervise(p, stop, func(ctx context.Context) error {
			return p.withState(ctx, s.w.startFrom(), func(st *state) error {
				_, err := p.runCommand(ctx, st, false)
				return err
			})
		})
		close(ended)
		<-stop
		s.w.afterExit(p, err)
		select {
		case h := <-held:
			close(h.stopped)
			<-h.release
		default:
		}
		if !s.wait(ctx, between(life, 200*time.Millisecond, 5*time.Second)) {
			return
		}
	}
}

// wait waits d, answering an operator's hold meanwhile; false when ctx
// ended. After a hold it waits a moment more, drawn from the seed: the
// operator may hold the slot again at the instant it released it, and the
// slot must not race it for whether a worker starts first.
func (s *slot) wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(max(d, 0))
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return true
		case <-ctx.Done():
			return false
		case h := <-s.holds:
			close(h.stopped)
			<-h.release
			t.Reset(between(s.w.dice.roll("slot", strconv.Itoa(s.idx), "released"), 10*time.Millisecond, time.Second))
		}
	}
}

// startFrom is what --start-from gives a run started now: the CLI
// computes "now" at every start.
func (w *world) startFrom() time.Time {
	if w.sc.StartFromNow {
		return time.Now()
	}
	return time.Time{}
}

// supervise runs body as process p's command until it returns, and holds
// it to its exit invariants: once a permanent fault struck, it must return
// within its retries, the shutdown timeout and a grace (not counting the
// time it waits for a cutover's outcome, having stopped for it: it retries
// nothing then, and its retries start over when it resumes); once stopped (stop
// closed, as SIGTERM), within the shutdown timeout and the grace. A
// process that does not is stopped, then killed; one that survives even
// that is abandoned as a zombie.
func (w *world) supervise(p *process, stop <-chan struct{}, body func(ctx context.Context) error) error {
	done := make(chan error, 1)
	go func() { done <- body(p.ctx) }()
	limit := w.sc.ShutdownTimeout + exitGrace
	var planned, fatalBy, stopBy, killBy <-chan time.Time
	if p.plan.mode != crashNever && p.plan.kinds == nil {
		planned = time.After(p.plan.at)
	}
	fatal, dead := p.fatal, p.dead
	stopped, paused, struck := false, false, false
	for {
		select {
		case err := <-done:
			if p.crashed.Load() {
				// Which of a dead process's failing requests its command
				// reports is a race of that instant: not traced.
				w.trace.add(p.name, "exit", "", "returned after its crash")
			} else {
				w.trace.add(p.name, "exit", "", exitText(err))
			}
			return err
		case <-planned:
			planned = nil
			p.crash("at its planned time")
		case <-dead:
			dead, fatal, stopBy, fatalBy = nil, nil, nil, nil
			killBy = time.After(time.Minute)
		case <-fatal:
			fatal, struck = nil, true
			if !paused {
				fatalBy = time.After(p.fatalDeadline() + limit - w.elapsed())
			}
		case paused = <-p.paused:
			switch {
			case paused:
				fatalBy = nil
			case struck && !stopped:
				fatalBy = time.After(p.retryBudget() + limit)
			}
		case <-fatalBy:
			fatalBy = nil
			w.check.violate(InvExit, p.name, "still running %v after a fatal error (retries included); stopping it", limit)
			if !stopped {
				stopped, p.stopped = true, true
				p.cancel()
				stopBy = time.After(limit)
			}
		case <-stop:
			stop = nil
			if !stopped {
				stopped, p.stopped = true, true
				w.trace.add(p.name, "stop", "", "SIGTERM")
				p.cancel()
				stopBy = time.After(limit)
			}
		case <-stopBy:
			stopBy = nil
			w.check.violate(InvExit, p.name, "still running %v after it was stopped; killing it", limit)
			p.crash("killed: it did not exit")
		case <-killBy:
			w.check.violate(InvExit, p.name, "still running a minute after it crashed: abandoned")
			w.trace.add(p.name, "exit", "", "abandoned")
			return errZombie
		}
	}
}

// afterExit checks what a worker left behind: a worker that stopped
// gracefully releases its leases.
func (w *world) afterExit(p *process, err error) {
	defer p.cancel()
	if !w.sc.Shared || p.crashed.Load() || errors.Is(err, errZombie) || !p.stopped {
		return // crashed, or returned by itself: nothing to check
	}
	if w.stateFaulted(p) {
		return // a release may fail on a throttled or failing lease container: bounded, it gives up
	}
	ls, lerr := w.leases()
	if lerr != nil {
		return
	}
	var held []string
	for _, l := range ls {
		// A write of p's that landed after p last listed the leases (its
		// answer lost to the stop) is the network's doing: p never
		// learnt the lease is its own, and could not release it.
		if l.Owner == p.name && !w.check.landedUnseen(p, l.ID) {
			held = append(held, l.ID)
		}
	}
	if len(held) > 0 {
		w.check.violate(InvReleased, p.name, "stopped gracefully but still owns %d leases: %v", len(held), held)
	}
}

// stateFaulted reports whether the lease container faulted p's requests
// during its shutdown, just ended.
func (w *world) stateFaulted(p *process) bool {
	now := w.elapsed()
	from := now - w.sc.ShutdownTimeout - exitGrace
	for _, f := range w.sc.Faults {
		if strings.HasPrefix(f.Ops, "docs") && f.From < now && f.To > from && (f.Kind == faultThrottle || f.Kind == faultTransient) {
			return true
		}
	}
	return false
}

func exitText(err error) string {
	if err == nil {
		return "returned"
	}
	return "returned: " + short(err)
}
