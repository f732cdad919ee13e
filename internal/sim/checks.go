package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rekey-dev/rekey/internal/epk"
	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/migrate"
)

// The invariants a simulation checks.
const (
	InvComplete     = "complete-after-catch-up"      // caught up, the target holds every source item at its latest version, or it is dead-lettered
	InvEqual        = "equal-after-cutover"          // cut over, the target is the transformed source, each difference a counted dead letter
	InvCoverage     = "lease-coverage"               // every EPK is owned by exactly one lease
	InvOneLoop      = "one-loop-per-range"           // no two loops apply one range at the same time
	InvMonotonic    = "no-older-over-newer"          // no write replaces a newer version of an item with an older one
	InvExit         = "exit-within-shutdown-timeout" // run returns within the shutdown timeout of a fatal error or a stop
	InvCutover      = "cutover-only-when-equal"      // a cutover is recorded only while the copy equals the source
	InvUntouched    = "post-cutover-untouched"       // nothing the application wrote to the target after the cutover is touched
	InvReleased     = "leases-released-on-shutdown"  // a worker that stops releases its leases
	InvReadable     = "state-readable-after-crash"   // a crash never leaves state a restart cannot open
	InvLive         = "liveness"                     // in a healthy world, the final run catches up and the cutover succeeds
	maxPerInvariant = 12                             // violations kept per invariant; the rest are counted
)

// Violation is a broken invariant.
type Violation struct {
	Invariant string
	At        time.Duration
	Proc      string
	Detail    string
}

func (v Violation) String() string {
	return fmt.Sprintf("%s at %.6fs (%s): %s", v.Invariant, v.At.Seconds(), v.Proc, v.Detail)
}

// checker holds the invariants' state and the violations found.
type checker struct {
	w *world

	mu         sync.Mutex
	violations []Violation
	counts     map[string]int
	active     []applying         // pages being applied now (the Observer)
	observed   int                // pages the Observer was told of
	removed    map[string]removal // target address -> the item rekey last deleted there
	cutAt      time.Duration      // when a cutover was first recorded; 0: never
}

// removal is an item rekey deleted from the target.
type removal struct {
	ident string
	v     int64
}

// applying is a page a loop is applying.
type applying struct {
	proc, lease string
	r           migrate.FeedRange
}

func newChecker(w *world) *checker {
	return &checker{w: w, counts: map[string]int{}, removed: map[string]removal{}}
}

// violate records a broken invariant, and marks it in the trace.
func (c *checker) violate(inv, proc, format string, args ...any) {
	v := Violation{Invariant: inv, At: c.w.elapsed(), Proc: proc, Detail: fmt.Sprintf(format, args...)}
	c.mu.Lock()
	c.counts[inv]++
	keep := c.counts[inv] <= maxPerInvariant
	if keep {
		c.violations = append(c.violations, v)
	}
	c.mu.Unlock()
	c.w.trace.add(proc, "VIOLATION", inv, v.Detail)
}

// result returns the violations, with a note of those not kept.
func (c *checker) result() []Violation {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := append([]Violation(nil), c.violations...)
	invs := make([]string, 0, len(c.counts))
	for inv := range c.counts {
		invs = append(invs, inv)
	}
	sort.Strings(invs)
	for _, inv := range invs {
		if n := c.counts[inv]; n > maxPerInvariant {
			out = append(out, Violation{Invariant: inv, Detail: fmt.Sprintf("... and %d more", n-maxPerInvariant)})
		}
	}
	return out
}

// pageApplying and pageApplied are the Observer's events: a loop of p
// starts and ends applying a page of a lease's range.
func (c *checker) pageApplying(p *process, leaseID string, r migrate.FeedRange) {
	if p.crashed.Load() {
		return
	}
	c.mu.Lock()
	c.observed++
	var clash *applying
	for i := range c.active {
		if overlaps(c.active[i].r, r) {
			clash = &c.active[i]
			break
		}
	}
	c.active = append(c.active, applying{proc: p.name, lease: leaseID, r: r})
	c.mu.Unlock()
	if clash != nil {
		c.violate(InvOneLoop, p.name, "a loop applies a page of lease %s [%s, %s) while %s applies one of lease %s [%s, %s)",
			leaseID, r.Min, r.Max, clash.proc, clash.lease, clash.r.Min, clash.r.Max)
	}
}

func (c *checker) pageApplied(p *process, leaseID string, r migrate.FeedRange) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, a := range c.active {
		if a.proc == p.name && a.lease == leaseID && a.r == r {
			c.active = append(c.active[:i], c.active[i+1:]...)
			return
		}
	}
}

// dropProcess forgets a crashed process's pages: it applies nothing more
// (what it sent may still land, as the network delivers it).
func (c *checker) dropProcess(p *process) {
	c.mu.Lock()
	defer c.mu.Unlock()
	kept := c.active[:0]
	for _, a := range c.active {
		if a.proc != p.name {
			kept = append(kept, a)
		}
	}
	c.active = kept
}

