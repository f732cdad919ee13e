package transform

import (
	"strconv"
	"strings"
)

// Limits of the service that a transformed item must respect
// (docs/cosmos-service.md#limits).
const (
	// MaxKeys is the number of paths of a hierarchical (MultiHash) key.
	MaxKeys = 3
	// MaxKeyBytes is the longest partition key value, in UTF-8 bytes of a
	// string value, of a container with large (version 2) partition keys.
	MaxKeyBytes = 2048
	// MaxIDBytes is the longest id, in UTF-8 bytes.
	MaxIDBytes = 1023
)

// IsSystemProperty reports whether name is a top-level property the service
// sets on every item: _rid, _self, _etag, _attachments, _ts, _lsn (see
// docs/cosmos-service.md). They are stripped from the target item and left
// out of content comparisons; any other name, including user fields that
// start with "_", is kept. This is rekey's one list of them.
func IsSystemProperty(name string) bool {
	switch name {
	case "_rid", "_self", "_etag", "_attachments", "_ts", "_lsn":
		return true
	}
	return false
}

// Spec is a parsed list of --key specs: one to MaxKeys keys, in the order of
// the target container's key definition. A Spec is immutable.
type Spec struct {
	keys []Key
}

// Keys returns the keys of the spec in order.
func (s *Spec) Keys() []Key { return append([]Key(nil), s.keys...) }

// Strings returns the canonical text of each key. Two specs that mean the same
// have the same Strings, so a migration state can record and compare them.
func (s *Spec) Strings() []string {
	out := make([]string, len(s.keys))
	for i, k := range s.keys {
		out[i] = k.String()
	}
	return out
}

// Key is one level of the target partition key: a natural key (a field the
// item already has) or a synthetic one (a template written into the item).
type Key struct {
	Path     Path      // the target container's partition key path
	Template *Template // nil for a natural key
}

// Synthetic reports whether the key is computed from a template.
func (k Key) Synthetic() bool { return k.Template != nil }

// String returns the canonical spec text: PATH or PATH=TEMPLATE.
func (k Key) String() string {
	if k.Template == nil {
		return k.Path.String()
	}
	return k.Path.String() + "=" + k.Template.String()
}

// Path is a partition key path such as /customerId or /address/"zip code":
// a list of property names from the item's root. Names are case-sensitive.
type Path struct {
	segs []string
}

// Segments returns the property names of the path, root first.
func (p Path) Segments() []string { return append([]string(nil), p.segs...) }

// String returns the path as Cosmos DB writes it in a partition key
// definition; names that need it are quoted.
func (p Path) String() string {
	var b strings.Builder
	for _, s := range p.segs {
		b.WriteByte('/')
		if isBarePathName(s) {
			b.WriteString(s)
		} else {
			writeQuotedName(&b, s)
		}
	}
	return b.String()
}

// hasPrefix reports whether q's segments start with all of p's.
func (p Path) hasPrefix(q Path) bool {
	if len(q.segs) > len(p.segs) {
		return false
	}
	for i, s := range q.segs {
		if p.segs[i] != s {
			return false
		}
	}
	return true
}

// Template is the right-hand side of PATH=TEMPLATE: literal text and
// {field|function?default} placeholders. Its value is always a string.
type Template struct {
	parts []part
}

// part is a literal or a placeholder.
type part struct {
	lit string       // used when ph is nil
	ph  *placeholder // a {field...} placeholder
}

// placeholder is {field|fn|fn?default}.
type placeholder struct {
	field  []string // dotted path, root first
	funcs  []function
	def    string
	hasDef bool
}

// fieldName is the placeholder's field as the user wrote it (canonically).
func (ph *placeholder) fieldName() string {
	var b strings.Builder
	for i, s := range ph.field {
		if i > 0 {
			b.WriteByte('.')
		}
		if isBareFieldName(s) {
			b.WriteString(s)
		} else {
			writeQuotedName(&b, s)
		}
	}
	return b.String()
}

// String returns the canonical template text.
func (t *Template) String() string {
	var b strings.Builder
	for _, p := range t.parts {
		if p.ph == nil {
			b.WriteString(strings.NewReplacer("{", "{{", "}", "}}").Replace(p.lit))
			continue
		}
		b.WriteByte('{')
		b.WriteString(p.ph.fieldName())
		for _, f := range p.ph.funcs {
			b.WriteByte('|')
			b.WriteString(f.String())
		}
		if p.ph.hasDef {
			b.WriteByte('?')
			b.WriteString(p.ph.def)
		}
		b.WriteByte('}')
	}
	return b.String()
}

// Fields returns the dotted names of the fields the template reads, in order.
func (t *Template) Fields() []string {
	var out []string
	for _, p := range t.parts {
		if p.ph != nil {
			out = append(out, p.ph.fieldName())
		}
	}
	return out
}

// isBarePathName reports whether a path segment can be written unquoted.
func isBarePathName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !barePathByte(s[i]) {
			return false
		}
	}
	return true
}

// barePathByte reports whether c may appear in an unquoted path segment.
// '=' ends the path of a spec; '*', '?', '[' and ']' are Cosmos DB path
// wildcards; quotes start a quoted name.
func barePathByte(c byte) bool {
	switch c {
	case '/', '=', '"', '\'', '\\', '*', '?', '[', ']', '{', '}':
		return false
	}
	return c > ' ' && c != 0x7f
}

// isBareFieldName reports whether a dotted-path name can be written unquoted.
func isBareFieldName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !bareFieldByte(s[i]) {
			return false
		}
	}
	return true
}

// bareFieldByte reports whether c may appear in an unquoted placeholder name.
func bareFieldByte(c byte) bool {
	switch c {
	case '.', '|', '?', '{', '}', '"', '\'', '\\', '/':
		return false
	}
	return c > ' ' && c != 0x7f
}

// writeQuotedName writes s in double quotes, escaping '"' and '\'.
func writeQuotedName(b *strings.Builder, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
}

// String returns the function as written in a template.
func (f function) String() string {
	if f.op == opHash {
		return "hash:" + strconv.FormatUint(f.n, 10)
	}
	return f.op.String()
}
