package migrate

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"sync"
)

// record is what verify keeps of one item: who it is, where it lives, and a
// digest of its content. Source records carry the key the item should have
// in the target; target records the key it has.
type record struct {
	flags  byte
	id     string
	srcKey string // the source key as a JSON array
	tgtKey string // source: the expected target key; target: its actual key
	digest Digest
	ts     int64  // the source item's _ts (source records)
	reason string // why an untransformable source item failed
}

const (
	recTarget        byte = 1 << iota // from the target (else from the source)
	recUntransformed                  // a source item the key spec cannot transform
)

// ident is the source identity a record maps to: a target item maps to
// exactly one source item (id and source key) or to none.
func (r *record) ident() string { return r.id + "\x00" + r.srcKey }

// spill partitions records by source identity into bucket files, so verify
// can compare one bucket at a time with memory proportional to a bucket,
// whatever the containers' sizes.
type spill struct {
	dir     string
	mu      []sync.Mutex
	files   []*os.File
	writers []*bufio.Writer
	n       int
}

func newSpill(dir string, buckets int) (*spill, error) {
	s := &spill{dir: dir, n: buckets, mu: make([]sync.Mutex, buckets)}
	for i := 0; i < buckets; i++ {
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("bucket-%03d", i)))
		if err != nil {
			s.close()
			return nil, fmt.Errorf("verify spill file: %w", err)
		}
		s.files = append(s.files, f)
		s.writers = append(s.writers, bufio.NewWriterSize(f, 32<<10))
	}
	return s, nil
}

// bucketOf picks a record's bucket from its source identity.
func (s *spill) bucketOf(ident string) int {
	h := fnv.New64a()
	_, _ = h.Write([]byte(ident))
	return int(h.Sum64() % uint64(s.n))
}

// add appends a record to its bucket; safe for concurrent use.
func (s *spill) add(r *record) error {
	b := s.bucketOf(r.ident())
	var buf [binary.MaxVarintLen64]byte
	s.mu[b].Lock()
	defer s.mu[b].Unlock()
	w := s.writers[b]
	w.WriteByte(r.flags)
	for _, str := range [...]string{r.id, r.srcKey, r.tgtKey, r.reason} {
		n := binary.PutUvarint(buf[:], uint64(len(str)))
		w.Write(buf[:n])
		w.WriteString(str)
	}
	w.Write(r.digest[:])
	n := binary.PutVarint(buf[:], r.ts)
	_, err := w.Write(buf[:n])
	return err
}

// read returns bucket b's records.
func (s *spill) read(b int) ([]record, error) {
	if err := s.writers[b].Flush(); err != nil {
		return nil, fmt.Errorf("verify spill: %w", err)
	}
	f := s.files[b]
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("verify spill: %w", err)
	}
	r := bufio.NewReaderSize(f, 64<<10)
	var out []record
	for {
		flags, err := r.ReadByte()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("verify spill: %w", err)
		}
		rec := record{flags: flags}
		for _, dst := range [...]*string{&rec.id, &rec.srcKey, &rec.tgtKey, &rec.reason} {
			n, err := binary.ReadUvarint(r)
			if err != nil {
				return nil, fmt.Errorf("verify spill: %w", err)
			}
			b := make([]byte, n)
			if _, err := io.ReadFull(r, b); err != nil {
				return nil, fmt.Errorf("verify spill: %w", err)
			}
			*dst = string(b)
		}
		if _, err := io.ReadFull(r, rec.digest[:]); err != nil {
			return nil, fmt.Errorf("verify spill: %w", err)
		}
		if rec.ts, err = binary.ReadVarint(r); err != nil {
			return nil, fmt.Errorf("verify spill: %w", err)
		}
		out = append(out, rec)
	}
}

func (s *spill) close() {
	for _, f := range s.files {
		f.Close()
	}
}