// observerCalls is how many pages the Observer was told of.
func (c *checker) observerCalls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.observed
}

func overlaps(a, b migrate.FeedRange) bool {
	below := func(x, y string) bool { return y == epk.MaxEPK && x != epk.MaxEPK || epk.Compare(x, y) < 0 }
	return below(a.Min, b.Max) && below(b.Min, a.Max)
}

// loopObserver is the migrate.Observer of one process.
type loopObserver struct{ p *process }

func (o loopObserver) PageApplying(_, leaseID string, r migrate.FeedRange) {
	o.p.w.check.pageApplying(o.p, leaseID, r)
}

func (o loopObserver) PageApplied(_, leaseID string, r migrate.FeedRange) {
	o.p.w.check.pageApplied(o.p, leaseID, r)
}

// targetWritten checks a write to the target as it takes effect (the
// world's lock is held): a replace must not lower the version of the same
// source item, a create must not bring back a version older than one
// rekey deleted there, and nothing the application wrote after the
// cutover may be touched. A request that landed after its process crashed
// is the network's doing, not the process's: it is traced, not judged on
// versions.
func (c *checker) targetWritten(p *process, verb string, key migrate.Key, id string, old migrate.Item, had bool, body []byte, late bool) {
	addr := itemAddr(key, id)
	if _, ok := c.w.app.targetWrites[addr]; ok {
		c.violate(InvUntouched, p.name, "%s of %s, which the application wrote after the cutover", verb, addr)
	}
	newV := fieldsOf(body).V
	switch verb {
	case "delete":
		if had {
			c.mu.Lock()
			c.removed[addr] = removal{ident: identityOf(old.Body), v: fieldsOf(old.Body).V}
			c.mu.Unlock()
		}
		return
	case "replace":
		if had && !late && identityOf(old.Body) == identityOf(body) && fieldsOf(old.Body).V > newV && !fieldsOf(old.Body).App {
			c.violate(InvMonotonic, p.name, "replace of %s wrote v%d over v%d of the same source item", addr, newV, fieldsOf(old.Body).V)
		}
	case "create":
		c.mu.Lock()
		gone, ok := c.removed[addr]
		c.mu.Unlock()
		if ok && gone.ident == identityOf(body) && gone.v > newV && !late {
			c.violate(InvMonotonic, p.name, "create of %s brought back v%d of %s after v%d was deleted there", addr, newV, gone.ident, gone.v)
		}
	}
}

// cutoverRecorded checks, at the instant a cutover is recorded (the
// world's lock is held), that the copy equals the source.
func (c *checker) cutoverRecorded(p *process) {
	c.mu.Lock()
	first := c.cutAt == 0
	if first {
		c.cutAt = c.w.elapsed()
	}
	c.mu.Unlock()
	c.w.trace.add(p.name, "cutover", "", "recorded")
	if diffs := c.differences(true, p.accept); len(diffs) > 0 {
		c.violate(InvCutover, p.name, "cutover recorded while %d differences remain: %s", len(diffs), summarize(diffs))
	}
}

// cutOver reports whether a cutover was recorded.
func (c *checker) cutOver() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cutAt != 0
}

// differences compares the target with the transformed source. Every
// source item that transforms must be in the target under its new key at
// its latest content, unless it is dead-lettered (when acceptDead) or
// collides with another source item that holds its place. strict also
// counts target items no source item maps to (extra, orphaned), which the
// change feed cannot remove and only a cutover's verify fixes. Items the
// application wrote to the target after the cutover are left out.
func (c *checker) differences(strict, acceptDead bool) []string {
	dead, err := c.w.deadLetters()
	if err != nil {
		return []string{"the dead letters cannot be read: " + err.Error()}
	}
	type claim struct {
		ident  string
		digest migrate.Digest
		v      int64
	}
	claims := map[string][]claim{}
	var diffs []string
	src := c.w.src.Items()
	sortItems(src)
	for _, s := range src {
		si := identityOf(s.Body)
		res, err := c.w.tr.Apply(s.Body)
		if err != nil {
			if !dead[si] {
				diffs = append(diffs, fmt.Sprintf("%s does not transform (%v) and is not dead-lettered", si, err))
			}
			continue
		}
		d, err := migrate.ContentDigest(res.Item, nil)
		if err != nil {
			diffs = append(diffs, fmt.Sprintf("%s: %v", si, err))
			continue
		}
		addr := itemAddr(migrate.Key(res.Key), res.ID)
		claims[addr] = append(claims[addr], claim{ident: si, digest: d, v: fieldsOf(s.Body).V})
	}
	targets := map[string]migrate.Item{}
	for _, t := range c.w.dst.Items() {
		addr := itemAddr(t.Key, t.ID)
		if _, app := c.w.app.targetWrites[addr]; !app {
			targets[addr] = t
		}
	}
	addrs := make([]string, 0, len(claims))
	for a := range claims {
		addrs = append(addrs, a)
	}
	sort.Strings(addrs)
	for _, addr := range addrs {
		t, ok := targets[addr]
		var tIdent string
		var tDigest migrate.Digest
		if ok {
			tIdent = identityOf(t.Body)
			tDigest, _ = migrate.ContentDigest(t.Body, nil)
		}
		for _, cl := range claims[addr] {
			switch {
			case ok && tIdent == cl.ident && tDigest == cl.digest:
			case dead[cl.ident] && acceptDead:
			case !ok:
				diffs = append(diffs, fmt.Sprintf("%s (v%d) missing at %s", cl.ident, cl.v, addr))
			case tIdent == cl.ident:
				diffs = append(diffs, fmt.Sprintf("%s stale at %s: %s there, v%d in the source", cl.ident, addr, versionOf(t.Body), cl.v))
			default:
				diffs = append(diffs, fmt.Sprintf("%s (v%d) not at %s, which %s holds, and not dead-lettered", cl.ident, cl.v, addr, tIdent))
			}
		}
	}
	if strict {
		for _, addr := range sortedKeys(targets) {
			if claims[addr] == nil && !expiring(targets[addr].Body) {
				diffs = append(diffs, fmt.Sprintf("%s at %s: no source item maps there (%s)", identityOf(targets[addr].Body), addr, versionOf(targets[addr].Body)))
			}
		}
	}
	return diffs
}

