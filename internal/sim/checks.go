package sim

import (
	"encoding/json"
	"fmt"
	"maps"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rekey-dev/rekey/internal/epk"
	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/transform"
)

// The invariants a simulation checks.
const (
	InvComplete     = "complete-after-catch-up"      // caught up, the target holds every source item at its latest version, or it is dead-lettered
	InvExact        = "exact-after-catch-up"         // caught up on the all-versions feed without a fallback, the target holds nothing more either
	InvEqual        = "equal-after-cutover"          // cut over, the target is the transformed source, each difference a counted dead letter
	InvCoverage     = "lease-coverage"               // every EPK is owned by exactly one lease
	InvOneLoop      = "one-loop-per-range"           // no two loops apply one range at the same time
	InvMonotonic    = "no-older-over-newer"          // no write replaces a newer version of an item with an older one
	InvExit         = "exit-within-shutdown-timeout" // run returns within the shutdown timeout of a fatal error or a stop
	InvCutover      = "cutover-only-when-equal"      // a cutover is recorded only while the copy equals the source
	InvQuiet        = "quiet-after-cutover"          // no worker writes to the target or takes a lease once a cutover is recorded
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
	active     []applying                          // pages being applied now (the Observer)
	observed   int                                 // pages the Observer was told of
	removed    map[string]removal                  // target address -> the item rekey last deleted there
	cutAt      time.Duration                       // when a cutover was first recorded; 0: never
	cutStamp   time.Time                           // the At of that record
	looks      map[string][]look                   // process -> when it last read each range of the source's feed
	saw        map[string]map[string]time.Duration // process -> source identity -> when it last read the item
	scanned    map[string]time.Duration            // process -> when its last verify finished scanning
	listed     map[string]time.Duration            // process -> when it last listed the leases
	late       map[string]map[string]time.Duration // process -> lease id -> when a write of it landed late
	tgtLooks   map[string][]look                   // process -> when it last read each range of the target's feed
	lateTgt    map[string]lateWrite                // target address -> the write that landed there after its process gave up on it
	// cutUnseen names the changes the first recorded cutover could not
	// see: the application wrote them after it last read their range, or
	// a write landed on the target after the cutover last read its range.
	cutUnseen blindSpot
}

// blindSpot is what a process could not have seen: source items the
// application changed after the process last looked (source, given a
// source item's body or a copy's), and target addresses a write landed on
// late, after the process last read their range of the target's feed
// (target). The zero blindSpot excuses nothing.
type blindSpot struct {
	source func(body []byte) bool
	target func(addr string) bool
}

func (b blindSpot) sourceUnseen(body []byte) bool { return b.source != nil && b.source(body) }
func (b blindSpot) targetUnseen(addr string) bool { return b.target != nil && b.target(addr) }

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
	return &checker{w: w, counts: map[string]int{}, removed: map[string]removal{}, looks: map[string][]look{}, saw: map[string]map[string]time.Duration{}, scanned: map[string]time.Duration{}, listed: map[string]time.Duration{}, late: map[string]map[string]time.Duration{}, tgtLooks: map[string][]look{}, lateTgt: map[string]lateWrite{}}
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

