package verify

import (
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

// Report is the outcome of Verify. Every difference counted in a
// category is a difference at the time it was last examined; the copy is
// clean only when there are none.
type Report struct {
	StartedAt     time.Time `json:"startedAt"`
	SamplePercent float64   `json:"samplePercent"`
	SourceItems   int64     `json:"sourceItems"`
	TargetItems   int64     `json:"targetItems"`
	// SourceIdentities and TargetIdentities are the items of each
	// container the scan saw (all of them, whatever the sample).
	SourceIdentities Identities `json:"sourceIdentities"`
	TargetIdentities Identities `json:"targetIdentities"`
	Matched          int64      `json:"matched"`

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
func (r *Report) category(kind string) *Category {
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

func (r *Report) categories() []*Category {
	return []*Category{&r.Missing, &r.Extra, &r.Changed, &r.Orphaned, &r.Collisions, &r.DeadLettered, &r.Untransformable}
}

// Differences is the number of differences of every kind.
func (r *Report) Differences() int64 {
	n := int64(0)
	for _, c := range r.categories() {
		n += c.Count
	}
	return n
}

// Accepted is the number of differences that are dead letters: the items
// `cutover --accept-dead-letter` accepts as not copied.
func (r *Report) Accepted() int64 {
	return r.Collisions.Count + r.DeadLettered.Count + r.Untransformable.Count
}

// finish caps the listed items and decides whether the copy is clean.
func (r *Report) finish(maxIDs int) {
	for _, c := range r.categories() {
		sort.Slice(c.Items, func(i, j int) bool { return c.Items[i].ID < c.Items[j].ID })
		if len(c.Items) > maxIDs {
			c.Items = c.Items[:maxIDs]
		}
	}
	r.Clean = r.Differences() == 0
}