// expiring reports whether an item carries its own time to live: when its
// source item expired, the copy expires by itself a little later (the
// change feed carries no expiry, and nothing need remove it).
func expiring(body []byte) bool {
	var f struct {
		TTL *int `json:"ttl"`
	}
	return json.Unmarshal(body, &f) == nil && f.TTL != nil && *f.TTL > 0
}

// deadLetters reads the dead source items, straight from the state.
func (w *world) deadLetters() (map[string]bool, error) {
	var list []migrate.DeadLetter
	if w.sc.Shared {
		docs, err := w.docs.List(context.Background(), leasePrefix+".dead..")
		if err != nil {
			return nil, err
		}
		for _, d := range docs {
			var dl migrate.DeadLetter
			if err := json.Unmarshal(d.Body, &dl); err != nil {
				return nil, fmt.Errorf("dead letter %s: %w", d.ID, err)
			}
			list = append(list, dl)
		}
	} else {
		var err error
		if list, err = migrate.ListDeadLetters(w.deadLetterPath()); err != nil {
			return nil, err
		}
	}
	out := map[string]bool{}
	for _, dl := range list {
		out[deadIdentity(dl)] = true
	}
	return out, nil
}

// leases reads the leases straight from the state.
func (w *world) leases() ([]lease.Lease, error) {
	if w.sc.Shared {
		s, err := lease.NewCosmos(w.docs, leasePrefix)
		if err != nil {
			return nil, err
		}
		return s.List(context.Background())
	}
	s, err := lease.OpenFile(w.stateDir(), lease.ReadOnly())
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return s.List(context.Background())
}

// coverage checks that the leases tile the EPK space: no gap, no overlap.
func (c *checker) coverage(proc string) {
	ls, err := c.w.leases()
	if err != nil {
		c.violate(InvCoverage, proc, "the leases cannot be read: %v", err)
		return
	}
	if problems := tiling(ls); len(problems) > 0 {
		c.violate(InvCoverage, proc, "%d leases: %s", len(ls), strings.Join(problems, "; "))
	}
}

// tiling lists the gaps and overlaps of leases over the EPK space.
func tiling(ls []lease.Lease) []string {
	sort.Slice(ls, func(i, j int) bool { return epk.Compare(ls[i].Range.Min, ls[j].Range.Min) < 0 })
	var problems []string
	at := epk.MinEPK // covered up to here
	for _, l := range ls {
		switch {
		case at == epk.MaxEPK || epk.Compare(l.Range.Min, at) < 0:
			problems = append(problems, fmt.Sprintf("lease %s [%s, %s) overlaps the leases before it", l.ID, l.Range.Min, l.Range.Max))
		case epk.Compare(l.Range.Min, at) > 0:
			problems = append(problems, fmt.Sprintf("no lease owns [%s, %s)", at, l.Range.Min))
		}
		if at != epk.MaxEPK && (l.Range.Max == epk.MaxEPK || epk.Compare(l.Range.Max, at) > 0) {
			at = l.Range.Max
		}
	}
	if at != epk.MaxEPK {
		problems = append(problems, fmt.Sprintf("no lease owns [%s, FF)", at))
	}
	return problems
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// summarize shows the first few differences.
func summarize(diffs []string) string {
	if len(diffs) > 4 {
		return strings.Join(diffs[:4], "; ") + fmt.Sprintf("; ... (%d in all)", len(diffs))
	}
	return strings.Join(diffs, "; ")
}
