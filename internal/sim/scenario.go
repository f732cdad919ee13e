package sim

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"time"
)

// Scenario is what a seed expands to: the migration's settings, which
// kinds of trouble this seed brings (swarm testing: each seed enables a
// different subset, so that rare combinations get their turn), and the
// schedule of the chaos phase. String prints it all, so that a failing
// seed shows what it did.
type Scenario struct {
	Seed uint64

	// The migration.
	Shared           bool     // a cosmos:// state shared by Slots workers; else a state directory and one worker
	Slots            int      // workers (processes run in a slot one after another)
	Keys             []string // the key spec
	SourceVersion    int      // the source's partition key version (Hash on /tenant)
	SourcePartitions int
	TargetPartitions int
	SourceTTL        bool // the source has a default time to live; items with a short "ttl" expire
	Items            int  // items the source holds before the migration starts
	PageSize         int
	LeaseTTL         time.Duration
	ShutdownTimeout  time.Duration
	StartFromNow     bool // run --start-from now, over a target loaded beforehand

	// The change feeds (drawn from a stream of their own, so that the
	// fields above stay what they were for a seed).
	Mode           string        // rekey run --mode: auto, latest or all-versions
	SourceVersions bool          // the source keeps the all-versions feed (a change feed policy)
	Retention      time.Duration // what the policy keeps; short ones make ranges fall back
	PreviousImages bool          // the feed carries replaces' and deletes' previous versions

	// Bulk is rekey run --bulk (drawn from a stream of its own too): true,
	// the default, sends the run's writes in bulk requests; false one
	// request per item and transactional batches. The other commands
	// (cutover, verify --fix, deadletter replay) always write in bulk, as
	// cmd/rekey wires them.
	Bulk bool

	// The chaos phase.
	Chaos          time.Duration
	Crashes        bool // processes crash, each at a point drawn from its name
	MachineCrashes bool // a crash loses the dead-letter file's unsynced tail (file state)
	KeyChanges     bool // the application changes fields the target key is built from
	Deletes        bool
	Joins          []time.Duration // when each slot's first worker starts
	Faults         []Fault
	Splits         []Split
	Cutovers       []time.Duration // cutover attempts while the application writes
	Controls       []Control       // control-file changes
}

// faultKind is a kind of trouble the service or the machine makes.
type faultKind string

const (
	faultThrottle  faultKind = "429"       // throttled, with a retry-after
	faultTransient faultKind = "503/408"   // refused before taking effect
	faultAmbiguous faultKind = "408-after" // took effect, then the answer was lost
	faultGone      faultKind = "410"       // a partition key range the SDK could not re-resolve
	faultSlow      faultKind = "slow"      // requests slower than the lease TTL
	faultPermanent faultKind = "503-ever"  // one process's requests fail for good: a fatal error
	faultDiskFull  faultKind = "disk-full" // the dead-letter store refuses writes for one process
	// An operation of a bulk request answered 413 with substatus 3402: the
	// response, not the item, grew too large; the operation is resent.
	faultResponseTooLarge faultKind = "413-3402"
)

// Fault is trouble during [From, To) for the requests whose kind starts
// with Ops, each hit with probability Prob. Permanent faults strike the
// process working in Slot at From, from then until it exits.
type Fault struct {
	Kind     faultKind
	Ops      string
	From, To time.Duration
	Prob     float64
	Slot     int
	Min, Max time.Duration // the retry-after (429) or the added latency (slow)
}

// longestRequest is the longest a request of the scenario takes to take
// effect after it was sent (its latency and a slow fault's delay), whether
// or not its process still waits for it: what a cutover must wait for
// (cutover.Config.MaxRequestTime).
func (sc Scenario) longestRequest() time.Duration {
	var longest time.Duration
	for _, f := range sc.Faults {
		if f.Kind == faultSlow { // the delays of overlapping windows add up
			longest += f.Max
		}
	}
	return maxLatency + longest
}

// Split is a partition split of the source (or the target) at a time.
type Split struct {
	At     time.Duration
	Target bool
	EPK    string // the partition holding it splits
}

