package migrate

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math/bits"
	"sort"
	"time"
)

// Kinds of difference verify reports.
const (
	DiffMissing         = "missing"         // in the source, not in the target under its new key
	DiffExtra           = "extra"           // in the target, its source item gone: a delete the change feed could not carry
	DiffChanged         = "changed"         // in both, with different content
	DiffOrphaned        = "orphaned"        // a target item whose source item now maps to another key
	DiffCollision       = "collision"       // not copied: another source item holds its (id, new key)
	DiffDeadLettered    = "dead-lettered"   // not copied (or not updated): the item has a current dead letter of another kind
	DiffUntransformable = "untransformable" // the key spec cannot transform the source item (dead-lettered)
)

// Diff is one difference between source and target.
type Diff struct {
	ID        string `json:"id"`
	SourceKey string `json:"sourceKey"`
	TargetKey string `json:"targetKey,omitempty"` // expected (missing, changed) or actual (extra, orphaned)
	Reason    string `json:"reason,omitempty"`
	// InFlight: the source item changed while verify ran, and the target
	// did not match its new version when rechecked.
	InFlight bool `json:"inFlight,omitempty"`
}

// Category counts the differences of one kind and lists some of them.
type Category struct {
	Count int64  `json:"count"`
	Items []Diff `json:"items,omitempty"`
}

// VerifyReport is the outcome of Verify. Every difference counted in a
// category is a difference at the time it was last examined; the copy is
// clean only when there are none.
type VerifyReport struct {
	StartedAt     time.Time `json:"startedAt"`
	SamplePercent float64   `json:"samplePercent"`
	SourceItems   int64     `json:"sourceItems"`
	TargetItems   int64     `json:"targetItems"`
	Matched       int64     `json:"matched"`

	Missing         Category `json:"missing"`
	Extra           Category `json:"extra"`
	Changed         Category `json:"changed"`
	Orphaned        Category `json:"orphaned"`
	Collisions      Category `json:"collisions"`
	DeadLettered    Category `json:"deadLettered"`
	Untransformable Category `json:"untransformable"`

	// Settled counts differences of the scan that no longer held when
	// rechecked: the target matched the source item's current version
	// (rekey run copied it meanwhile), or neither side held the item.
	// They are not differences.
	Settled int64 `json:"settled"`
	// InFlight counts the differences that remained when rechecked although
	// their source item changed while verify ran: the application still
	// writing, rekey run not yet caught up. They stay counted in their
	// categories (marked InFlight): run verify again once rekey run copied
	// them.
	InFlight    int64      `json:"inFlight"`
	DeadLetters int        `json:"deadLetters"`
	Digest      string     `json:"digest"` // of every matched item's id, key and content
	Fix         *FixReport `json:"fix,omitempty"`
	Clean       bool       `json:"clean"`
}

// FixReport counts what --fix did. Every write was conditional on the
// version verify compared: an item the application (or rekey run) wrote in
// between is left as it is and examined again.
type FixReport struct {
	Deleted      int64 `json:"deleted"`      // extra and orphaned target items removed
	Copied       int64 `json:"copied"`       // missing and changed items the target created or replaced
	DeadLettered int64 `json:"deadLettered"` // items the target refused: dead-lettered, not copied
	Skipped      int64 `json:"skipped"`      // differences left as they are: the target changed between compare and fix
	Remaining    int64 `json:"remaining"`    // differences still there after the fix
}

// category returns the report's category of a kind.
func (r *VerifyReport) category(kind string) *Category {
	switch kind {
	case DiffMissing:
		return &r.Missing
	case DiffExtra:
		return &r.Extra
	case DiffChanged:
		return &r.Changed
	case DiffOrphaned:
		return &r.Orphaned
	case DiffCollision:
		return &r.Collisions
	case DiffDeadLettered:
		return &r.DeadLettered
	default:
		return &r.Untransformable
	}
}

func (r *VerifyReport) categories() []*Category {
	return []*Category{&r.Missing, &r.Extra, &r.Changed, &r.Orphaned, &r.Collisions, &r.DeadLettered, &r.Untransformable}
}

// Differences is the number of differences of every kind.
func (r *VerifyReport) Differences() int64 {
	n := int64(0)
	for _, c := range r.categories() {
		n += c.Count
	}
	return n
}

// Accepted is the number of differences that are dead letters: the items
// `cutover --accept-dead-letter` accepts as not copied.
func (r *VerifyReport) Accepted() int64 {
	return r.Collisions.Count + r.DeadLettered.Count + r.Untransformable.Count
}

// finish caps the listed items and decides whether the copy is clean.
func (r *VerifyReport) finish(maxIDs int) {
	for _, c := range r.categories() {
		sort.Slice(c.Items, func(i, j int) bool { return c.Items[i].ID < c.Items[j].ID })
		if len(c.Items) > maxIDs {
			c.Items = c.Items[:maxIDs]
		}
	}
	r.Clean = r.Differences() == 0
}

// seen is a source item as the scan saw it, for telling on recheck whether
// it changed since.
type seen struct {
	present bool
	untrans bool
	ts      int64
	digest  Digest // of its transformed content
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
}

// comparer classifies the records of each bucket.
type comparer struct {
	rep      *VerifyReport
	cfg      VerifyConfig
	suspects []suspect
	digest   setDigest
}

func newComparer(rep *VerifyReport, cfg VerifyConfig) *comparer {
	return &comparer{rep: rep, cfg: cfg}
}

// add records a difference about record r; src is its source item as the
// scan saw it (nil: none).
func (c *comparer) add(kind string, r *record, reason string, src *record) {
	d := Diff{ID: r.id, SourceKey: r.srcKey, TargetKey: r.tgtKey, Reason: reason}
	cat := c.rep.category(kind)
	cat.Count++
	// Keep every suspect that will be rechecked, and enough to list.
	if len(c.suspects) < c.cfg.MaxRecheck {
		c.suspects = append(c.suspects, suspect{kind: kind, diff: d, src: seenOf(src)})
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
	for ident, s := range sources {
		copies := targets[ident]
		delete(targets, ident)
		if s.flags&recUntransformed != 0 {
			c.add(DiffUntransformable, s, s.reason, s)
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
	for _, ts := range targets {
		for _, t := range ts {
			c.add(DiffExtra, t, "no source item has this id and source key", nil)
		}
	}
}

// deadKind is the category of a difference explained by a dead letter.
func deadKind(dl *record) string {
	if dl.reason == KindCollision {
		return DiffCollision
	}
	return DiffDeadLettered
}

// setDigest fingerprints a set of matched items whatever the order they
// are added in (buckets split differently as the data grows): the sum,
// modulo 2^256, of each item's SHA-256 over its identity and content.
type setDigest [4]uint64

func (d *setDigest) add(ident string, content Digest) {
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
