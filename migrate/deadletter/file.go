package deadletter

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/rekey-dev/rekey/migrate"
)

// DefaultCompactBytes is how many bytes of superseded lines (older
// failures of items that failed again, and items since resolved) the
// dead-letter file may hold before it is rewritten; it is rewritten only
// when they also outweigh the lines still current.
const DefaultCompactBytes = 8 << 20

// Option configures a dead-letter file.
type Option func(*options)

type options struct {
	wrap         func(io.Writer) io.Writer
	compactBytes int64
}

// WithWriter passes every write to the file (appends and the
// rewrite of a compaction) through wrap. Tests inject a full disk this way:
// a short write that fails with ENOSPC.
func WithWriter(wrap func(io.Writer) io.Writer) Option {
	return func(o *options) { o.wrap = wrap }
}

// WithCompaction sets the superseded bytes that make the file be
// rewritten (DefaultCompactBytes when not given).
func WithCompaction(bytes int64) Option {
	return func(o *options) { o.compactBytes = bytes }
}

// FileStore is the dead-letter file: JSON lines appended as items fail and
// as they are resolved; an item is dead while its latest line is not a
// resolution. It keeps in memory only an index of the dead items (id,
// offset and length of the latest line) and reads records from the file
// when it lists them.
//
// Opening it for writing repairs what a crash or a full disk can leave: a
// torn last line (never synced, so its page was never checkpointed) is cut
// off, so the next append starts on a line of its own. When superseded
// lines outweigh the current ones the file is rewritten with the current
// lines only (temp file, fsync, rename, directory fsync), on open and after
// a Sync. A write that fails (ENOSPC) breaks the store: that call and every
// later one return the error, naming the file, and the file is cut back to
// its last synced line.
//
// Safe for concurrent use.
type FileStore struct {
	path     string
	opts     options
	readOnly bool

	mu       sync.Mutex
	f        *os.File      // nil when read-only over a missing file, or closed
	w        *bufio.Writer // nil when read-only
	ix       *deadIndex
	size     int64 // bytes of whole lines written, buffered ones included
	synced   int64 // bytes durable as of the last Sync
	err      error // the first write failure: the store is unusable
	closed   bool
	readers  int   // Each calls in progress: no compaction under them
	repaired int64 // bytes of a torn last line cut off by open
}

// errReadOnly is returned by writes to a read-only file.
var errReadOnly = errors.New("the dead-letter file is open read-only")

// errClosed is returned by a store used after Close.
var errClosed = errors.New("the dead-letter file is closed")

// fileMode is the mode of a new dead-letter file.
const fileMode os.FileMode = 0o600

// OpenFile opens (creating) the dead-letter file at path for writing.
// One process at a time may write a file (the state's lock sees to it). A
// complete line that is not a dead letter fails the open with a
// *CorruptError naming the line: nothing is changed then.
func OpenFile(path string, opts ...Option) (*FileStore, error) {
	d := &FileStore{path: path, opts: options{compactBytes: DefaultCompactBytes}}
	for _, o := range opts {
		o(&d.opts)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("dead-letter file %s: %w", path, err)
	}
	if err := os.Remove(d.compactPath()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("dead-letter file %s: remove an unfinished rewrite: %w", path, err)
	}
	_, statErr := os.Stat(path)
	// 0600, as the state's files: dead letters hold whole source items.
	// An existing file keeps its mode.
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_APPEND, fileMode)
	if err != nil {
		return nil, fmt.Errorf("dead-letter file %s: %w", path, err)
	}
	if errors.Is(statErr, os.ErrNotExist) {
		if err := syncDir(dir); err != nil {
			f.Close()
			return nil, fmt.Errorf("dead-letter file %s: %w", path, err)
		}
	}
	d.f = f
	if err := d.load(); err != nil {
		f.Close()
		return nil, err
	}
	d.w = bufio.NewWriterSize(d.writer(d.f), 64<<10)
	return d, nil
}