// Control is a control file written at a time.
type Control struct {
	At   time.Duration
	JSON string
}

// Generate expands a seed into a scenario.
func Generate(seed uint64) Scenario {
	d := newDice(seed)
	r := d.fixed("scenario")
	sc := Scenario{Seed: seed}
	sc.Shared = chance(r, 0.5)
	sc.Slots = 1
	if sc.Shared {
		sc.Slots = 1 + r.IntN(4)
	}
	sc.Keys = [][]string{
		{"/customer"},
		{"/pk={customer}-{region}"},
		{"/customer", "/region"},
		{"/pk={customer?none}-{region}"},
	}[r.IntN(4)]
	sc.SourceVersion = 2
	if chance(r, 0.2) {
		sc.SourceVersion = 1
	}
	sc.SourcePartitions = 1 + r.IntN(4)
	sc.TargetPartitions = 1 + r.IntN(3)
	sc.SourceTTL = chance(r, 0.2)
	sc.Items = 10 + r.IntN(50)
	sc.PageSize = 2 + r.IntN(12)
	sc.LeaseTTL = between(r, 2*time.Second, 20*time.Second)
	sc.ShutdownTimeout = between(r, time.Second, 10*time.Second)
	sc.StartFromNow = chance(r, 0.15)
	sc.Chaos = between(r, 20*time.Second, 120*time.Second)
	sc.Crashes = chance(r, 0.7)
	sc.MachineCrashes = !sc.Shared && chance(r, 0.5)
	sc.KeyChanges = chance(r, 0.6)
	sc.Deletes = chance(r, 0.6)
	for s := 0; s < sc.Slots; s++ {
		join := time.Duration(0)
		if s > 0 && chance(r, 0.5) {
			join = between(r, 0, sc.Chaos/2) // a late joiner
		}
		sc.Joins = append(sc.Joins, join)
	}
	sc.Faults = generateFaults(r, sc)
	for n := r.IntN(4); n > 0; n-- {
		sc.Splits = append(sc.Splits, Split{At: between(r, 0, sc.Chaos), Target: chance(r, 0.3), EPK: randomEPK(r, sc.SourceVersion)})
	}
	if chance(r, 0.4) {
		for n := 1 + r.IntN(2); n > 0; n-- {
			sc.Cutovers = append(sc.Cutovers, between(r, sc.Chaos/4, sc.Chaos))
		}
	}
	if chance(r, 0.4) {
		for n := 1 + r.IntN(3); n > 0; n-- {
			sc.Controls = append(sc.Controls, Control{At: between(r, 0, sc.Chaos), JSON: randomControl(r)})
		}
	}
	generateFeeds(d.fixed("feeds"), &sc)
	generateBulk(d.fixed("bulk"), &sc)
	sort.Slice(sc.Splits, func(i, j int) bool { return sc.Splits[i].At < sc.Splits[j].At })
	sort.Slice(sc.Cutovers, func(i, j int) bool { return sc.Cutovers[i] < sc.Cutovers[j] })
	sort.Slice(sc.Controls, func(i, j int) bool { return sc.Controls[i].At < sc.Controls[j].At })
	return sc
}

// generateFeeds draws which change feed the runs follow: --mode, whether
// the source keeps the all-versions feed (always in all-versions mode: a
// source without it is refused before anything runs), for how long, and
// with previous images or not. A short retention (shorter than a copy, a
// crashed worker's absence or the chaos phase) makes ranges fall back to
// the latest-version feed.
func generateFeeds(r *rand.Rand, sc *Scenario) {
	sc.Mode = []string{"auto", "latest", "all-versions"}[r.IntN(3)]
	sc.SourceVersions = sc.Mode == "all-versions" || chance(r, 0.7)
	sc.Retention = time.Hour
	if chance(r, 0.25) {
		sc.Retention = between(r, 5*time.Second, 60*time.Second)
	}
	sc.PreviousImages = chance(r, 0.5)
}

