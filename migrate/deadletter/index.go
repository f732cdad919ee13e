package deadletter

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
)

// The dead-letter file is JSON lines, appended as items fail and as they
// are resolved; the latest line of a source item says whether it is dead.
// Readers keep an index of the dead items only, the offset and length of
// each one's latest line, and read a record from the file when they need
// it, so memory follows the number of dead items, not the file's size.

// lineRef locates one line of the file; n counts its '\n'.
type lineRef struct {
	off, n int64
}

// deadIndex maps each dead item (itemID) to its latest line.
type deadIndex struct {
	refs map[string]lineRef
	live int64 // bytes of the lines in refs
}

func newDeadIndex() *deadIndex { return &deadIndex{refs: map[string]lineRef{}} }

// record notes a line about item id: a failure at ref, or a resolution.
func (ix *deadIndex) record(id string, resolved bool, ref lineRef) {
	if old, ok := ix.refs[id]; ok {
		ix.live -= old.n
		delete(ix.refs, id)
	}
	if !resolved {
		ix.refs[id] = ref
		ix.live += ref.n
	}
}

// sorted returns the dead items' lines in file order.
func (ix *deadIndex) sorted() []lineRef {
	out := make([]lineRef, 0, len(ix.refs))
	for _, r := range ix.refs {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b lineRef) int { return cmp.Compare(a.off, b.off) })
	return out
}

// lineScanner reads lines with their offsets into one reused buffer: memory
// holds the longest line, whatever the file's size.
type lineScanner struct {
	r    *bufio.Reader
	buf  []byte
	off  int64 // offset of the next line
	line int   // number of the line last returned, from 1
}

func newLineScanner(r io.Reader) *lineScanner {
	return &lineScanner{r: bufio.NewReaderSize(r, 256<<10)}
}

// next returns the next line without its '\n', where it starts, and
// whether it is complete (ends with '\n'; only the last line may not). It
// returns io.EOF after the last line. The line is valid until the next call.
func (s *lineScanner) next() (line []byte, ref lineRef, complete bool, err error) {
	s.buf = s.buf[:0]
	for {
		chunk, err := s.r.ReadSlice('\n')
		s.buf = append(s.buf, chunk...)
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(s.buf) == 0:
			return nil, lineRef{off: s.off}, false, io.EOF
		case err != nil && !errors.Is(err, io.EOF):
			return nil, lineRef{}, false, err
		}
		ref = lineRef{off: s.off, n: int64(len(s.buf))}
		s.off += ref.n
		s.line++
		if err != nil { // EOF after a line without '\n'
			return s.buf, ref, false, nil
		}
		return s.buf[:len(s.buf)-1], ref, true, nil
	}
}

// deadLetterHead is what indexing a line needs of it.
type deadLetterHead struct {
	SourceID  string          `json:"sourceId"`
	SourceKey json.RawMessage `json:"sourceKey"`
	Resolved  bool            `json:"resolved"`
}

// decodeHead reads a line's item identity. A line that is not a JSON
// object with a source key array is an error.
func decodeHead(line []byte) (id string, resolved bool, err error) {
	var h deadLetterHead
	if err := json.Unmarshal(line, &h); err != nil {
		return "", false, err
	}
	key, err := canonicalKey(h.SourceKey)
	if err != nil {
		return "", false, err
	}
	return h.SourceID + "\x00" + key, h.Resolved, nil
}

// canonicalKey renders a source key (a JSON array) in one form whatever
// escaping wrote it ("R&D" and "R\u0026D" are one key), so an item's lines
// match however they were encoded.
func canonicalKey(raw json.RawMessage) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var vals []any
	if err := dec.Decode(&vals); err != nil {
		return "", fmt.Errorf("source key %.60s: %w", raw, err)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(vals); err != nil {
		return "", fmt.Errorf("source key %.60s: %w", raw, err)
	}
	return string(bytes.TrimSuffix(b.Bytes(), []byte("\n"))), nil
}

// scanResult is what indexing a file found.
type scanResult struct {
	index *deadIndex
	// complete is where the last complete line ends; size is the file's
	// size, larger when it ends in a torn (incomplete) line.
	complete, size int64
}

// indexFile reads the file at path through r from its start. A
// complete line that does not decode is a *CorruptError naming
// the line; an incomplete last line is a write that never finished (a
// crash, a full disk, or an append in progress) and is left out.
func indexFile(r io.Reader, path string) (scanResult, error) {
	res := scanResult{index: newDeadIndex()}
	s := newLineScanner(r)
	for {
		line, ref, complete, err := s.next()
		if errors.Is(err, io.EOF) {
			return res, nil
		}
		if err != nil {
			return res, fmt.Errorf("read dead-letter file %s: %w", path, err)
		}
		res.size = ref.off + ref.n
		if !complete {
			return res, nil
		}
		res.complete = res.size
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		id, resolved, err := decodeHead(line)
		if err != nil {
			return res, &CorruptError{Where: path, Line: s.line, Err: err}
		}
		res.index.record(id, resolved, ref)
	}
}
