package sim

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rekey-dev/rekey/migrate"
)

// errProcessDead is what every request of a crashed process returns: the
// process no longer runs, so nothing it asks for happens.
var errProcessDead = errors.New("the process has crashed")

// process is one run of a rekey command: a worker in a slot ("w2.3", the
// third process of slot 2) or an operator's command ("cutover.1"). Every
// request it makes to the service, the lease store or the dead-letter
// store goes through do, which gives it a latency, may fail it, and crashes
// the process at the point its crash plan names.
//
// A crash ends the process's context, and from then on every request fails
// without effect. Requests already sent to the service may still land, at
// the instant their latency ends, or be lost (the seed decides); requests
// to the local disk (the file state, the dead-letter file) do not happen.
type process struct {
	w     *world
	name  string // also its owner name in leases
	slot  int    // the worker slot, -1 for an operator's command
	start time.Duration
	plan  crashPlan

	ctx    context.Context
	cancel context.CancelFunc

	crashed atomic.Bool
	dead    chan struct{} // closed at the crash

	mu    sync.Mutex
	fatal chan struct{} // closed when a permanent fault first strikes
	// fatalBy is when the process must have given up on a permanent
	// fault: the strike plus the time its retries may take.
	fatalBy time.Duration

	routes routing // the target's partitions as the process knows them (ports_bulk.go)

	accept  bool // a cutover that accepts dead letters
	stopped bool // it was told to stop (SIGTERM); set by supervise
}

func (w *world) newProcess(name string, slot int) *process {
	ctx, cancel := context.WithCancel(context.Background())
	p := &process{
		w: w, name: name, slot: slot, start: w.elapsed(), ctx: ctx, cancel: cancel,
		dead: make(chan struct{}), fatal: make(chan struct{}),
	}
	if slot >= 0 && w.sc.Crashes && !w.healed.Load() {
		p.plan = drawCrashPlan(w.dice.fixed("crash", name), w.sc)
	}
	w.trace.add(name, "start", "", p.plan.String())
	return p
}

// landing is how a request takes effect.
type landing int

const (
	landedOnTime landing = iota // while its process waits for the answer
	landedLate                  // after its process crashed or gave up on it
	landedCut                   // a local write its process's crash interrupted: part of it may be on disk
)

// do makes one request. apply takes effect at the end of its latency,
// alone (under the world's lock), told how it lands. The outcome apply
// returns goes to the trace.
func (p *process) do(ctx context.Context, kind, obj string, apply func(landing) (string, error)) error {
	return p.doSalted(ctx, kind, obj, "", apply)
}

// doSalted is do with salt added to the request's identity for its draws:
// two requests of one process on one object in flight at once (two loops
// writing copies of twin items to one target item) must draw apart whatever
// order they start in.
func (p *process) doSalted(ctx context.Context, kind, obj, salt string, apply func(landing) (string, error)) error {
	if p.crashed.Load() {
		return fmt.Errorf("%s %s: %w", kind, obj, errProcessDead)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s %s: %w", kind, obj, err)
	}
	p.w.check.requestSent(p, kind, obj)
	r := p.w.dice.roll(p.name, kind, obj, salt)
	trigger := p.plan.hits(kind, r)
	if trigger && p.plan.mode == crashBefore {
		p.crash(fmt.Sprintf("before %s of %s", kind, obj))
		return fmt.Errorf("%s %s: %w", kind, obj, errProcessDead)
	}
	if cached(kind) {
		var err error
		p.w.apply(func() { _, err = apply(landedOnTime) })
		return err
	}
	latency := requestLatency(r)
	f := p.w.faultFor(p, kind, r)
	latency += f.delay
	if latency > 0 {
		sent := time.Now()
		t := time.NewTimer(latency)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			p.inFlight(r, sent.Add(latency), kind, obj, apply)
			return fmt.Errorf("%s %s: %w", kind, obj, ctx.Err())
		case <-p.dead:
			t.Stop()
			p.inFlight(r, sent.Add(latency), kind, obj, apply)
			return fmt.Errorf("%s %s: %w", kind, obj, errProcessDead)
		}
	}
	if trigger && p.plan.mode == crashInFlight {
		if isLocal(kind) && isWrite(kind) {
			// The crash strikes in the middle of a local write: it ran,
			// and the machine keeps what reached its disk.
			p.w.apply(func() {
				outcome, err := apply(landedCut)
				if err != nil {
					outcome = "error: " + short(err)
				}
				p.w.trace.add(p.name, kind, obj, "cut short: "+outcome)
			})
		}
		p.crash(fmt.Sprintf("with %s of %s in flight", kind, obj))
		p.inFlight(r, time.Now(), kind, obj, apply)
		return fmt.Errorf("%s %s: %w", kind, obj, errProcessDead)
	}
	if f.err != nil && !f.landFirst {
		p.w.trace.add(p.name, kind, obj, "fault: "+short(f.err))
		return f.err
	}
	var err error
	p.w.apply(func() {
		var outcome string
		outcome, err = apply(landedOnTime)
		if err != nil {
			outcome = "error: " + short(err)
		}
		if f.err != nil {
			outcome += "; then fault: " + short(f.err)
		}
		p.w.trace.add(p.name, kind, obj, outcome)
	})
	if trigger && p.plan.mode == crashAfter {
		p.crash(fmt.Sprintf("after %s of %s took effect", kind, obj))
		return fmt.Errorf("%s %s: %w", kind, obj, errProcessDead)
	}
	if f.err != nil {
		return f.err
	}
	return err
}

