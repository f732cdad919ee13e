package migrate

import (
	"encoding/json"
	"time"
)

// Dead-letter kinds besides the transform package's error kinds
// (missing-field, wrong-type, ...).
const (
	KindCollision = "collision"  // another source item already holds this (id, target key)
	KindRejected  = "rejected"   // the service refused the item (400)
	KindTooLarge  = "too-large"  // over 2 MB with the key added (413)
	KindUniqueKey = "unique-key" // the target's unique key policy refuses it (409 with no item under its id and key)
	KindConflict  = "conflict"   // rollback: the source item changed after the cutover, not by the rollback
)

// DeadLetter is an item the migration could not write, with why. Every
// summary counts them, and cutover is refused while any remain.
type DeadLetter struct {
	Time      time.Time       `json:"time"`
	SourceID  string          `json:"sourceId"`
	SourceKey json.RawMessage `json:"sourceKey"` // the source key as a JSON array ({} for undefined)
	TargetKey json.RawMessage `json:"targetKey,omitempty"`
	Kind      string          `json:"kind"`
	Reason    string          `json:"reason"`
	Item      json.RawMessage `json:"item,omitempty"` // the source item as it was read
	// Resolved marks a later line saying the item was written after all
	// (a replay, or a newer version of it that transformed cleanly).
	Resolved bool `json:"resolved,omitempty"`
}