// targetWritten checks a write to the target as it takes effect (the
// world's lock is held): a replace must not lower the version of the same
// source item, a create must not bring back a version older than one
// rekey deleted there, and nothing the application wrote after the
// cutover may be touched. A request that landed after its process crashed
// is the network's doing, not the process's: it is traced, not judged on
// versions.
func (c *checker) targetWritten(p *process, verb string, key migrate.Key, id string, old migrate.Item, had bool, body []byte, late bool) {
	addr := itemAddr(key, id)
	c.mu.Lock()
	if late && verb != "delete" {
		c.lateTgt[addr] = lateWrite{key: key, at: c.w.elapsed()}
	} else {
		delete(c.lateTgt, addr)
	}
	c.mu.Unlock()
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

// cutoverRecorded checks, at the instant a meta that records the cutover
// stamped at is written (the world's lock is held), that the copy equals
// the source. A later write of the meta carries the same record (a
// worker's UpdateMeta keeps it) and is not a cutover; one that carries
// another is a second cutover, which the compare-and-swap must refuse.
func (c *checker) cutoverRecorded(p *process, at time.Time) {
	c.mu.Lock()
	first, again := c.cutAt == 0, c.cutStamp.Equal(at)
	if first {
		c.cutAt, c.cutStamp = c.w.elapsed(), at
	}
	c.mu.Unlock()
	if !first {
		if !again {
			c.violate(InvCutover, p.name, "a second cutover recorded (stamped %v) over the one stamped %v", at, c.cutStamp)
		}
		return
	}
	c.w.trace.add(p.name, "cutover", "", "recorded")
	// What the application wrote after the cutover last read the item's
	// range no cutover can see: the application must have stopped.
	unseen := blindSpot{source: c.unseenBy(p), target: c.lateTargetUnseenBy(p)}
	c.mu.Lock()
	c.cutUnseen = unseen
	c.mu.Unlock()
	if diffs := c.differences(true, p.accept, unseen); len(diffs) > 0 {
		c.violate(InvCutover, p.name, "cutover recorded while %d differences remain (writes after its last read of the source left out): %s", len(diffs), summarize(diffs))
	}
}

// leaseWritten checks a lease write of p that took effect while p waited
// for it: once a cutover is recorded, no worker holds a lease (it stopped
// for the cutover, which fenced every lease), so none takes or renews one.
// A release (no owner) is no take.
func (c *checker) leaseWritten(p *process, id, owner string) {
	if p.slot < 0 || owner == "" || !c.cutOver() {
		return
	}
	c.violate(InvQuiet, p.name, "lease %s written in the worker's name after the cutover was recorded", id)
}

// requestSent checks a request p sends: once a cutover is recorded, no
// worker sends a write to the target.
func (c *checker) requestSent(p *process, kind, obj string) {
	if p.slot < 0 || !strings.HasPrefix(kind, "tgt.") || !isWrite(kind) || !c.cutOver() {
		return
	}
	c.violate(InvQuiet, p.name, "%s of %s sent after the cutover was recorded", kind, obj)
}

// look is when a process last read a range of the source's change feed.
type look struct {
	r  migrate.FeedRange
	at time.Duration
}

// looked records that p read the source now: a page of the range r of its
// change feed (r zero for a point read), holding items.
func (c *checker) looked(p *process, r migrate.FeedRange, items [][]byte) {
	now := c.w.elapsed()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.saw[p.name] == nil {
		c.saw[p.name] = map[string]time.Duration{}
	}
	for _, it := range items {
		c.saw[p.name][identityOf(it)] = now
	}
	if r == (migrate.FeedRange{}) {
		return
	}
	ls := c.looks[p.name]
	for i := range ls {
		if ls[i].r == r {
			ls[i].at = now
			return
		}
	}
	c.looks[p.name] = append(ls, look{r: r, at: now})
}

// lookedVersions records that p read a page of the range r of the
// source's all-versions feed now: a look at the range, and at each item a
// change of the page names (deletes included).
func (c *checker) lookedVersions(p *process, r migrate.FeedRange, changes []migrate.VersionChange) {
	now := c.w.elapsed()
	c.mu.Lock()
	if c.saw[p.name] == nil {
		c.saw[p.name] = map[string]time.Duration{}
	}
	for _, ch := range changes {
		c.saw[p.name][changeIdentity(ch)] = now
	}
	c.mu.Unlock()
	c.looked(p, r, nil)
}

// verifyScanned records that a verify of p finished scanning both
// containers now: what it compares from here on, it read before.
func (c *checker) verifyScanned(p *process) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.scanned[p.name] = c.w.elapsed()
}

