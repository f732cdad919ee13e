package migrate

import (
	"encoding/json"
	"fmt"

	"github.com/rekey-dev/rekey/internal/epk"
	"github.com/rekey-dev/rekey/transform"
)

// Key is a partition key value: one component per path of the container's
// partition key definition. Source keys may hold undefined components (an
// item without the key field); target keys never do.
type Key []transform.Value

// AppendJSON appends the key as a JSON array, each component as its JSON
// value and an undefined one as {}: ["eu",42], [{}]. It is the one
// rendering of a key: logs, errors, dead letters and verify's records use
// it, and ParseKey reads it back.
func (k Key) AppendJSON(dst []byte) []byte { return transform.AppendJSONArray(dst, k) }

// String is the key as AppendJSON writes it.
func (k Key) String() string { return string(k.AppendJSON(nil)) }

// Equal reports whether two keys have the same components, compared as the
// service compares them (transform.Value.Equal).
func (k Key) Equal(other Key) bool {
	if len(k) != len(other) {
		return false
	}
	for i := range k {
		if !k[i].Equal(other[i]) {
			return false
		}
	}
	return true
}

// HasUndefined reports whether a component of the key is undefined: a
// source item without the key field, which a point operation cannot name.
func (k Key) HasUndefined() bool {
	for _, v := range k {
		if v.Type == transform.TypeUndefined {
			return true
		}
	}
	return false
}

// EPK hashes the key to its effective partition key under def: where the
// service stores an item with this key.
func (k Key) EPK(def epk.Definition) (string, error) {
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

// ParseKey reads a key as AppendJSON writes it. Numbers keep their text.
func ParseKey(raw json.RawMessage) (Key, error) {
	var parts []json.RawMessage
	if err := json.Unmarshal(raw, &parts); err != nil {
		return nil, fmt.Errorf("key %s: %w", raw, err)
	}
	key := make(Key, 0, len(parts))
	for _, p := range parts {
		var v any
		if err := json.Unmarshal(p, &v); err != nil {
			return nil, fmt.Errorf("key %s: %w", raw, err)
		}
		switch x := v.(type) {
		case string:
			key = append(key, transform.StringValue(x))
		case float64:
			key = append(key, transform.Value{Type: transform.TypeNumber, Num: x, Raw: string(p)})
		case bool:
			key = append(key, transform.Value{Type: transform.TypeBool, Bool: x})
		case nil:
			key = append(key, transform.Value{Type: transform.TypeNull})
		case map[string]any:
			key = append(key, transform.Value{Type: transform.TypeUndefined})
		default:
			return nil, fmt.Errorf("key %s: component %s is not a scalar", raw, p)
		}
	}
	return key, nil
}