// inFlight decides the fate of a request its process stopped waiting for:
// one sent to the service lands at its instant or is lost; a local one
// (the file state, the dead-letter file) never happens.
func (p *process) inFlight(r *rand.Rand, at time.Time, kind, obj string, apply func(landing) (string, error)) {
	if isLocal(kind) || !isWrite(kind) || !chance(r, 0.5) {
		return
	}
	p.w.landings.Go(func() {
		time.Sleep(time.Until(at))
		p.w.apply(func() {
			outcome, err := apply(landedLate)
			if err != nil {
				outcome = "error: " + short(err)
			}
			p.w.trace.add(p.name, kind, obj, "landed late: "+outcome)
		})
	})
}

// crash kills the process: its context ends, and every request after this
// fails without effect.
func (p *process) crash(why string) {
	if p.crashed.Swap(true) {
		return
	}
	p.w.trace.add(p.name, "crash", "", why)
	p.w.check.dropProcess(p)
	close(p.dead)
	p.cancel()
}

// struck records that a permanent fault hit the process at now; by is how
// long its retries may take before it must give up.
func (p *process) struck(by time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.fatal:
	default:
		p.fatalBy = p.w.elapsed() + by
		p.w.trace.add(p.name, "fatal", "", fmt.Sprintf("a permanent fault struck; the process must give up by %.6f", p.fatalBy.Seconds()))
		close(p.fatal)
	}
}

// stoppedForCutover records that the process's run returned, stopped by
// a cutover, before it gave up on a permanent fault that struck it: the
// stop preempted the failure. It now waits for the cutover and sends no
// request the fault fails; should it run again, a new strike sets a new
// deadline (the fatal channel is a fresh one).
func (p *process) stoppedForCutover() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.fatal:
		p.fatal, p.fatalBy = make(chan struct{}), 0
		p.w.trace.add(p.name, "fatal", "", "the run stopped for a cutover before it gave up on its permanent fault")
	default:
	}
}

// fatalStrike is the channel closed at the next strike of a permanent
// fault.
func (p *process) fatalStrike() chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fatal
}

func (p *process) fatalDeadline() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fatalBy
}

// requestLatency draws a request's latency: mostly a few milliseconds,
// now and then a few hundred.
func requestLatency(r *rand.Rand) time.Duration {
	if chance(r, 0.02) {
		return between(r, 50*time.Millisecond, 400*time.Millisecond)
	}
	return between(r, 200*time.Microsecond, 12*time.Millisecond)
}

// maxLatency bounds requestLatency.
const maxLatency = 400 * time.Millisecond

// cached reports whether a request kind is answered from the SDK's caches
// (the container's properties, the routing map of its partitions): at once,
// without a request. It matters beyond realism: the AdaptiveLimiter holds
// a mutex while it reads the feed ranges, and a synctest bubble cannot wait
// durably on a mutex, so a latency there would stall virtual time.
func cached(kind string) bool {
	return strings.HasSuffix(kind, ".def") || strings.HasSuffix(kind, ".ranges")
}

