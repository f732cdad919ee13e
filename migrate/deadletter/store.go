package deadletter

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/rekey-dev/rekey/migrate"
)

// itemID identifies the source item a dead letter is about, however
// its key's JSON was escaped.
func itemID(sourceID string, sourceKey json.RawMessage) (string, error) {
	key, err := canonicalKey(sourceKey)
	if err != nil {
		return "", fmt.Errorf("dead letter for item %q: %w", sourceID, err)
	}
	return sourceID + "\x00" + key, nil
}

// collect implements List on top of Each.
func collect(s migrate.DeadLetterStore) ([]migrate.DeadLetter, error) {
	var out []migrate.DeadLetter
	err := s.Each(func(dl migrate.DeadLetter) error {
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
func sortByTime(l []migrate.DeadLetter) {
	sort.SliceStable(l, func(i, j int) bool { return l[i].Time.Before(l[j].Time) })
}

// ErrCorrupt: a complete record of a dead-letter store does not
// decode. A *CorruptError names the file and line (or document).
var ErrCorrupt = errors.New("dead letters are corrupt")

// CorruptError is a record that does not decode: a line of the
// dead-letter file (Line counts from 1) or a document of a lease container
// (Line is 0, Where names the document).
type CorruptError struct {
	Where string // the file path, or the container and document id
	Line  int
	Err   error
}

func (e *CorruptError) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("dead letter at %s: %v: it is not a dead-letter record", e.Where, e.Err)
	}
	return fmt.Sprintf("dead-letter file %s, line %d: %v: the line is not a dead-letter record; "+
		"repair or remove the line by hand (a line holding a torn record glued to a whole one can be split "+
		"before the second '{\"time\"'), then run the command again", e.Where, e.Line, e.Err)
}

// Unwrap lets errors.Is match ErrCorrupt and the decoding error.
func (e *CorruptError) Unwrap() []error { return []error{ErrCorrupt, e.Err} }
