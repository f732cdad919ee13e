package verify

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"maps"
	"math/bits"
	"slices"
	"strings"

	"github.com/rekey-dev/rekey/migrate"
)

// seen is a source item as the scan saw it, for telling on recheck whether
// it changed since.
type seen struct {
	present bool
	untrans bool
	ts      int64
	digest  migrate.Digest // of its transformed content
}

func seenOf(s *record) seen {
	if s == nil {
		return seen{}
	}
	return seen{present: true, untrans: s.flags&recUntransformed != 0, ts: s.ts, digest: s.digest}
}

// suspect is a difference to recheck (and maybe fix).
type suspect struct {
	kind string
	diff Diff
	src  seen
	// deadLettered: a current dead letter records the source item
	// (untransformable suspects: else the fix records one).
	deadLettered bool
}

// comparer classifies the records of each bucket.
type comparer struct {
	rep      *Report
	cfg      Config
	suspects []suspect
	digest   setDigest
}

func newComparer(rep *Report, cfg Config) *comparer {
	return &comparer{rep: rep, cfg: cfg}
}

// add records a difference about record r; src is its source item as the
// scan saw it (nil: none).
func (c *comparer) add(kind string, r *record, reason string, src *record) {
	c.addSuspect(suspect{kind: kind, diff: Diff{ID: r.id, SourceKey: r.srcKey, TargetKey: r.tgtKey, Reason: reason}, src: seenOf(src)})
}

// addSuspect counts a difference and keeps it to recheck (or to list).
func (c *comparer) addSuspect(s suspect) {
	d, kind := s.diff, s.kind
	cat := c.rep.category(kind)
	cat.Count++
	// Keep every suspect that will be rechecked, and enough to list.
	if len(c.suspects) < c.cfg.MaxRecheck {
		c.suspects = append(c.suspects, s)
	} else if len(cat.Items) < c.cfg.MaxIDs {
		cat.Items = append(cat.Items, d)
	}
}

// bucket compares the records of one bucket: each target item belongs to
// the source item its fields name, and it is right when it sits under the
// key the spec gives that source item, with the same content. A source item
// the target lacks (or holds an older version of) while it has a current
// dead letter is reported by the dead letter's kind, not as missing.
func (c *comparer) bucket(recs []record) {
	sources := map[string]*record{}
	targets := map[string][]*record{}
	dead := map[string]*record{}
	for i := range recs {
		r := &recs[i]
		switch {
		case r.flags&recTarget != 0:
			targets[r.ident()] = append(targets[r.ident()], r)
		case r.flags&recDeadLetter != 0:
			dead[r.ident()] = r
		default:
			sources[r.ident()] = r
		}
	}
	// In the order of the identities, each one's copies in the order of
	// their keys: the suspects, and so the recheck's and the fix's
	// requests, go in the same order on every run of the same data.
	for _, ident := range slices.Sorted(maps.Keys(sources)) {
		s := sources[ident]
		copies := targets[ident]
		slices.SortFunc(copies, func(a, b *record) int { return strings.Compare(a.tgtKey, b.tgtKey) })
		delete(targets, ident)
		if s.flags&recUntransformed != 0 {
			u := suspect{kind: DiffUntransformable, diff: Diff{ID: s.id, SourceKey: s.srcKey, Reason: s.reason}, src: seenOf(s), deadLettered: dead[ident] != nil}
			if !u.deadLettered {
				u.diff.Reason += "; no dead letter records it yet (rekey run or verify --fix records it)"
			}
			c.addSuspect(u)
			for _, t := range copies {
				c.add(DiffOrphaned, t, "its source item no longer transforms", s)
			}
			continue
		}
		found := false
		for _, t := range copies {
			switch {
			case t.tgtKey != s.tgtKey:
				c.add(DiffOrphaned, t, "its source item now maps to "+s.tgtKey, s)
			case t.digest == s.digest:
				found = true
				c.rep.Matched++
				c.digest.add(ident, s.digest)
			default:
				found = true
				if dl := dead[ident]; dl != nil {
					c.add(deadKind(dl), s, "the target holds an older version: the newest was dead-lettered as "+dl.reason+" (rekey deadletter list)", s)
				} else {
					c.add(DiffChanged, s, "", s)
				}
			}
		}
		if !found {
			if dl := dead[ident]; dl != nil {
				c.add(deadKind(dl), s, "dead-lettered as "+dl.reason+" (rekey deadletter list)", s)
			} else {
				c.add(DiffMissing, s, "", s)
			}
		}
	}
	for _, ident := range slices.Sorted(maps.Keys(targets)) {
		ts := targets[ident]
		slices.SortFunc(ts, func(a, b *record) int { return strings.Compare(a.tgtKey, b.tgtKey) })
		for _, t := range ts {
			c.add(DiffExtra, t, "no source item has this id and source key", nil)
		}
	}
}

// deadKind is the category of a difference explained by a dead letter.
func deadKind(dl *record) string {
	if dl.reason == migrate.KindCollision {
		return DiffCollision
	}
	return DiffDeadLettered
}

// setDigest fingerprints a set of matched items whatever the order they
// are added in (buckets split differently as the data grows): the sum,
// modulo 2^256, of each item's SHA-256 over its identity and content.
type setDigest [4]uint64

func (d *setDigest) add(ident string, content migrate.Digest) {
	h := sha256.New()
	h.Write([]byte(ident))
	h.Write([]byte{0})
	h.Write(content[:])
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	var carry uint64
	for i := range d {
		d[i], carry = bits.Add64(d[i], binary.BigEndian.Uint64(sum[24-8*i:32-8*i]), carry)
	}
}

func (d *setDigest) String() string {
	var b [32]byte
	for i := range d {
		binary.BigEndian.PutUint64(b[24-8*i:], d[i])
	}
	return hex.EncodeToString(b[:])
}
