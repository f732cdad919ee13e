package migratetest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/rekey-dev/rekey/internal/epk"
	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/transform"
)

// systemProperties are set by the service on every item; values a client
// sends for them are replaced ("_lsn" appears in change-feed pages only).
var systemProperties = map[string]bool{
	"_rid": true, "_self": true, "_etag": true, "_attachments": true, "_ts": true, "_lsn": true,
}

// member is one top-level property of a JSON object, its value kept raw.
type member struct {
	name string
	raw  json.RawMessage
}

// errNotObject: a body that is not one JSON object with a string id.
var errNotObject = errors.New("the item must be a JSON object with a string \"id\"")

// parseObject splits a JSON object into its top-level members, in order,
// and returns its id.
func parseObject(body []byte) ([]member, string, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, "", errNotObject
	}
	var out []member
	id, hasID := "", false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, "", fmt.Errorf("%w: %v", errNotObject, err)
		}
		name, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, "", fmt.Errorf("%w: %v", errNotObject, err)
		}
		if name == "id" {
			if err := json.Unmarshal(raw, &id); err != nil {
				return nil, "", errNotObject
			}
			hasID = true
		}
		out = append(out, member{name: name, raw: raw})
	}
	if _, err := dec.Token(); err != nil {
		return nil, "", errNotObject
	}
	if _, err := dec.Token(); err == nil {
		return nil, "", fmt.Errorf("%w: more than one JSON value", errNotObject)
	}
	if !hasID || id == "" {
		return nil, "", errNotObject
	}
	return out, id, nil
}

// stored is the document the service stores for members: the client's
// properties in their order, system properties dropped, then "_rid",
// "_self", "_etag", "_attachments" and "_ts", as the service writes them.
func stored(members []member, rid, self, etag string, ts int64) []byte {
	b := []byte{'{'}
	for _, m := range members {
		if systemProperties[m.name] {
			continue
		}
		b = appendMember(b, m.name, m.raw)
	}
	b = appendMember(b, "_rid", quote(rid))
	b = appendMember(b, "_self", quote(self))
	b = appendMember(b, "_etag", quote(etag))
	b = appendMember(b, "_attachments", quote("attachments/"))
	b = appendMember(b, "_ts", []byte(strconv.FormatInt(ts, 10)))
	return append(b, '}')
}

// withLSN returns doc with "_lsn" appended, as change-feed pages carry it.
func withLSN(doc []byte, lsn uint64) []byte {
	out := make([]byte, 0, len(doc)+24)
	out = append(out, doc[:len(doc)-1]...)
	out = append(out, `,"_lsn":`...)
	out = strconv.AppendUint(out, lsn, 10)
	return append(out, '}')
}

func appendMember(b []byte, name string, raw []byte) []byte {
	if len(b) > 1 {
		b = append(b, ',')
	}
	b = append(b, quote(name)...)
	b = append(b, ':')
	return append(b, raw...)
}

func quote(s string) []byte {
	b, _ := json.Marshal(s) // a string always encodes
	return b
}

// keyOf reads the partition key at paths from an item's members: one value
// per path, TypeUndefined where the item has no such field. A key field
// holding an object or an array is refused, as the service refuses it.
func keyOf(members []member, paths []string) (migrate.Key, error) {
	key := make(migrate.Key, 0, len(paths))
	for _, p := range paths {
		segs := strings.Split(strings.TrimPrefix(p, "/"), "/")
		v, err := lookup(members, segs)
		if err != nil {
			return nil, fmt.Errorf("partition key path %s: %w", p, err)
		}
		key = append(key, v)
	}
	return key, nil
}

// lookup resolves a path of property names to a key value.
func lookup(members []member, segs []string) (transform.Value, error) {
	var raw json.RawMessage
	for _, m := range members {
		if m.name == segs[0] {
			raw = m.raw
		}
	}
	for _, seg := range segs[1:] {
		if raw == nil {
			break
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal(raw, &obj) != nil {
			return transform.Value{Type: transform.TypeUndefined}, nil // not an object: no such field
		}
		raw = obj[seg]
	}
	if raw == nil {
		return transform.Value{Type: transform.TypeUndefined}, nil
	}
	return scalar(raw)
}

// scalar decodes a JSON scalar into a key value.
func scalar(raw json.RawMessage) (transform.Value, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return transform.Value{}, err
	}
	switch x := v.(type) {
	case string:
		return transform.StringValue(x), nil
	case json.Number:
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil {
			return transform.Value{}, fmt.Errorf("number %s: %w", x, err)
		}
		return transform.Value{Type: transform.TypeNumber, Num: f, Raw: string(x)}, nil
	case bool:
		return transform.Value{Type: transform.TypeBool, Bool: x}, nil
	case nil:
		return transform.Value{Type: transform.TypeNull}, nil
	}
	return transform.Value{}, errors.New("an object or an array cannot be a partition key value")
}

// keyAddr is a canonical string of a key: equal for keys the service
// treats as equal (numbers by their float64).
func keyAddr(k migrate.Key) string {
	var b []byte
	for _, v := range k {
		switch v.Type {
		case transform.TypeString:
			b = append(b, 's')
			b = strconv.AppendInt(b, int64(len(v.Str)), 10)
			b = append(b, ':')
			b = append(b, v.Str...)
		case transform.TypeNumber:
			b = append(b, 'n')
			b = strconv.AppendUint(b, math.Float64bits(v.Num), 16)
		case transform.TypeBool:
			b = append(b, 'b')
			b = strconv.AppendBool(b, v.Bool)
		case transform.TypeNull:
			b = append(b, 'z')
		default:
			b = append(b, 'u')
		}
		b = append(b, ';')
	}
	return string(b)
}

// sameKey reports whether two keys address the same logical partition.
func sameKey(a, b migrate.Key) bool {
	return len(a) == len(b) && keyAddr(a) == keyAddr(b)
}

// epkOf hashes a key as the service does for the container's definition.
func epkOf(def epk.Definition, k migrate.Key) (string, error) {
	values := make([]any, len(k))
	for i, v := range k {
		if v.Type == transform.TypeUndefined {
			values[i] = epk.Undefined{}
		} else {
			values[i] = v.Any()
		}
	}
	return epk.Hash(def, values)
}

// keyText renders a key for messages.
func keyText(k migrate.Key) string {
	parts := make([]string, len(k))
	for i, v := range k {
		parts[i] = v.String()
	}
	return "[" + strings.Join(parts, ",") + "]"
}
