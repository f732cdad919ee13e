package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/rekey-dev/rekey/internal/epk"
	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/migrate/deadletter"
)

// differences compares the target with the transformed source. Every
// source item that transforms must be in the target under its new key at
// its latest content, unless it is dead-lettered (when acceptDead) or
// collides with another source item that holds its place. strict also
// counts target items no source item maps to (extra, orphaned), which the
// change feed cannot remove and only a cutover's verify fixes. Items the
// application wrote to the target after the cutover are left out.
//
// excused, when set, leaves out the source items (and copies) it names:
// those the application wrote after the one judged last read them.
func (c *checker) differences(strict, acceptDead bool, excused blindSpot) []string {
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
		if excused.sourceUnseen(s.Body) {
			continue
		}
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
			case ok && excused.targetUnseen(addr):
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
			if claims[addr] == nil && !expiring(targets[addr].Body) && !excused.sourceUnseen(targets[addr].Body) && !excused.targetUnseen(addr) {
				diffs = append(diffs, fmt.Sprintf("%s at %s: no source item maps there (%s)", identityOf(targets[addr].Body), addr, versionOf(targets[addr].Body)))
			}
		}
	}
	return diffs
}

// extraCopies lists the target items no source item maps to (extra,
// orphaned): after a sync on the all-versions feed, which carries deletes
// and key changes, there must be none, but for the copies of dead-lettered
// items (a version that cannot be copied leaves the earlier copies as they
// are), copies that expire by themselves, and what a write that landed
// after its process gave up on it left (a stopped worker's slow create,
// landing after the item moved: nothing reads the target's feed before the
// cutover, whose final verify removes it).
func (c *checker) extraCopies() []string {
	dead, err := c.w.deadLetters()
	if err != nil {
		return []string{"the dead letters cannot be read: " + err.Error()}
	}
	isDead := blindSpot{source: func(body []byte) bool { return dead[identityOf(body)] }, target: c.landedLate}
	loose := map[string]bool{}
	for _, d := range c.differences(false, true, isDead) {
		loose[d] = true
	}
	var out []string
	for _, d := range c.differences(true, true, isDead) {
		if !loose[d] {
			out = append(out, d)
		}
	}
	return out
}

// landedLate reports whether the last write at a target address landed
// after its process gave up on it.
func (c *checker) landedLate(addr string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.lateTgt[addr]
	return ok
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
		d, err := deadletter.OpenFileReadOnly(w.deadLetterPath())
		if err != nil {
			return nil, err
		}
		defer d.Close()
		if list, err = d.List(); err != nil {
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
