package deadletter

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rekey-dev/rekey/migrate"
)

func testDeadLetter(id, reason string) migrate.DeadLetter {
	return migrate.DeadLetter{Time: time.Unix(1700000000, 0).UTC(), SourceID: id, SourceKey: json.RawMessage(`["eu"]`),
		Kind: "missing-field", Reason: reason, Item: json.RawMessage(`{"id":"` + id + `","blob":"` + strings.Repeat("x", 200) + `"}`)}
}

func mustOpen(t *testing.T, path string, opts ...Option) *FileStore {
	t.Helper()
	d, err := OpenFile(path, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// deadIDs lists the source ids a store holds, in Each's order.
func deadIDs(t *testing.T, s migrate.DeadLetterStore) string {
	t.Helper()
	var ids []string
	must(t, s.Each(func(dl migrate.DeadLetter) error {
		ids = append(ids, dl.SourceID+"="+dl.Reason)
		return nil
	}))
	n, err := s.Count()
	must(t, err)
	if n != len(ids) {
		t.Fatalf("Count %d, Each saw %d", n, len(ids))
	}
	return strings.Join(ids, ",")
}

// A line a crash tore is cut off on open (and the cut is synced), so the
// next append starts on a line of its own; read-only openers leave it.
func TestDeadLetterFileRepairsTornTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dl.jsonl")
	d := mustOpen(t, path)
	must(t, d.Add(testDeadLetter("a", "1")))
	must(t, d.Add(testDeadLetter("b", "1")))
	must(t, d.Close())
	whole, _ := os.ReadFile(path)
	line, _ := json.Marshal(testDeadLetter("c", "torn"))
	for _, cut := range []int{1, len(line) / 2, len(line)} { // even a whole record without its '\n'
		must(t, os.WriteFile(path, append(append([]byte(nil), whole...), line[:cut]...), 0o644))

		ro, err := OpenFileReadOnly(path)
		must(t, err)
		if got := deadIDs(t, ro); got != "a=1,b=1" {
			t.Fatalf("read-only over a torn tail: %s", got)
		}
		ro.Close()
		if b, _ := os.ReadFile(path); len(b) != len(whole)+cut {
			t.Fatalf("a read-only open changed the file")
		}

		d := mustOpen(t, path)
		if d.Repaired() != int64(cut) {
			t.Fatalf("repaired %d bytes, want %d", d.Repaired(), cut)
		}
		if b, _ := os.ReadFile(path); !bytes.Equal(b, whole) {
			t.Fatalf("after repair the file is %q, want the whole lines only", b)
		}
		must(t, d.Add(testDeadLetter("c", "again")))
		must(t, d.Sync())
		if got := deadIDs(t, d); got != "a=1,b=1,c=again" {
			t.Fatalf("after repair and append: %s", got)
		}
		must(t, d.Close())
		ro, err = OpenFileReadOnly(path)
		must(t, err)
		if got := deadIDs(t, ro); got != "a=1,b=1,c=again" {
			t.Fatalf("reopened: %s", got)
		}
		ro.Close()
	}
}

// A complete line that is not a record is reported with the file and line
// by every opener, and nothing is changed.
func TestDeadLetterFileCorruptLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dl.jsonl")
	a, _ := json.Marshal(testDeadLetter("a", "1"))
	b, _ := json.Marshal(testDeadLetter("b", "1"))
	content := string(a) + "\n" + string(b[:40]) + string(b) + "\n" + string(a) + "\n"
	must(t, os.WriteFile(path, []byte(content), 0o644))
	for name, open := range map[string]func(string) (*FileStore, error){
		"write":     func(p string) (*FileStore, error) { return OpenFile(p) },
		"read-only": OpenFileReadOnly,
	} {
		_, err := open(path)
		var ce *CorruptError
		if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) || ce.Line != 2 || ce.Where != path ||
			!strings.Contains(err.Error(), path+", line 2") {
			t.Errorf("%s: open over a glued line: %v", name, err)
		}
		if got, _ := os.ReadFile(path); string(got) != content {
			t.Errorf("%s: the open changed a corrupt file", name)
		}
	}
	// A key that is not a JSON array is as corrupt as broken JSON.
	must(t, os.WriteFile(path, []byte(`{"sourceId":"a","sourceKey":"eu"}`+"\n"), 0o644))
	if _, err := OpenFileReadOnly(path); !errors.Is(err, ErrCorrupt) {
		t.Errorf("a record whose key is not an array: %v", err)
	}
}

