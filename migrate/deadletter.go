package migrate

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"
)

// Dead-letter kinds besides the transform package's error kinds
// (missing-field, wrong-type, ...).
const (
	KindCollision = "collision" // another source item already holds this (id, target key)
	KindRejected  = "rejected"  // the service refused the item (400)
	KindTooLarge  = "too-large" // over 2 MB with the key added (413)
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

// deadLetterID identifies the source item a dead letter is about, however
// its key's JSON was escaped.
func deadLetterID(sourceID string, sourceKey json.RawMessage) (string, error) {
	key, err := canonicalKey(sourceKey)
	if err != nil {
		return "", fmt.Errorf("dead letter for item %q: %w", sourceID, err)
	}
	return sourceID + "\x00" + key, nil
}

// DeadLetterStore keeps the items a migration could not write: one record
// per dead source item, its latest failure. The file store (DeadLetters)
// serves one process; DocDeadLetters keeps them as documents in the lease
// container, so the pods of a Kubernetes Job share them and none is lost
// with a pod. Memory is bounded by the number of dead items (their ids),
// never by the size of what was recorded. Implementations are safe for
// concurrent use.
//
// Errors are never swallowed: a store that cannot be read (a corrupt line,
// see ErrDeadLettersCorrupt) or written (a full disk) says so, naming the
// file or container, from every method that touches it.
type DeadLetterStore interface {
	// Add records a failed item, replacing an earlier record of it.
	Add(DeadLetter) error
	// Resolve records that an item that had failed was written after all;
	// a no-op for items that never failed.
	Resolve(sourceID string, sourceKey json.RawMessage) error
	// Sync makes every record added so far durable. The pipeline calls it
	// before it checkpoints a page; an error means the page must not be
	// checkpointed.
	Sync() error
	// Count is the number of items currently dead, or why it cannot be
	// known.
	Count() (int, error)
	// Each calls fn with every item currently dead, its latest failure,
	// one at a time (memory holds one record), stopping at fn's first
	// error, which it returns. Records added while it runs may or may not
	// be seen. The file store goes in the order items were recorded; the
	// documents store in the container's order.
	Each(fn func(DeadLetter) error) error
	// List returns every item currently dead, oldest first. It holds them
	// all in memory; prefer Each for anything that may be large.
	List() ([]DeadLetter, error)
	// Where names the store for messages: a path or a container.
	Where() string
	Close() error
}

// collect implements List on top of Each.
func collect(s DeadLetterStore) ([]DeadLetter, error) {
	var out []DeadLetter
	err := s.Each(func(dl DeadLetter) error {
		out = append(out, dl)
		return nil
	})
	if err != nil {
		return nil, err
	}
	sortByTime(out)
	return out, nil
}

// sortByTime orders dead letters oldest first, keeping the order of equal
// times.
func sortByTime(l []DeadLetter) {
	sort.SliceStable(l, func(i, j int) bool { return l[i].Time.Before(l[j].Time) })
}

// ErrDeadLettersCorrupt: a complete record of a dead-letter store does not
// decode. A *CorruptDeadLetterError names the file and line (or document).
var ErrDeadLettersCorrupt = errors.New("dead letters are corrupt")

// CorruptDeadLetterError is a record that does not decode: a line of the
// dead-letter file (Line counts from 1) or a document of a lease container
// (Line is 0, Where names the document).
type CorruptDeadLetterError struct {
	Where string // the file path, or the container and document id
	Line  int
	Err   error
}

func (e *CorruptDeadLetterError) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("dead letter at %s: %v: it is not a dead-letter record", e.Where, e.Err)
	}
	return fmt.Sprintf("dead-letter file %s, line %d: %v: the line is not a dead-letter record; "+
		"repair or remove the line by hand (a line holding a torn record glued to a whole one can be split "+
		"before the second '{\"time\"'), then run the command again", e.Where, e.Line, e.Err)
}

// Unwrap lets errors.Is match ErrDeadLettersCorrupt and the decoding error.
func (e *CorruptDeadLetterError) Unwrap() []error { return []error{ErrDeadLettersCorrupt, e.Err} }

// keyJSON renders a key as the JSON array dead letters and logs show.
func keyJSON(k Key) json.RawMessage {
	b := []byte{'['}
	for i, v := range k {
		if i > 0 {
			b = append(b, ',')
		}
		b = v.AppendJSON(b)
	}
	return append(b, ']')
}
