package migrate

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
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

// id identifies the source item a dead letter is about.
func (d DeadLetter) id() string { return d.SourceID + "\x00" + string(d.SourceKey) }

// DeadLetters is the dead-letter file: JSON lines appended as items fail and
// as they are resolved. An item is dead while its latest line is not a
// resolution. Safe for concurrent use.
type DeadLetters struct {
	mu   sync.Mutex
	path string
	f    *os.File
	w    *bufio.Writer
	open map[string]bool // items whose latest line is a failure
}

// OpenDeadLetters opens (creating) the dead-letter file at path.
func OpenDeadLetters(path string) (*DeadLetters, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("dead-letter file %s: %w", path, err)
	}
	entries, err := readDeadLetterLines(path)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("dead-letter file %s: %w", path, err)
	}
	d := &DeadLetters{path: path, f: f, w: bufio.NewWriter(f), open: map[string]bool{}}
	for _, e := range entries {
		d.open[e.id()] = !e.Resolved
	}
	return d, nil
}

// OpenDeadLettersReadOnly reads the dead-letter file at path for counting
// and listing, without opening it for writing (another process may be
// appending); a missing file has no dead letters. Add and Resolve fail.
func OpenDeadLettersReadOnly(path string) (*DeadLetters, error) {
	entries, err := readDeadLetterLines(path)
	if err != nil {
		return nil, err
	}
	d := &DeadLetters{path: path, open: map[string]bool{}}
	for _, e := range entries {
		d.open[e.id()] = !e.Resolved
	}
	return d, nil
}

// errReadOnlyDeadLetters is returned by writes to a read-only file.
var errReadOnlyDeadLetters = errors.New("the dead-letter file is open read-only")

// Path is the file's location.
func (d *DeadLetters) Path() string { return d.path }

// Add records a failed item. It is durable after the next Sync.
func (d *DeadLetters) Add(dl DeadLetter) error {
	dl.Resolved = false
	return d.append(dl)
}

// Resolve records that a previously failed item was written; a no-op for
// items that never failed.
func (d *DeadLetters) Resolve(sourceID string, sourceKey json.RawMessage) error {
	dl := DeadLetter{Time: time.Now().UTC(), SourceID: sourceID, SourceKey: sourceKey, Resolved: true}
	d.mu.Lock()
	failed := d.open[dl.id()]
	d.mu.Unlock()
	if !failed {
		return nil
	}
	return d.append(dl)
}

func (d *DeadLetters) append(dl DeadLetter) error {
	line, err := json.Marshal(dl)
	if err != nil {
		return fmt.Errorf("dead letter for item %q: %w", dl.SourceID, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.w == nil {
		return errReadOnlyDeadLetters
	}
	if _, err := d.w.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("write dead-letter file %s: %w", d.path, err)
	}
	d.open[dl.id()] = !dl.Resolved
	return nil
}

// Sync makes every line added so far durable; the pipeline calls it before
// it checkpoints a page.
func (d *DeadLetters) Sync() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.w == nil {
		return nil
	}
	if err := d.w.Flush(); err != nil {
		return fmt.Errorf("write dead-letter file %s: %w", d.path, err)
	}
	if err := d.f.Sync(); err != nil {
		return fmt.Errorf("sync dead-letter file %s: %w", d.path, err)
	}
	return nil
}

// Count is the number of items currently dead.
func (d *DeadLetters) Count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, dead := range d.open {
		if dead {
			n++
		}
	}
	return n
}

// Close flushes, syncs and closes the file.
func (d *DeadLetters) Close() error {
	if d.f == nil {
		return nil
	}
	err := d.Sync()
	if cerr := d.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// ListDeadLetters returns the items of the file at path that are dead now,
// each with its latest failure, ordered by time. A missing file has none.
func ListDeadLetters(path string) ([]DeadLetter, error) {
	entries, err := readDeadLetterLines(path)
	if err != nil {
		return nil, err
	}
	latest := map[string]DeadLetter{}
	for _, e := range entries {
		if e.Resolved {
			delete(latest, e.id())
		} else {
			latest[e.id()] = e
		}
	}
	out := make([]DeadLetter, 0, len(latest))
	for _, e := range latest {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out, nil
}

func readDeadLetterLines(path string) ([]DeadLetter, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dead-letter file %s: %w", path, err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	var out []DeadLetter
	for n := 1; ; n++ {
		line, err := r.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			var e DeadLetter
			if jerr := json.Unmarshal(line, &e); jerr != nil {
				if err == io.EOF {
					break // a torn last line from a crash: it was never synced
				}
				return nil, fmt.Errorf("dead-letter file %s, line %d: %w", path, n, jerr)
			}
			out = append(out, e)
		}
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("dead-letter file %s: %w", path, err)
		}
	}
	return out, nil
}

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