// load indexes the file, cuts off a torn last line and compacts.
func (d *FileStore) load() error {
	res, err := indexFile(d.f, d.path)
	if err != nil {
		return err
	}
	d.ix, d.size, d.synced = res.index, res.complete, res.complete
	if res.size > res.complete {
		if err := d.f.Truncate(res.complete); err != nil {
			return fmt.Errorf("dead-letter file %s: cut off a torn last line: %w", d.path, err)
		}
		if err := d.f.Sync(); err != nil {
			return fmt.Errorf("dead-letter file %s: cut off a torn last line: %w", d.path, err)
		}
		d.repaired = res.size - res.complete
	}
	if d.shouldCompact() {
		return d.compact()
	}
	return nil
}

// OpenFileReadOnly reads the dead-letter file at path for counting
// and listing, without writing to it (another process may be appending:
// a last line without its '\n' is an append in progress and is left out). A
// missing file has no dead letters. Add and Resolve fail.
func OpenFileReadOnly(path string) (*FileStore, error) {
	d := &FileStore{path: path, readOnly: true, ix: newDeadIndex()}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return d, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dead-letter file %s: %w", path, err)
	}
	res, err := indexFile(f, path)
	if err != nil {
		f.Close()
		return nil, err
	}
	d.f, d.ix, d.size, d.synced = f, res.index, res.complete, res.complete
	return d, nil
}

// Path is the file's location.
func (d *FileStore) Path() string { return d.path }

// Where is the file's path.
func (d *FileStore) Where() string { return d.path }

// Repaired is how many bytes of a torn last line OpenFile cut off
// (0 when the file ended cleanly), for the caller to log.
func (d *FileStore) Repaired() int64 { return d.repaired }

var _ migrate.DeadLetterStore = (*FileStore)(nil)

// Add records a failed item. It is durable after the next Sync.
func (d *FileStore) Add(dl migrate.DeadLetter) error {
	dl.Resolved = false
	id, err := itemID(dl.SourceID, dl.SourceKey)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.append(id, dl)
}

// Resolve records that a previously failed item was written; a no-op for
// items that are not dead.
func (d *FileStore) Resolve(sourceID string, sourceKey json.RawMessage) error {
	d.mu.Lock()
	none := len(d.ix.refs) == 0 && !d.closed && d.err == nil
	d.mu.Unlock()
	if none { // nothing is dead: every written item resolves, spare it the key's canonical form
		return nil
	}
	id, err := itemID(sourceID, sourceKey)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, dead := d.ix.refs[id]; !dead && !d.closed && d.err == nil {
		return nil
	}
	return d.append(id, migrate.DeadLetter{Time: time.Now().UTC(), SourceID: sourceID, SourceKey: sourceKey, Resolved: true})
}

// append writes one line; d.mu is held.
func (d *FileStore) append(id string, dl migrate.DeadLetter) error {
	if err := d.usable(); err != nil {
		return err
	}
	line, err := json.Marshal(dl)
	if err != nil {
		return fmt.Errorf("dead letter for item %q: %w", dl.SourceID, err)
	}
	line = append(line, '\n')
	if _, err := d.w.Write(line); err != nil {
		return d.fail(err)
	}
	d.ix.record(id, dl.Resolved, lineRef{off: d.size, n: int64(len(line))})
	d.size += int64(len(line))
	return nil
}

// usable says why the store cannot be used, if it cannot; d.mu is held.
func (d *FileStore) usable() error {
	switch {
	case d.closed:
		return fmt.Errorf("dead-letter file %s: %w", d.path, errClosed)
	case d.err != nil:
		return d.err
	case d.readOnly:
		return fmt.Errorf("dead-letter file %s: %w", d.path, errReadOnly)
	}
	return nil
}