// fullDisk lets ok writes through; then it writes half of the next and
// fails with ENOSPC, and every write after that fails.
type fullDisk struct {
	w  io.Writer
	ok *atomic.Int32
}

func (d fullDisk) Write(p []byte) (int, error) {
	if d.ok.Add(-1) >= 0 {
		return d.w.Write(p)
	}
	n, _ := d.w.Write(p[:len(p)/2])
	return n, &os.PathError{Op: "write", Path: "dl", Err: syscall.ENOSPC}
}

// A failed write breaks the store: that call and every later one return an
// error naming the file, and the file is cut back to its last synced line.
func TestDeadLetterFileWriteFailure(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dl.jsonl")
	var ok atomic.Int32
	ok.Store(1)
	d := mustOpen(t, path, WithWriter(func(w io.Writer) io.Writer { return fullDisk{w, &ok} }))
	must(t, d.Add(testDeadLetter("a", "1")))
	must(t, d.Sync())
	synced, _ := os.ReadFile(path)
	must(t, d.Add(testDeadLetter("b", "1")))
	err := d.Sync()
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "write dead-letter file "+path) {
		t.Fatalf("Sync on a full disk: %v", err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, synced) {
		t.Fatalf("after the failure the file holds %q, want the synced lines %q", got, synced)
	}
	for _, c := range []struct {
		name string
		call func() error
	}{
		{"Add", func() error { return d.Add(testDeadLetter("c", "1")) }},
		{"Resolve", func() error { return d.Resolve("a", json.RawMessage(`["eu"]`)) }},
		{"Sync", d.Sync},
		{"Count", func() error { _, err := d.Count(); return err }},
		{"Each", func() error { return d.Each(func(migrate.DeadLetter) error { return nil }) }},
		{"Close", d.Close},
	} {
		if err := c.call(); !errors.Is(err, syscall.ENOSPC) {
			t.Errorf("%s after the failure: %v, want the ENOSPC", c.name, err)
		}
	}
	d2 := mustOpen(t, path)
	if got := deadIDs(t, d2); got != "a=1" {
		t.Fatalf("reopened after the failure: %s", got)
	}
}

