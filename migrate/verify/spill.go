package verify

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

	"github.com/rekey-dev/rekey/migrate"
)

// record is what verify keeps of one item: who it is, where it lives, and a
// digest of its content. Source records carry the key the item should have
// in the target; target records the key it has. Dead-letter records say
// that the item has a current dead letter, of kind reason.
type record struct {
	flags  byte
	id     string
	srcKey string // the source key as a JSON array
	tgtKey string // source: the expected target key; target: its actual key
	digest migrate.Digest
	ts     int64  // the source item's _ts (source records)
	reason string // why an untransformable source item failed; a dead letter's kind
}

const (
	recTarget        byte = 1 << iota // from the target (else from the source)
	recUntransformed                  // a source item the key spec cannot transform
	recDeadLetter                     // a current dead letter of the source item
)

// ident is the source identity a record maps to: a target item maps to
// exactly one source item (id and source key) or to none.
func (r *record) ident() string { return r.id + "\x00" + r.srcKey }

// maxBucketBytes bounds the spilled bytes verify compares at once. A bucket
// file larger than this is split again into sub-buckets by another hash, so
// the records in memory stay near this size whatever the containers hold.
const maxBucketBytes = 1 << 20

// maxSplitDepth bounds the re-splitting of a bucket: each level divides it
// by at least two, so only records of very few identities can still exceed
// maxBucketBytes at that depth.
const maxSplitDepth = 8

// spill partitions records by source identity into bucket files, so verify
// can compare one bucket at a time with memory bounded by maxBucketBytes,
// whatever the containers' sizes.
type spill struct {
	dir      string
	maxBytes int64 // a bucket past this is split again (maxBucketBytes)
	depth    int   // 0 for verify's spill, +1 for each split: the hash's salt
	mu       []sync.Mutex
	files    []*os.File
	writers  []*bufio.Writer
	sizes    []int64
	n        int
}

func newSpill(dir string, buckets int) (*spill, error) {
	s := &spill{dir: dir, maxBytes: maxBucketBytes, n: buckets, mu: make([]sync.Mutex, buckets), sizes: make([]int64, buckets)}
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

// bucketOf picks a record's bucket from its source identity: a hash
// salted with the spill's depth, so that a bucket's records spread over its
// sub-buckets, and fixed, so that a verify of the same containers compares
// (and rechecks, and fixes) in the same order every time.
func (s *spill) bucketOf(ident string) int {
	h := fnv.New64a()
	h.Write([]byte{byte(s.depth)})
	h.Write([]byte(ident))
	// FNV's low bits spread poorly: mix them (SplitMix64's finalizer).
	x := h.Sum64()
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	x ^= x >> 31
	return int(x % uint64(s.n))
}

// add appends a record to its bucket; safe for concurrent use.
func (s *spill) add(r *record) error {
	var scratch [256]byte
	enc := r.appendTo(scratch[:0])
	b := s.bucketOf(r.ident())
	s.mu[b].Lock()
	defer s.mu[b].Unlock()
	if _, err := s.writers[b].Write(enc); err != nil {
		return fmt.Errorf("verify spill: %w", err)
	}
	s.sizes[b] += int64(len(enc))
	return nil
}

// appendTo appends the record's encoding: flags, four length-prefixed
// strings, the digest and the _ts.
func (r *record) appendTo(b []byte) []byte {
	b = append(b, r.flags)
	for _, str := range [...]string{r.id, r.srcKey, r.tgtKey, r.reason} {
		b = binary.AppendUvarint(b, uint64(len(str)))
		b = append(b, str...)
	}
	b = append(b, r.digest[:]...)
	return binary.AppendVarint(b, r.ts)
}

// each calls fn with the records of every bucket in turn. A bucket over
// maxBucketBytes is first split into sub-buckets in a directory of its own
// (recursively, with another hash salt each level), so fn never holds more
// than about maxBucketBytes of records. Every record of one source identity
// reaches fn in the same call.
func (s *spill) each(fn func([]record) error) error {
	for b := 0; b < s.n; b++ {
		if err := s.writers[b].Flush(); err != nil {
			return fmt.Errorf("verify spill: %w", err)
		}
		if err := s.eachOf(b, fn); err != nil {
			return err
		}
	}
	return nil
}

func (s *spill) eachOf(b int, fn func([]record) error) error {
	f := s.files[b]
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("verify spill: %w", err)
	}
	r := bufio.NewReaderSize(f, 64<<10)
	if s.sizes[b] <= s.maxBytes || s.depth >= maxSplitDepth {
		var recs []record
		err := readRecords(r, func(rec record) error {
			recs = append(recs, rec)
			return nil
		})
		if err != nil {
			return err
		}
		return fn(recs)
	}
	dir := filepath.Join(s.dir, fmt.Sprintf("split-%03d", b))
	if err := os.Mkdir(dir, 0o700); err != nil {
		return fmt.Errorf("verify spill: %w", err)
	}
	defer os.RemoveAll(dir)
	sub, err := newSpill(dir, int(min(s.sizes[b]/s.maxBytes*2+2, 64)))
	if err != nil {
		return err
	}
	sub.maxBytes, sub.depth = s.maxBytes, s.depth+1
	defer sub.close()
	if err := readRecords(r, func(rec record) error { return sub.add(&rec) }); err != nil {
		return err
	}
	// The bucket's file is no longer needed: give its disk space back.
	if err := f.Truncate(0); err != nil {
		return fmt.Errorf("verify spill: %w", err)
	}
	return sub.each(fn)
}

// readRecords decodes records until the end of r.
func readRecords(r *bufio.Reader, fn func(record) error) error {
	for {
		flags, err := r.ReadByte()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("verify spill: %w", err)
		}
		rec := record{flags: flags}
		for _, dst := range [...]*string{&rec.id, &rec.srcKey, &rec.tgtKey, &rec.reason} {
			n, err := binary.ReadUvarint(r)
			if err != nil {
				return fmt.Errorf("verify spill: %w", err)
			}
			b := make([]byte, n)
			if _, err := io.ReadFull(r, b); err != nil {
				return fmt.Errorf("verify spill: %w", err)
			}
			*dst = string(b)
		}
		if _, err := io.ReadFull(r, rec.digest[:]); err != nil {
			return fmt.Errorf("verify spill: %w", err)
		}
		if rec.ts, err = binary.ReadVarint(r); err != nil {
			return fmt.Errorf("verify spill: %w", err)
		}
		if err := fn(rec); err != nil {
			return err
		}
	}
}

func (s *spill) close() {
	for _, f := range s.files {
		f.Close()
	}
}