// generateBulk draws whether rekey run writes in bulk (most seeds do, as
// the product's default), now and then a bigger copy, and the faults of
// bulk requests, which every
// command's bulk requests meet: of the whole request ("tgt.bulk": 429,
// 503/408, an answer lost after the request took effect, 410, slow) and of
// single operations inside one ("tgt.op.create|read|replace": 429, 503,
// 410, 413 with substatus 3402).
func generateBulk(r *rand.Rand, sc *Scenario) {
	sc.Bulk = chance(r, 0.8)
	if chance(r, 0.25) {
		// A bigger copy: pages of up to 200 items, which fill bulk
		// requests to their 100 operations and carry many pages' items.
		sc.Items = 150 + r.IntN(350)
		sc.PageSize = 20 + r.IntN(180)
	}
	add := faultAdder(r, *sc, &sc.Faults)
	add(0.4, faultThrottle, []string{"tgt.bulk", "tgt.op."}, 0.8, 5*time.Millisecond, 1500*time.Millisecond)
	add(0.3, faultTransient, []string{"tgt.bulk", "tgt.op."}, 0.5, 0, 0)
	add(0.3, faultAmbiguous, []string{"tgt.bulk"}, 0.5, 0, 0)
	add(0.25, faultGone, []string{"tgt.bulk", "tgt.op."}, 0.3, 0, 0)
	add(0.2, faultResponseTooLarge, []string{"tgt.op.create", "tgt.op."}, 0.3, 0, 0)
	add(0.25, faultSlow, []string{"tgt.bulk"}, 0.7, sc.LeaseTTL/2, 2*sc.LeaseTTL)
	sort.SliceStable(sc.Faults, func(i, j int) bool { return sc.Faults[i].From < sc.Faults[j].From })
}

// faultAdder returns add, which enables a kind of fault with chance p and
// then appends one or two windows of it (each up to 20 s of the chaos
// phase) to out, each on one of ops with a probability up to prob (lo and
// hi bound a retry-after or a delay).
func faultAdder(r *rand.Rand, sc Scenario, out *[]Fault) func(p float64, kind faultKind, ops []string, prob float64, lo, hi time.Duration) {
	window := func() (time.Duration, time.Duration) {
		from := between(r, 0, sc.Chaos)
		return from, min(sc.Chaos, from+between(r, time.Second, 20*time.Second))
	}
	return func(p float64, kind faultKind, ops []string, prob float64, lo, hi time.Duration) {
		if !chance(r, p) {
			return
		}
		for n := 1 + r.IntN(2); n > 0; n-- {
			from, to := window()
			*out = append(*out, Fault{Kind: kind, Ops: ops[r.IntN(len(ops))], From: from, To: to, Prob: prob * r.Float64(), Min: lo, Max: hi})
		}
	}
}

// generateFaults draws the fault windows of a scenario: each kind enabled
// or not by the seed.
func generateFaults(r *rand.Rand, sc Scenario) []Fault {
	var out []Fault
	add := faultAdder(r, sc, &out)
	add(0.5, faultThrottle, []string{"tgt.", "src.feed", "tgt.create", "docs."}, 0.8, 5*time.Millisecond, 1500*time.Millisecond)
	add(0.4, faultTransient, []string{"tgt.", "src.", "docs."}, 0.5, 0, 0)
	add(0.3, faultAmbiguous, []string{"tgt.create", "tgt.replace", "tgt.batch", "docs.replace"}, 0.5, 0, 0)
	add(0.15, faultGone, []string{"src.feed"}, 0.3, 0, 0)
	add(0.3, faultSlow, []string{"tgt.create", "tgt.batch", "tgt.replace"}, 0.7, sc.LeaseTTL/2, 2*sc.LeaseTTL)
	if chance(r, 0.2) {
		from := between(r, 0, sc.Chaos)
		out = append(out, Fault{Kind: faultPermanent, Ops: []string{"tgt.", "src.feed"}[r.IntN(2)], From: from, To: sc.Chaos, Prob: 1, Slot: r.IntN(sc.Slots)})
	}
	if chance(r, 0.2) {
		from := between(r, 0, sc.Chaos)
		ops := "dl."
		if sc.Shared {
			ops = "docs.dead"
		}
		out = append(out, Fault{Kind: faultDiskFull, Ops: ops, From: from, To: sc.Chaos, Prob: 1, Slot: r.IntN(sc.Slots)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].From < out[j].From })
	return out
}

