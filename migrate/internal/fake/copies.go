package fake

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/rekey-dev/rekey/migrate"
)

// FindCopies returns the items with the id whose fields at sourcePaths
// hold sourceKey, as a cross-partition query would; it costs 3 RU.
func (m *Target) FindCopies(_ context.Context, id string, sourcePaths []string, sourceKey migrate.Key) ([]migrate.Item, float64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.inject("find", sourceKey, id); err != nil {
		return nil, 0, err
	}
	var out []migrate.Item
	for _, it := range m.items {
		if it.ID != id {
			continue
		}
		if key, err := keyAt(it.Body, sourcePaths); err == nil && key.Equal(sourceKey) {
			out = append(out, it)
		}
	}
	return out, 3, nil
}

// keyAt reads the values at paths (/a/b) of a body as a key; an absent
// field is undefined.
func keyAt(body []byte, paths []string) (migrate.Key, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, err
	}
	arr := []byte{'['}
	for i, p := range paths {
		v, ok := json.RawMessage("{}"), true
		cur := doc
		segs := strings.Split(strings.TrimPrefix(p, "/"), "/")
		for j, seg := range segs {
			raw, found := cur[seg]
			if !found {
				ok = false
				break
			}
			if j == len(segs)-1 {
				v = raw
				break
			}
			if err := json.Unmarshal(raw, &cur); err != nil {
				return nil, fmt.Errorf("path %s: %w", p, err)
			}
		}
		if !ok {
			v = json.RawMessage("{}")
		}
		if i > 0 {
			arr = append(arr, ',')
		}
		arr = append(arr, v...)
	}
	return migrate.ParseKey(append(arr, ']'))
}
