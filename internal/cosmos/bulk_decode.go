package cosmos

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// The answer to a bulk request echoes every item written (resourceBody),
// so it is about as large as the request; decoding it with encoding/json
// scanned every item twice and was most of a bulk copy's CPU. parseBulkResults
// walks the answer once: the results' small fields are decoded, each
// resourceBody is kept as the bytes of its value without being looked into
// (whoever reads an item parses it, as rekey's transform does).

// errBulkAnswer is wrapped by the errors of an answer that is not a JSON
// array of result objects.
var errBulkAnswer = errors.New("not a JSON array of operation results")

// parseBulkResults decodes a bulk answer, a JSON array of result objects
// (bulkResultDoc), checking its structure: the array, the objects, their
// keys and the nesting and strings of every value. Field names match
// exactly; unknown fields are skipped.
func parseBulkResults(data []byte) ([]bulkResultDoc, error) {
	w := jsonWalker{data: data}
	if err := w.expect('['); err != nil {
		return nil, err
	}
	var out []bulkResultDoc
	if !w.peek(']') {
		for {
			d, err := w.result()
			if err != nil {
				return nil, err
			}
			out = append(out, d)
			if !w.peek(',') {
				break
			}
			w.i++
		}
	}
	if err := w.expect(']'); err != nil {
		return nil, err
	}
	if w.space(); w.i != len(data) {
		return nil, w.fail("data after the array")
	}
	return out, nil
}

// jsonWalker walks JSON text from offset i.
type jsonWalker struct {
	data []byte
	i    int
}

func (w *jsonWalker) fail(msg string) error {
	return fmt.Errorf("%w: offset %d: %s", errBulkAnswer, w.i, msg)
}

func (w *jsonWalker) space() {
	for w.i < len(w.data) {
		switch w.data[w.i] {
		case ' ', '\t', '\n', '\r':
			w.i++
		default:
			return
		}
	}
}

// peek reports whether the next byte after spaces is c.
func (w *jsonWalker) peek(c byte) bool {
	w.space()
	return w.i < len(w.data) && w.data[w.i] == c
}

// expect consumes c, after spaces.
func (w *jsonWalker) expect(c byte) error {
	if !w.peek(c) {
		return w.fail("want " + strconv.QuoteRune(rune(c)))
	}
	w.i++
	return nil
}

// result decodes one result object.
func (w *jsonWalker) result() (bulkResultDoc, error) {
	var d bulkResultDoc
	if err := w.expect('{'); err != nil {
		return d, err
	}
	if w.peek('}') {
		w.i++
		return d, nil
	}
	for {
		w.space()
		name, err := w.str()
		if err != nil {
			return d, err
		}
		if err := w.expect(':'); err != nil {
			return d, err
		}
		w.space()
		start := w.i
		if err := w.skip(); err != nil {
			return d, err
		}
		if err := d.set(name[1:len(name)-1], w.data[start:w.i]); err != nil {
			return d, fmt.Errorf("%w: field %s: %w", errBulkAnswer, name, err)
		}
		w.space()
		if w.i < len(w.data) && w.data[w.i] == ',' {
			w.i++
			continue
		}
		return d, w.expect('}')
	}
}

// set decodes a result's field from the raw bytes of its value.
func (d *bulkResultDoc) set(name, raw []byte) error {
	var err error
	switch string(name) {
	case "statusCode":
		var f float64
		f, err = jsonNumber(raw)
		d.StatusCode = int(f)
	case "subStatusCode":
		var f float64
		f, err = jsonNumber(raw)
		d.SubStatusCode = int(f)
	case "requestCharge":
		d.RequestCharge, err = jsonNumber(raw)
	case "retryAfterMilliseconds":
		d.RetryAfterMilliseconds, err = jsonNumber(raw)
	case "eTag":
		d.ETag, err = jsonString(raw)
	case "message":
		d.Message, err = jsonString(raw)
	case "resourceBody":
		d.ResourceBody = raw
	}
	return err
}

// jsonNumber decodes a JSON number; null is 0.
func jsonNumber(raw []byte) (float64, error) {
	if string(raw) == "null" {
		return 0, nil
	}
	if raw[0] != '-' && (raw[0] < '0' || raw[0] > '9') {
		return 0, fmt.Errorf("%s is not a number", raw)
	}
	return strconv.ParseFloat(string(raw), 64)
}

// jsonString decodes a JSON string; null is "". An ETag is a quoted
// string in a JSON string ("\"0000-1\""): escaped quotes and backslashes
// are undone here, other escapes by encoding/json.
func jsonString(raw []byte) (string, error) {
	if raw[0] != '"' || len(raw) < 2 {
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err
	}
	inner := raw[1 : len(raw)-1]
	if !utf8.Valid(inner) {
		var s string
		err := json.Unmarshal(raw, &s) // replaces what is not UTF-8, as the SDKs read it
		return s, err
	}
	if bytes.IndexByte(inner, '\\') < 0 {
		return string(inner), nil
	}
	out := make([]byte, 0, len(inner))
	for i := 0; i < len(inner); i++ {
		c := inner[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		if i+1 < len(inner) && (inner[i+1] == '"' || inner[i+1] == '\\') {
			out = append(out, inner[i+1])
			i++
			continue
		}
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err
	}
	return string(out), nil
}

// str consumes a string and returns it as written, quotes included.
func (w *jsonWalker) str() ([]byte, error) {
	if w.i >= len(w.data) || w.data[w.i] != '"' {
		return nil, w.fail("want a string")
	}
	start := w.i
	w.i++
	for {
		j := bytes.IndexByte(w.data[w.i:], '"')
		if j < 0 {
			w.i = len(w.data)
			return nil, w.fail("unterminated string")
		}
		w.i += j + 1
		// The quote ends the string unless an odd run of backslashes
		// escapes it.
		n := 0
		for k := w.i - 2; k > start && w.data[k] == '\\'; k-- {
			n++
		}
		if n%2 == 0 {
			return w.data[start:w.i], nil
		}
	}
}

// skip consumes one value: a string, an object or array with everything in
// it (strings and nesting checked), or a number or literal.
func (w *jsonWalker) skip() error {
	if w.i >= len(w.data) {
		return w.fail("want a value")
	}
	switch w.data[w.i] {
	case '"':
		_, err := w.str()
		return err
	case '{', '[':
		var open []byte // the closers the nesting waits for
		for w.i < len(w.data) {
			switch c := w.data[w.i]; c {
			case '"':
				if _, err := w.str(); err != nil {
					return err
				}
				continue
			case '{':
				open = append(open, '}')
			case '[':
				open = append(open, ']')
			case '}', ']':
				if len(open) == 0 || open[len(open)-1] != c {
					return w.fail("unbalanced " + string(c))
				}
				open = open[:len(open)-1]
				if len(open) == 0 {
					w.i++
					return nil
				}
			}
			w.i++
		}
		return w.fail("unterminated object or array")
	}
	start := w.i
	for w.i < len(w.data) {
		switch w.data[w.i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			if w.i == start {
				return w.fail("want a value")
			}
			return nil
		case '{', '[', '"', ':':
			return w.fail("want a value")
		}
		w.i++
	}
	if w.i == start {
		return w.fail("want a value")
	}
	return nil
}