// isLocal reports whether a request kind goes to the local disk.
func isLocal(kind string) bool {
	return strings.HasPrefix(kind, "store.") || strings.HasPrefix(kind, "dl.")
}

// isWrite reports whether a request kind changes something.
func isWrite(kind string) bool {
	for _, verb := range []string{"create", "replace", "delete", "batch", "bulk", "update", "init", "add", "resolve", "sync"} {
		if strings.HasSuffix(kind, "."+verb) {
			return true
		}
	}
	return false
}

// short is an error's text on one line, for the trace.
func short(err error) string {
	s := err.Error()
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	if len(s) > 160 {
		s = s[:160] + "..."
	}
	return s
}

// crashMode is where in a request a crash strikes.
type crashMode int

const (
	crashNever    crashMode = iota
	crashBefore             // before the request is sent: it never happens
	crashInFlight           // while it travels: it lands or not
	crashAfter              // after it took effect, before its answer is used
)

// crashPlan is when a process crashes: at a request of one of kinds, each
// of which is the crash point with chance 1/nth (so at about the nth), or
// at a time after it started. The chance is drawn from the request's own
// identity (dice.roll), not from a count of requests: two requests sent at
// one instant (two leases' heartbeats) go in no fixed order, and a count
// would make the crash point differ between runs of one seed.
type crashPlan struct {
	mode    crashMode
	kinds   []string
	nth     int
	at      time.Duration // a time-based crash, from the process's start
	machine bool
}

// The request kinds a crash plan aims at, by the moment they stand for.
var crashPoints = [][]string{
	{"store.lease.create", "docs.lease.create", "src.feed.bookmark"},     // while the first leases are created and bookmarked
	{"tgt.create", "tgt.replace", "tgt.batch", "tgt.delete", "tgt.bulk"}, // between a write and its checkpoint
	{"store.lease.update", "docs.lease.replace"},                         // at a checkpoint, a renewal or a switch of feeds
	{"dl.add", "dl.sync", "docs.dead.create", "docs.dead.replace"},       // in the middle of a dead-letter append
	{"src.feed", "src.feed.versions"},
}

func drawCrashPlan(r *rand.Rand, sc Scenario) crashPlan {
	if chance(r, 0.35) {
		return crashPlan{}
	}
	plan := crashPlan{mode: crashMode(1 + r.IntN(3)), machine: sc.MachineCrashes && chance(r, 0.5)}
	if chance(r, 0.25) {
		plan.at = between(r, 100*time.Millisecond, 30*time.Second)
		return plan
	}
	i := r.IntN(len(crashPoints))
	plan.kinds = crashPoints[i]
	plan.nth = 1 + r.IntN([]int{6, 40, 10, 3, 10}[i])
	return plan
}

// hits reports whether a request of kind, whose draws come from r, is the
// crash point. It draws from r only for the kinds it aims at.
func (c crashPlan) hits(kind string, r *rand.Rand) bool {
	if c.mode == crashNever || !slices.Contains(c.kinds, kind) {
		return false
	}
	return chance(r, 1/float64(c.nth))
}

func (c crashPlan) String() string {
	if c.mode == crashNever {
		return "no crash"
	}
	where := map[crashMode]string{crashBefore: "before", crashInFlight: "during", crashAfter: "after"}[c.mode]
	kind := map[bool]string{true: "machine crash", false: "crash"}[c.machine]
	if c.kinds == nil {
		return fmt.Sprintf("%s %v after start", kind, c.at.Round(time.Millisecond))
	}
	return fmt.Sprintf("%s %s a request of %s (each with chance 1/%d)", kind, where, strings.Join(c.kinds, "|"), c.nth)
}

// simClock is the clock every process's pipeline runs on: the system clock,
// which the synctest bubble makes virtual, with retry jitter drawn from the
// process's own seeded generator (migrate.Jitter).
type simClock struct {
	migrate.SystemClock
	*jitter
}

func (p *process) clock() simClock {
	return simClock{jitter: &jitter{r: p.w.dice.fixed("jitter", p.name)}}
}
