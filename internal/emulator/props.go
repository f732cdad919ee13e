package emulator

import (
	"encoding/json"
)

// props is a resource body (database, container, offer) kept as ordered raw
// members, so properties the emulator does not interpret (vector policies,
// unique keys, ...) are stored and returned unchanged.
type props []member

// parseProps parses a JSON object body into props.
func parseProps(body []byte) (props, error) {
	m, err := parseObject(body)
	return props(m), err
}

// get returns the raw value of key, or nil.
func (p props) get(key string) []byte {
	for _, m := range p {
		if m.key == key {
			return m.raw
		}
	}
	return nil
}

// getString returns the string value of key, or "" when absent or not a string.
func (p props) getString(key string) string {
	raw := p.get(key)
	if raw == nil || raw[0] != '"' {
		return ""
	}
	var s string
	_ = json.Unmarshal(raw, &s)
	return s
}

// set replaces key's value, appending the key when absent.
func (p *props) set(key string, raw []byte) {
	for i, m := range *p {
		if m.key == key {
			(*p)[i].raw = raw
			return
		}
	}
	*p = append(*p, member{key: key, rawKey: jsonQuote(key), raw: raw})
}

// setJSON sets key to the JSON encoding of v.
func (p *props) setJSON(key string, v any) {
	raw, err := json.Marshal(v)
	if err != nil {
		panic("emulator: marshal " + key + ": " + err.Error()) // only called with marshalable values
	}
	p.set(key, raw)
}

// remove deletes key.
func (p *props) remove(key string) {
	out := (*p)[:0]
	for _, m := range *p {
		if m.key != key {
			out = append(out, m)
		}
	}
	*p = out
}

// clone returns a copy whose order can be changed without touching p.
func (p props) clone() props {
	return append(props(nil), p...)
}

// marshal returns the JSON object.
func (p props) marshal() []byte {
	b := []byte{'{'}
	for i, m := range p {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, m.rawKey...)
		b = append(b, ':')
		b = append(b, m.raw...)
	}
	return append(b, '}')
}
