package deadletter

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
)

// compactPath is the temp file a compaction writes; a crash can leave it,
// and OpenFile removes it.
func (d *FileStore) compactPath() string {
	return filepath.Join(filepath.Dir(d.path), "."+filepath.Base(d.path)+".compact")
}

// shouldCompact reports whether superseded lines dominate the file and
// nobody is reading it; d.mu is held.
func (d *FileStore) shouldCompact() bool {
	superseded := d.size - d.ix.live
	return d.readers == 0 && superseded > d.ix.live && superseded >= d.opts.compactBytes
}

// compact rewrites the file with the latest line of each dead item only, in
// their order: temp file, fsync, rename over the file, directory fsync, so
// a crash leaves the old file or the new one. Readers that opened the old
// file keep reading it. Every buffered line must be flushed; d.mu is held.
// An error before the rename leaves the file as it was; after it, the
// store is broken (d.f is the replaced file).
func (d *FileStore) compact() error {
	type entry struct {
		id  string
		ref lineRef
	}
	entries := make([]entry, 0, len(d.ix.refs))
	for id, ref := range d.ix.refs {
		entries = append(entries, entry{id, ref})
	}
	slices.SortFunc(entries, func(a, b entry) int { return cmp.Compare(a.ref.off, b.ref.off) })

	tmpPath := d.compactPath()
	fail := func(err error) error {
		os.Remove(tmpPath)
		return fmt.Errorf("compact dead-letter file %s: %w", d.path, err)
	}
	// The rewrite keeps the file's mode: never wider than the file it
	// replaces (a new file is 0600).
	mode := fileMode
	if info, err := d.f.Stat(); err == nil {
		mode = info.Mode().Perm()
	}
	tmp, err := os.OpenFile(tmpPath, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, mode&fileMode)
	if err != nil {
		return fail(err)
	}
	if err := tmp.Chmod(mode); err != nil { // the umask may have narrowed it further
		tmp.Close()
		return fail(err)
	}
	w := bufio.NewWriterSize(d.writer(tmp), 256<<10)
	var off int64
	for i, e := range entries {
		if _, err := io.Copy(w, io.NewSectionReader(d.f, e.ref.off, e.ref.n)); err != nil {
			tmp.Close()
			return fail(err)
		}
		entries[i].ref.off = off
		off += e.ref.n
	}
	err = w.Flush()
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmpPath, d.path)
	}
	if err != nil {
		return fail(err)
	}
	f, err := os.OpenFile(d.path, os.O_RDWR|os.O_APPEND, 0)
	if err == nil {
		err = syncDir(filepath.Dir(d.path))
	}
	if err != nil {
		if f != nil {
			f.Close()
		}
		return fmt.Errorf("compact dead-letter file %s: reopen after the rewrite: %w", d.path, err)
	}
	if err := d.f.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
		f.Close()
		return fmt.Errorf("compact dead-letter file %s: close the old file: %w", d.path, err)
	}
	d.f = f
	if d.w != nil {
		d.w.Reset(d.writer(f))
	}
	for _, e := range entries {
		d.ix.refs[e.id] = e.ref
	}
	d.size, d.synced = off, off
	return nil
}