// Superseded lines (older failures, resolved items) are dropped by a
// rewrite once they dominate, on open and after a Sync; only the latest
// failure of each dead item is kept, in the order recorded.
func TestDeadLetterFileCompaction(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "dl.jsonl")
	d := mustOpen(t, path, WithCompaction(4<<10))
	for v := 0; v < 50; v++ {
		must(t, d.Add(testDeadLetter("hot", fmt.Sprint(v))))
		must(t, d.Add(testDeadLetter(fmt.Sprintf("cold-%d", v), "1")))
		if v%2 == 1 {
			must(t, d.Resolve(fmt.Sprintf("cold-%d", v), json.RawMessage(`["eu"]`)))
		}
		must(t, d.Sync())
	}
	info, _ := os.Stat(path)
	live := d.ix.live
	if superseded := info.Size() - live; superseded > max(live, 4<<10)+4<<10 {
		t.Fatalf("file of %d bytes holds %d superseded bytes: never compacted", info.Size(), superseded)
	}
	want := deadIDs(t, d)
	if !strings.Contains(want, "hot=49") || strings.Count(want, "hot=") != 1 || strings.Contains(want, "cold-1=") || !strings.Contains(want, "cold-48=") {
		t.Fatalf("after compaction: %s", want)
	}
	must(t, d.Close())
	if _, err := os.Stat(filepath.Join(dir, ".dl.jsonl.compact")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the compaction's temp file is left: %v", err)
	}

	// A file written without compaction is compacted on open.
	d = mustOpen(t, path, WithCompaction(1<<30))
	for v := 0; v < 200; v++ {
		must(t, d.Add(testDeadLetter("hot", fmt.Sprint(v))))
	}
	must(t, d.Close())
	before, _ := os.Stat(path)
	d = mustOpen(t, path, WithCompaction(4<<10))
	after, _ := os.Stat(path)
	if after.Size() != d.ix.live || after.Size() >= before.Size()/5 {
		t.Fatalf("open did not compact: %d bytes before, %d after", before.Size(), after.Size())
	}
	if got := deadIDs(t, d); !strings.Contains(got, "hot=199") || strings.Count(got, "hot=") != 1 {
		t.Fatalf("after compaction on open: %s", got)
	}
	checkFileLines(t, path)

	// No rewrite while Each reads: the offsets it holds stay valid.
	for v := 0; v < 200; v++ {
		must(t, d.Add(testDeadLetter("hot", fmt.Sprint(v))))
	}
	n := 0
	must(t, d.Each(func(migrate.DeadLetter) error {
		must(t, d.Sync()) // would compact if Each were not reading
		n++
		return nil
	}))
	if n == 0 {
		t.Fatal("Each saw nothing")
	}
	must(t, d.Sync())
	checkFileLines(t, path)
}

// checkFileLines asserts the file is whole records, one per line.
func checkFileLines(t *testing.T, path string) {
	t.Helper()
	b, _ := os.ReadFile(path)
	for i, line := range bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
		var dl migrate.DeadLetter
		if err := json.Unmarshal(line, &dl); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
	}
}

// One item is one item however its key's JSON was escaped: a resolution
// written with HTML escaping resolves a failure written without.
func TestDeadLetterKeysAreCanonical(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dl.jsonl")
	d := mustOpen(t, path)
	dl := testDeadLetter("a", "1")
	dl.SourceKey = json.RawMessage(`["R&D",1.50,{}]`)
	must(t, d.Add(dl))
	must(t, d.Resolve("a", json.RawMessage(`["R\u0026D", 1.50, {}]`)))
	if n, _ := d.Count(); n != 0 {
		t.Fatalf("an escaped key did not resolve the item: %d dead", n)
	}
}

// The dead-letter file holds whole source items: it is created 0600, as the
// state's files, and a compaction's rewrite keeps the mode of the file it
// replaces, never wider.
func TestDeadLetterFileMode(t *testing.T) {
	for _, existing := range []os.FileMode{0, 0o600, 0o640} {
		path := filepath.Join(t.TempDir(), "dl.jsonl")
		want := existing
		if existing == 0 {
			want = 0o600 // created by OpenFile
		} else if err := os.WriteFile(path, nil, existing); err != nil {
			t.Fatal(err)
		} else if err := os.Chmod(path, existing); err != nil {
			t.Fatal(err)
		}
		d := mustOpen(t, path, WithCompaction(4<<10))
		for v := 0; v < 200; v++ { // superseded lines: compacted on Sync
			must(t, d.Add(testDeadLetter("hot", fmt.Sprint(v))))
		}
		must(t, d.Sync())
		must(t, d.Close())
		if info, _ := os.Stat(path); info.Size() > 4<<10 {
			t.Fatalf("the file was not compacted (%d bytes): the test needs a rewrite", info.Size())
		}
		if info, err := os.Stat(path); err != nil || info.Mode().Perm() != want {
			t.Errorf("existing mode %v: after a compaction the file is %v, want %v (%v)", existing, info.Mode().Perm(), want, err)
		}
	}
}