// randomEPK draws a point of the version's EPK space.
func randomEPK(r *rand.Rand, version int) string {
	if version == 1 {
		return strings.Repeat("0", 24) + fmt.Sprintf("%08X", r.Uint32())
	}
	return fmt.Sprintf("%02X%030X", r.IntN(0x40), r.Uint64())
}

// randomControl draws a control file: caps, a concurrency, or junk that
// must be refused.
func randomControl(r *rand.Rand) string {
	switch r.IntN(5) {
	case 0:
		return fmt.Sprintf(`{"maxRU": %d}`, 50+r.IntN(2000))
	case 1:
		return fmt.Sprintf(`{"maxSourceRU": %d}`, 20+r.IntN(500))
	case 2:
		return fmt.Sprintf(`{"maxConcurrency": %d}`, 1+r.IntN(16))
	case 3:
		return `{"maxRU": 0, "maxSourceRU": 0}`
	}
	return `{"maxRU": "lots"}`
}

// String prints the scenario.
func (sc Scenario) String() string {
	var b strings.Builder
	mode := "file state, 1 worker"
	if sc.Shared {
		mode = fmt.Sprintf("shared state, %d workers joining at %v", sc.Slots, sc.Joins)
	}
	fmt.Fprintf(&b, "seed %d: %s; key %s; source Hash v%d on /tenant, %d partitions (target %d)%s\n",
		sc.Seed, mode, strings.Join(sc.Keys, " "), sc.SourceVersion, sc.SourcePartitions, sc.TargetPartitions, map[bool]string{true: ", default TTL", false: ""}[sc.SourceTTL])
	fmt.Fprintf(&b, "  %d items, pages of %d, lease TTL %v, shutdown timeout %v%s; chaos for %v\n",
		sc.Items, sc.PageSize, sc.LeaseTTL.Round(time.Millisecond), sc.ShutdownTimeout.Round(time.Millisecond),
		map[bool]string{true: ", --start-from now", false: ""}[sc.StartFromNow], sc.Chaos.Round(time.Millisecond))
	fmt.Fprintf(&b, "  crashes %v (machine %v), key changes %v, deletes %v\n", sc.Crashes, sc.MachineCrashes, sc.KeyChanges, sc.Deletes)
	fmt.Fprintf(&b, "  --bulk=%v --mode %s; ", sc.Bulk, sc.Mode)
	if sc.SourceVersions {
		fmt.Fprintf(&b, "the source keeps the all-versions feed for %v (previous images %v)\n", sc.Retention.Round(time.Millisecond), sc.PreviousImages)
	} else {
		b.WriteString("the source keeps no all-versions feed\n")
	}
	for _, f := range sc.Faults {
		fmt.Fprintf(&b, "  fault %-9s on %-10s [%v, %v) p=%.2f", f.Kind, f.Ops, f.From.Round(time.Millisecond), f.To.Round(time.Millisecond), f.Prob)
		if f.Kind == faultPermanent || f.Kind == faultDiskFull {
			fmt.Fprintf(&b, " slot %d", f.Slot)
		}
		if f.Max > 0 {
			fmt.Fprintf(&b, " %v..%v", f.Min.Round(time.Millisecond), f.Max.Round(time.Millisecond))
		}
		b.WriteByte('\n')
	}
	for _, s := range sc.Splits {
		side := "source"
		if s.Target {
			side = "target"
		}
		fmt.Fprintf(&b, "  split %s at %v (EPK %.8s...)\n", side, s.At.Round(time.Millisecond), s.EPK)
	}
	for _, c := range sc.Cutovers {
		fmt.Fprintf(&b, "  cutover attempt at %v\n", c.Round(time.Millisecond))
	}
	for _, c := range sc.Controls {
		fmt.Fprintf(&b, "  control file at %v: %s\n", c.At.Round(time.Millisecond), c.JSON)
	}
	return b.String()
}
