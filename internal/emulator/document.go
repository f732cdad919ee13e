package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
)

// maxDocumentBytes is the service's item size limit (2 MB, docs/cosmos-service.md#limits).
const maxDocumentBytes = 2 * 1024 * 1024

// maxIDBytes is the longest id the service accepts.
const maxIDBytes = 1023

// systemProperties are set by the service on every item; values a client sends
// for them are replaced.
var systemProperties = map[string]bool{
	"_rid": true, "_self": true, "_etag": true, "_attachments": true, "_ts": true, "_lsn": true,
}

// member is one top-level property of a JSON object, its value kept raw.
type member struct {
	key    string
	rawKey []byte // the key as written, quotes included
	raw    []byte
}

// undefined marks a partition key component whose field is absent from the item.
type undefined struct{}

// parseObject splits a JSON object into its top-level members, in order. It
// returns an error unless data is exactly one valid JSON object.
func parseObject(data []byte) ([]member, error) {
	if !json.Valid(data) {
		return nil, fmt.Errorf("the request body is not valid JSON")
	}
	s := scanner{data: data}
	s.skipSpace()
	if s.pos >= len(data) || data[s.pos] != '{' {
		return nil, fmt.Errorf("the request body must be a JSON object")
	}
	s.pos++
	var out []member
	for {
		s.skipSpace()
		if data[s.pos] == '}' {
			return out, nil
		}
		if data[s.pos] == ',' {
			s.pos++
			s.skipSpace()
		}
		keyStart := s.pos
		s.skipString()
		keyEnd := s.pos
		key, err := decodeKey(data[keyStart:keyEnd])
		if err != nil {
			return nil, err
		}
		s.skipSpace()
		s.pos++ // ':'
		s.skipSpace()
		valStart := s.pos
		s.skipValue()
		out = append(out, member{key: key, rawKey: data[keyStart:keyEnd], raw: data[valStart:s.pos]})
	}
}

func decodeKey(raw []byte) (string, error) {
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1]), nil
	}
	var k string
	if err := json.Unmarshal(raw, &k); err != nil {
		return "", fmt.Errorf("invalid property name %s", raw)
	}
	return k, nil
}

// scanner walks JSON that json.Valid has already accepted, so it needs no
// error handling of its own.
type scanner struct {
	data []byte
	pos  int
}

func (s *scanner) skipSpace() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

func (s *scanner) skipString() {
	s.pos++ // opening quote
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case '\\':
			s.pos += 2
		case '"':
			s.pos++
			return
		default:
			s.pos++
		}
	}
}

func (s *scanner) skipValue() {
	switch s.data[s.pos] {
	case '"':
		s.skipString()
	case '{', '[':
		depth := 0
		for s.pos < len(s.data) {
			switch s.data[s.pos] {
			case '"':
				s.skipString()
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					s.pos++
					return
				}
			}
			s.pos++
		}
	default: // number, true, false, null
		for s.pos < len(s.data) {
			switch s.data[s.pos] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return
			}
			s.pos++
		}
	}
}

// lookup returns the raw value at path inside a JSON object, or nil when a
// step is absent or not an object.
func lookup(members []member, path []string) ([]byte, error) {
	for i, step := range path {
		var raw []byte
		for _, m := range members {
			if m.key == step {
				raw = m.raw
			}
		}
		if raw == nil {
			return nil, nil
		}
		if i == len(path)-1 {
			return raw, nil
		}
		if raw[0] != '{' {
			return nil, nil
		}
		var err error
		if members, err = parseObject(raw); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// scalarValue decodes a raw JSON value into a partition key component:
// string, float64, bool or nil. Objects and arrays are not valid keys.
func scalarValue(raw []byte) (any, error) {
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		return s, nil
	case 't':
		return true, nil
	case 'f':
		return false, nil
	case 'n':
		return nil, nil
	case '{', '[':
		return nil, fmt.Errorf("a partition key value must be a string, number, boolean or null")
	default:
		f, err := strconv.ParseFloat(string(raw), 64)
		if err != nil || math.IsInf(f, 0) {
			return nil, fmt.Errorf("invalid number %s", raw)
		}
		return f, nil
	}
}

// documentID returns the item's id, validated as the service validates it.
func documentID(members []member) (string, *svcError) {
	for _, m := range members {
		if m.key != "id" {
			continue
		}
		if m.raw[0] != '"' {
			return "", badRequest("The input content is invalid because the required property 'id' is not a string.")
		}
		var id string
		if err := json.Unmarshal(m.raw, &id); err != nil {
			return "", badRequest("The input content is invalid: %v", err)
		}
		if id == "" || len(id) > maxIDBytes || !utf8.ValidString(id) {
			return "", badRequest("The input name '%s' is invalid. Ensure to provide a unique non-empty string less than '1024' characters.", truncate(id, 64))
		}
		return id, nil
	}
	return "", badRequest("The input content is invalid because the required properties - 'id; ' - are missing")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// systemProps are the service-set properties appended to a stored item.
type systemProps struct {
	rid  string
	self string
	etag string
	ts   int64
}

// buildDocument writes the stored form of an item: the client's members in
// their order minus any system properties, then the service's system
// properties, as the service returns them.
func buildDocument(members []member, sp systemProps) []byte {
	size := 128 + len(sp.self)
	for _, m := range members {
		size += len(m.rawKey) + len(m.raw) + 2
	}
	b := make([]byte, 0, size)
	b = append(b, '{')
	for _, m := range members {
		if systemProperties[m.key] {
			continue
		}
		b = append(b, m.rawKey...)
		b = append(b, ':')
		b = append(b, m.raw...)
		b = append(b, ',')
	}
	b = append(b, `"_rid":`...)
	b = strconv.AppendQuote(b, sp.rid)
	b = append(b, `,"_self":`...)
	b = strconv.AppendQuote(b, sp.self)
	b = append(b, `,"_etag":`...)
	b = strconv.AppendQuote(b, sp.etag)
	b = append(b, `,"_attachments":"attachments/","_ts":`...)
	b = strconv.AppendInt(b, sp.ts, 10)
	b = append(b, '}')
	return b
}

// withLSN returns doc with "_lsn" appended, as documents appear in the change feed.
func withLSN(dst, doc []byte, lsn uint64) []byte {
	dst = append(dst, doc[:len(doc)-1]...)
	dst = append(dst, `,"_lsn":`...)
	dst = strconv.AppendUint(dst, lsn, 10)
	return append(dst, '}')
}

// jsonQuote returns s as a JSON string.
func jsonQuote(s string) []byte {
	b, _ := json.Marshal(s)
	return b
}
