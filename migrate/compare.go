package migrate

import (
	"hash"
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
	DiffUntransformable = "untransformable" // the key spec cannot transform the source item (dead-lettered)
)

// Diff is one difference between source and target.
type Diff struct {
	ID        string `json:"id"`
	SourceKey string `json:"sourceKey"`
	TargetKey string `json:"targetKey,omitempty"` // expected (missing, changed) or actual (extra, orphaned)
	Reason    string `json:"reason,omitempty"`
}

// Category counts the differences of one kind and lists some of them.
type Category struct {
	Count int64  `json:"count"`
	Items []Diff `json:"items,omitempty"`
}

// VerifyReport is the outcome of Verify.
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
	Untransformable Category `json:"untransformable"`

	// InFlight counts differences that settled when rechecked, or whose
	// source item changed while verify ran: the application still writing,
	// rekey run still copying. They are not failures.
	InFlight    int64      `json:"inFlight"`
	DeadLetters int        `json:"deadLetters"`
	Digest      string     `json:"digest"` // of every matched item's id, key and content
	Fix         *FixReport `json:"fix,omitempty"`
	Clean       bool       `json:"clean"`
}

// FixReport counts what --fix repaired.
type FixReport struct {
	Deleted   int64 `json:"deleted"`   // extra and orphaned target items removed
	Copied    int64 `json:"copied"`    // missing and changed items copied again
	Remaining int64 `json:"remaining"` // differences still there after the fix
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
	default:
		return &r.Untransformable
	}
}

// Differences is the number of differences of every kind.
func (r *VerifyReport) Differences() int64 {
	return r.Missing.Count + r.Extra.Count + r.Changed.Count + r.Orphaned.Count + r.Collisions.Count + r.Untransformable.Count
}

// finish caps the listed items and decides whether the copy is clean.
func (r *VerifyReport) finish(maxIDs int) {
	for _, c := range []*Category{&r.Missing, &r.Extra, &r.Changed, &r.Orphaned, &r.Collisions, &r.Untransformable} {
		sort.Slice(c.Items, func(i, j int) bool { return c.Items[i].ID < c.Items[j].ID })
		if len(c.Items) > maxIDs {
			c.Items = c.Items[:maxIDs]
		}
	}
	r.Clean = r.Differences() == 0
}

// suspect is a difference to recheck (and maybe fix).
type suspect struct {
	kind string
	diff Diff
	ts   int64
}

// comparer classifies the records of each bucket.
type comparer struct {
	rep        *VerifyReport
	cfg        VerifyConfig
	collisions map[string]bool
	suspects   []suspect
}

func newComparer(rep *VerifyReport, cfg VerifyConfig, collisions map[string]bool) *comparer {
	return &comparer{rep: rep, cfg: cfg, collisions: collisions}
}

// add records a difference.
func (c *comparer) add(kind string, r *record, reason string) {
	d := Diff{ID: r.id, SourceKey: r.srcKey, TargetKey: r.tgtKey, Reason: reason}
	cat := c.rep.category(kind)
	cat.Count++
	// Keep every suspect that will be rechecked, and enough to list.
	if len(c.suspects) < c.cfg.MaxRecheck {
		c.suspects = append(c.suspects, suspect{kind: kind, diff: d, ts: r.ts})
	} else if len(cat.Items) < c.cfg.MaxIDs {
		cat.Items = append(cat.Items, d)
	}
}

// bucket compares one bucket's records: each target item belongs to the
// source item its fields name, and it is right when it sits under the key
// the spec gives that source item, with the same content.
func (c *comparer) bucket(recs []record, digest hash.Hash) {
	sources := map[string]*record{}
	targets := map[string][]*record{}
	for i := range recs {
		r := &recs[i]
		if r.flags&recTarget != 0 {
			targets[r.ident()] = append(targets[r.ident()], r)
		} else {
			sources[r.ident()] = r
		}
	}
	var matched []string
	digests := map[string]Digest{}
	for ident, s := range sources {
		copies := targets[ident]
		delete(targets, ident)
		if s.flags&recUntransformed != 0 {
			c.add(DiffUntransformable, s, s.reason)
			for _, t := range copies {
				c.add(DiffOrphaned, t, "its source item no longer transforms")
			}
			continue
		}
		found := false
		for _, t := range copies {
			switch {
			case t.tgtKey != s.tgtKey:
				c.add(DiffOrphaned, t, "its source item now maps to "+s.tgtKey)
			case t.digest == s.digest:
				found = true
				matched = append(matched, ident)
				digests[ident] = s.digest
			default:
				found = true
				c.add(DiffChanged, s, "")
			}
		}
		if !found {
			if c.collisions[ident] {
				c.add(DiffCollision, s, "another source item holds its id and new key (see the dead-letter file)")
			} else {
				c.add(DiffMissing, s, "")
			}
		}
	}
	for _, ts := range targets {
		for _, t := range ts {
			c.add(DiffExtra, t, "no source item has this id and source key")
		}
	}
	sort.Strings(matched)
	for _, ident := range matched {
		d := digests[ident]
		digest.Write([]byte(ident))
		digest.Write(d[:])
	}
	c.rep.Matched += int64(len(matched))
}