// fail breaks the store after a failed write and cuts the file back to its
// last synced line, so no reader finds a torn line (if that fails too, the
// next OpenFile cuts it). Lines after that point belong to pages
// whose Sync has not succeeded, which are never checkpointed. d.mu is held.
func (d *FileStore) fail(err error) error {
	d.err = fmt.Errorf("write dead-letter file %s: %w", d.path, err)
	if d.w != nil {
		d.w.Reset(io.Discard)
	}
	if terr := d.f.Truncate(d.synced); terr != nil {
		d.err = fmt.Errorf("%w (cutting off the unsynced lines failed too: %v; the next run cuts them)", d.err, terr)
	} else if serr := d.f.Sync(); serr != nil {
		d.err = fmt.Errorf("%w (syncing after cutting off the unsynced lines failed too: %v)", d.err, serr)
	}
	return d.err
}

// Sync makes every line added so far durable, then compacts the file if
// superseded lines dominate it. The pipeline calls it before it
// checkpoints a page. A read-only file has nothing to sync.
func (d *FileStore) Sync() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.readOnly && !d.closed {
		return nil
	}
	if err := d.usable(); err != nil {
		return err
	}
	if err := d.w.Flush(); err != nil {
		return d.fail(err)
	}
	if err := d.f.Sync(); err != nil {
		return d.fail(err)
	}
	d.synced = d.size
	if d.shouldCompact() {
		if err := d.compact(); err != nil {
			d.err = err
			return err
		}
	}
	return nil
}

// Count is the number of items currently dead; the write failure that broke
// the store, if one did.
func (d *FileStore) Count() (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err != nil {
		return 0, d.err
	}
	return len(d.ix.refs), nil
}

// Each calls fn with the latest failure of every item currently dead, in
// the order they were recorded, reading one record at a time from the file.
func (d *FileStore) Each(fn func(migrate.DeadLetter) error) error {
	d.mu.Lock()
	if d.closed || d.err != nil {
		err := d.usable()
		d.mu.Unlock()
		return err
	}
	if d.w != nil {
		if err := d.w.Flush(); err != nil {
			err = d.fail(err)
			d.mu.Unlock()
			return err
		}
	}
	refs, f := d.ix.sorted(), d.f
	d.readers++
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		d.readers--
		d.mu.Unlock()
	}()
	var buf []byte
	for _, r := range refs {
		if int64(cap(buf)) < r.n {
			buf = make([]byte, r.n)
		}
		line := buf[:r.n]
		if _, err := f.ReadAt(line, r.off); err != nil {
			return fmt.Errorf("read dead-letter file %s at byte %d: %w", d.path, r.off, err)
		}
		var dl migrate.DeadLetter
		if err := json.Unmarshal(line, &dl); err != nil {
			return &CorruptError{Where: fmt.Sprintf("%s at byte %d", d.path, r.off), Err: err}
		}
		if err := fn(dl); err != nil {
			return err
		}
	}
	return nil
}

// List returns the items that are dead now, oldest first, all in memory.
func (d *FileStore) List() ([]migrate.DeadLetter, error) { return collect(d) }

// Close flushes, syncs and closes the file. It returns the write failure
// that broke the store, if one did.
func (d *FileStore) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	var err error
	if d.w != nil && d.err == nil {
		if err = d.w.Flush(); err == nil {
			err = d.f.Sync()
		}
		if err != nil {
			err = d.fail(err)
		}
	} else if d.err != nil {
		err = d.err
	}
	if d.f != nil {
		if cerr := d.f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("close dead-letter file %s: %w", d.path, cerr)
		}
	}
	d.closed = true
	return err
}

// writer is where writes to f go: f itself, or what the test seam makes it.
func (d *FileStore) writer(f *os.File) io.Writer {
	if d.opts.wrap != nil {
		return d.opts.wrap(f)
	}
	return f
}

// syncDir makes a directory's entries (a created or renamed file) durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return f.Close()
}