// unseenBy returns whether the application changed a source item (given as
// its body, or a copy's) in a way p could not have seen: created or updated
// it after p last read the range of the feed that holds it, or deleted it
// after p last read the item itself. The change feed carries no deletes:
// only a look at the item shows it gone, and the look must come after p's
// last verify scanned the source, whose comparison a later delete makes
// wrong; a delete after a look at the item during that scan counts.
func (c *checker) unseenBy(p *process) func(body []byte) bool {
	c.mu.Lock()
	ls := append([]look(nil), c.looks[p.name]...)
	saw := maps.Clone(c.saw[p.name])
	scanned := c.scanned[p.name]
	c.mu.Unlock()
	return func(body []byte) bool {
		ident := identityOf(body)
		if at, deleted := c.w.app.deletedAt(ident); deleted {
			seen, ok := saw[ident]
			return ok && seen > scanned && at > seen
		}
		var f struct {
			Tenant string `json:"tenant"`
		}
		if json.Unmarshal(body, &f) != nil {
			return false
		}
		e, err := c.w.src.EPK(migrate.Key{transform.StringValue(f.Tenant)})
		if err != nil {
			return false
		}
		last := time.Duration(-1)
		for _, l := range ls {
			if (epk.Range{Min: l.r.Min, Max: l.r.Max}).Contains(e) && l.at > last {
				last = l.at
			}
		}
		return last >= 0 && c.w.app.wroteAfter(ident, last)
	}
}

// lookedTarget records that p read the target's feed range r now.
func (c *checker) lookedTarget(p *process, r migrate.FeedRange) {
	now := c.w.elapsed()
	c.mu.Lock()
	defer c.mu.Unlock()
	ls := c.tgtLooks[p.name]
	for i := range ls {
		if ls[i].r == r {
			ls[i].at = now
			return
		}
	}
	c.tgtLooks[p.name] = append(ls, look{r: r, at: now})
}

// lateTargetUnseenBy returns whether a target address holds what a write
// left there that landed after its process gave up on it (the network's
// doing: the write took longer than its process waited), after p last
// read the range of the target's feed that holds it. A worker stopped
// before the cutover can leave such a write behind; the cutover sees it
// in the target's feed if it lands before the cutover's last read there.
func (c *checker) lateTargetUnseenBy(p *process) func(addr string) bool {
	c.mu.Lock()
	ls := append([]look(nil), c.tgtLooks[p.name]...)
	c.mu.Unlock()
	return func(addr string) bool {
		c.mu.Lock()
		lw, ok := c.lateTgt[addr]
		c.mu.Unlock()
		if !ok {
			return false
		}
		e, err := c.w.dst.EPK(lw.key)
		if err != nil {
			return false
		}
		last := time.Duration(-1)
		for _, l := range ls {
			if (epk.Range{Min: l.r.Min, Max: l.r.Max}).Contains(e) && l.at > last {
				last = l.at
			}
		}
		return last >= 0 && lw.at > last
	}
}

// lateWrite is a write to the target that landed after its process gave
// up on it.
type lateWrite struct {
	key migrate.Key
	at  time.Duration
}

// unseenByCutover is cutUnseen, or nil before a cutover.
func (c *checker) unseenByCutover() blindSpot {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cutUnseen
}

// leasesListed records that p listed the leases now; leaseLandedLate that
// a write of p's to lease id landed now, after p stopped waiting for it.
func (c *checker) leasesListed(p *process) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.listed[p.name] = c.w.elapsed()
}

func (c *checker) leaseLandedLate(p *process, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.late[p.name] == nil {
		c.late[p.name] = map[string]time.Duration{}
	}
	c.late[p.name][id] = c.w.elapsed()
}

// landedUnseen reports whether a write of p's to lease id landed late,
// after p last listed the leases.
func (c *checker) landedUnseen(p *process, id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	at, ok := c.late[p.name][id]
	return ok && at > c.listed[p.name]
}

// cutOver reports whether a cutover was recorded.
func (c *checker) cutOver() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cutAt != 0
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
