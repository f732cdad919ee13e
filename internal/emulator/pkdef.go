package emulator

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
)

// pkDefinition is a container's partition key definition.
type pkDefinition struct {
	rawPaths []string   // as given: "/tenantId"
	paths    [][]string // parsed: ["tenantId"]
	kind     string     // "Hash" or "MultiHash"
	version  int        // 1 or 2; a definition without "version" is version 1
}

// parsePKDefinition validates a container's "partitionKey" property.
func parsePKDefinition(raw []byte) (pkDefinition, *svcError) {
	var d struct {
		Paths   []string `json:"paths"`
		Kind    string   `json:"kind"`
		Version int      `json:"version"`
	}
	if raw == nil {
		return pkDefinition{}, badRequest("The partition key definition is missing: a container needs a partitionKey with at least one path.")
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		return pkDefinition{}, badRequest("The partition key definition is invalid: %v", err)
	}
	if len(d.Paths) == 0 || len(d.Paths) > 3 {
		return pkDefinition{}, badRequest("The partition key definition must have between 1 and 3 paths, got %d.", len(d.Paths))
	}
	def := pkDefinition{rawPaths: d.Paths, kind: d.Kind, version: d.Version}
	if def.kind == "" {
		def.kind = "Hash"
	}
	if def.kind != "Hash" && def.kind != "MultiHash" {
		return pkDefinition{}, badRequest("The partition key kind %q is not supported; use Hash or MultiHash.", d.Kind)
	}
	if def.kind == "Hash" && len(d.Paths) > 1 {
		return pkDefinition{}, badRequest("A Hash partition key has exactly one path; use kind MultiHash for hierarchical keys.")
	}
	if def.version == 0 {
		def.version = 1
	}
	if def.version != 1 && def.version != 2 {
		return pkDefinition{}, badRequest("The partition key version %d is not supported; use 1 or 2.", d.Version)
	}
	if def.kind == "MultiHash" && def.version != 2 {
		return pkDefinition{}, badRequest("Hierarchical (MultiHash) partition keys require version 2.")
	}
	for _, p := range d.Paths {
		parsed, ok := parsePath(p)
		if !ok {
			return pkDefinition{}, badRequest("The partition key path %q is invalid: it must start with '/' and name a property.", p)
		}
		def.paths = append(def.paths, parsed)
	}
	return def, nil
}

// parsePath splits "/a/b" or `/"a b"/c` into its property names.
func parsePath(p string) ([]string, bool) {
	if !strings.HasPrefix(p, "/") || len(p) < 2 {
		return nil, false
	}
	var out []string
	rest := p[1:]
	for rest != "" {
		var name string
		if rest[0] == '"' {
			end := strings.IndexByte(rest[1:], '"')
			if end < 0 {
				return nil, false
			}
			name, rest = rest[1:end+1], rest[end+2:]
		} else {
			end := strings.IndexByte(rest, '/')
			if end < 0 {
				end = len(rest)
			}
			name, rest = rest[:end], rest[end:]
		}
		if name == "" || strings.ContainsAny(name, "*?") {
			return nil, false
		}
		out = append(out, name)
		if rest != "" {
			if rest[0] != '/' || len(rest) == 1 {
				return nil, false
			}
			rest = rest[1:]
		}
	}
	return out, true
}

// parsePKHeader decodes x-ms-documentdb-partitionkey: a JSON array whose
// components are strings, numbers, booleans, null or {} (undefined).
func parsePKHeader(h string) ([]any, *svcError) {
	var raw []json.RawMessage
	if err := json.Unmarshal([]byte(h), &raw); err != nil {
		return nil, badRequest("The partition key header %q is invalid: want a JSON array of values.", truncate(h, 100))
	}
	out := make([]any, 0, len(raw))
	for _, r := range raw {
		if string(r) == "{}" {
			out = append(out, undefined{})
			continue
		}
		v, err := scalarValue(r)
		if err != nil {
			return nil, badRequest("The partition key header %q is invalid: %v.", truncate(h, 100), err)
		}
		out = append(out, v)
	}
	return out, nil
}

// extractPK reads the item's partition key values; an absent field is undefined.
func (d pkDefinition) extractPK(members []member) ([]any, *svcError) {
	out := make([]any, 0, len(d.paths))
	for _, path := range d.paths {
		raw, err := lookup(members, path)
		if err != nil {
			return nil, badRequest("%v", err)
		}
		if raw == nil {
			out = append(out, undefined{})
			continue
		}
		v, err := scalarValue(raw)
		if err != nil {
			return nil, badRequest("The partition key value at %s is invalid: %v.", "/"+strings.Join(path, "/"), err)
		}
		out = append(out, v)
	}
	return out, nil
}

// pkKeyOf is a canonical string for a partition key value, equal for equal keys.
func pkKeyOf(values []any) string {
	var b []byte
	for _, v := range values {
		switch x := v.(type) {
		case string:
			b = append(b, 's')
			b = strconv.AppendInt(b, int64(len(x)), 10)
			b = append(b, ':')
			b = append(b, x...)
		case float64:
			b = append(b, 'n')
			b = strconv.AppendUint(b, math.Float64bits(x), 16)
		case bool:
			if x {
				b = append(b, 't')
			} else {
				b = append(b, 'f')
			}
		case nil:
			b = append(b, 'z')
		default: // undefined
			b = append(b, 'u')
		}
		b = append(b, ';')
	}
	return string(b)
}

// pkJSON renders a partition key as the service shows it in errors.
func pkJSON(values []any) string {
	parts := make([]string, len(values))
	for i, v := range values {
		if _, ok := v.(undefined); ok {
			parts[i] = "{}"
			continue
		}
		b, _ := json.Marshal(v)
		parts[i] = string(b)
	}
	return "[" + strings.Join(parts, ",") + "]"
}
