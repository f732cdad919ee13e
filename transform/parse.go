package transform

import (
	"strconv"
	"strings"
)

// ParseSpec parses the --key specs, in the order of the target container's
// key definition: one spec gives a single-path (Hash) key, two or three give
// a hierarchical (MultiHash) key. Every error is a *SpecError that names the
// spec and the column, and says what was expected.
//
// Grammar (see the package documentation for the meaning):
//
//	spec        = path [ "=" template ]
//	path        = 1*( "/" name )
//	name        = bare | '"' chars '"' | "'" chars "'"     (\" \' \\ escape inside quotes)
//	template    = *( text | "{{" | "}}" | placeholder )
//	placeholder = "{" field *( "|" function ) [ "?" default ] "}"
//	field       = name *( "." name )
//	function    = "yyyy" | "yyyyMM" | "yyyyMMdd" | "yyyyMMddHH" | "lower" | "upper" | "hash:" N
//	default     = any text without "{" or "}"
func ParseSpec(specs []string) (*Spec, error) {
	if len(specs) == 0 {
		return nil, &SpecError{Expected: "expected at least one --key"}
	}
	if len(specs) > MaxKeys {
		return nil, &SpecError{Index: MaxKeys, Spec: specs[MaxKeys],
			Expected: "a partition key has at most 3 paths (a hierarchical key); remove a --key"}
	}
	s := &Spec{}
	for i, text := range specs {
		k, err := parseKey(i, text)
		if err != nil {
			return nil, err
		}
		for j, prev := range s.keys {
			if k.Path.hasPrefix(prev.Path) || prev.Path.hasPrefix(k.Path) {
				why := "is the same path as key spec " + strconv.Itoa(j+1)
				if len(k.Path.segs) != len(prev.Path.segs) {
					why = "overlaps key spec " + strconv.Itoa(j+1) + " (" + prev.Path.String() + "): one path lies inside the other"
				}
				return nil, &SpecError{Index: i, Spec: text, Column: 1, Expected: "a path that is not already a key; " + k.Path.String() + " " + why}
			}
		}
		s.keys = append(s.keys, k)
	}
	return s, nil
}

// ParsePath parses a partition key path such as /region or /address/"zip code".
func ParsePath(text string) (Path, error) {
	p := &parser{s: text, what: "path"}
	path, err := p.path(false)
	if err == nil && p.i < len(text) {
		err = p.fail(p.i, "expected '/' or the end of the path")
	}
	if err != nil {
		return Path{}, err
	}
	return path, nil
}

// parser is a cursor over one spec.
type parser struct {
	s     string
	i     int
	index int
	what  string
}

func (p *parser) fail(off int, expected string) *SpecError {
	what := "key spec"
	if p.what == "path" {
		what = "path"
	}
	return &SpecError{Index: p.index, Spec: p.s, Column: column(p.s, off), Expected: expected, What: what}
}

func parseKey(index int, text string) (Key, error) {
	p := &parser{s: text, index: index}
	path, err := p.path(true)
	if err != nil {
		return Key{}, err
	}
	if first := path.segs[0]; IsSystemProperty(first) {
		return Key{}, p.fail(1, "a user field: "+first+" is a system property that the service sets and the target item does not keep")
	}
	k := Key{Path: path}
	if p.i == len(text) {
		return k, nil
	}
	if text[p.i] != '=' {
		return Key{}, p.fail(p.i, "expected '/', '=' or the end of the spec")
	}
	if len(path.segs) == 1 && path.segs[0] == "id" {
		return Key{}, p.fail(0, "a path other than /id for a synthetic key: the id is never rewritten (use --key /id for a natural key)")
	}
	p.i++
	t, err := p.template()
	if err != nil {
		return Key{}, err
	}
	k.Template = t
	return k, nil
}

// path parses 1*("/" name). When inSpec, '=' ends the path.
func (p *parser) path(inSpec bool) (Path, error) {
	var segs []string
	if p.i >= len(p.s) || p.s[p.i] != '/' {
		return Path{}, p.fail(p.i, "expected '/' to start a path such as /customerId")
	}
	for p.i < len(p.s) && p.s[p.i] == '/' {
		p.i++
		if p.i >= len(p.s) || (inSpec && p.s[p.i] == '=') || p.s[p.i] == '/' {
			return Path{}, p.fail(p.i, "expected a field name after '/'")
		}
		var name string
		var err error
		if c := p.s[p.i]; c == '"' || c == '\'' {
			name, err = p.quoted()
		} else {
			start := p.i
			for p.i < len(p.s) && barePathByte(p.s[p.i]) {
				p.i++
			}
			if p.i == start {
				return Path{}, p.fail(p.i, "expected a field name; quote names with spaces or any of / = * ? [ ] { } (such as /\"zip code\")")
			}
			name = p.s[start:p.i]
		}
		if err != nil {
			return Path{}, err
		}
		segs = append(segs, name)
	}
	return Path{segs: segs}, nil
}

// quoted parses a name in double or single quotes at p.i.
func (p *parser) quoted() (string, error) {
	open := p.i
	q := p.s[p.i]
	p.i++
	var b strings.Builder
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == q:
			p.i++
			if b.Len() == 0 {
				return "", p.fail(open, "expected a non-empty name between the quotes")
			}
			return b.String(), nil
		case c == '\\':
			if p.i+1 < len(p.s) && (p.s[p.i+1] == q || p.s[p.i+1] == '\\') {
				b.WriteByte(p.s[p.i+1])
				p.i += 2
				continue
			}
			return "", p.fail(p.i, `expected \`+string(q)+` or \\ after a backslash in a quoted name`)
		default:
			b.WriteByte(c)
			p.i++
		}
	}
	return "", p.fail(open, "expected a closing "+string(q)+" for the quote opened here")
}

// template parses the text after '='.
func (p *parser) template() (*Template, error) {
	if p.i >= len(p.s) {
		return nil, p.fail(p.i, "expected a template after '=', such as {tenantId}-{createdAt|yyyyMM}")
	}
	t := &Template{}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			t.parts = append(t.parts, part{lit: lit.String()})
			lit.Reset()
		}
	}
	placeholders := 0
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '{' && p.i+1 < len(p.s) && p.s[p.i+1] == '{':
			lit.WriteByte('{')
			p.i += 2
		case c == '}' && p.i+1 < len(p.s) && p.s[p.i+1] == '}':
			lit.WriteByte('}')
			p.i += 2
		case c == '}':
			return nil, p.fail(p.i, "expected '}}' for a literal '}' (a lone '}' closes nothing)")
		case c == '{':
			flush()
			ph, err := p.placeholder()
			if err != nil {
				return nil, err
			}
			t.parts = append(t.parts, part{ph: ph})
			placeholders++
		default:
			lit.WriteByte(c)
			p.i++
		}
	}
	flush()
	if placeholders == 0 {
		return nil, p.fail(len(p.s), "expected at least one {field} placeholder: a constant key puts every item in one logical partition")
	}
	return t, nil
}

// placeholder parses {field|fn...?default} with p.i at '{'.
func (p *parser) placeholder() (*placeholder, error) {
	open := p.i
	p.i++
	ph := &placeholder{}
	p.spaces()
	for {
		if p.i >= len(p.s) {
			return nil, p.fail(p.i, "expected a field name after '{'")
		}
		var name string
		if c := p.s[p.i]; c == '"' || c == '\'' {
			var err error
			if name, err = p.quoted(); err != nil {
				return nil, err
			}
		} else {
			start := p.i
			for p.i < len(p.s) && bareFieldByte(p.s[p.i]) {
				p.i++
			}
			if p.i == start {
				return nil, p.fail(p.i, "expected a field name (such as tenantId or address.city; quote names with spaces or . | ? { } /)")
			}
			name = p.s[start:p.i]
		}
		ph.field = append(ph.field, name)
		if p.i < len(p.s) && p.s[p.i] == '.' {
			p.i++
			continue
		}
		break
	}
	p.spaces()
	for p.i < len(p.s) && p.s[p.i] == '|' {
		p.i++
		p.spaces()
		f, err := p.function()
		if err != nil {
			return nil, err
		}
		ph.funcs = append(ph.funcs, f)
		p.spaces()
	}
	if p.i < len(p.s) && p.s[p.i] == '?' {
		p.i++
		start := p.i
		for p.i < len(p.s) && p.s[p.i] != '}' {
			if p.s[p.i] == '{' {
				return nil, p.fail(p.i, "expected '}' to end the default (a default cannot contain '{' or '}')")
			}
			p.i++
		}
		ph.def, ph.hasDef = p.s[start:p.i], true
	}
	if p.i >= len(p.s) {
		return nil, p.fail(open, "expected '}' to close the placeholder opened here")
	}
	if p.s[p.i] != '}' {
		return nil, p.fail(p.i, "expected '.', '|', '?' or '}' after the field name")
	}
	p.i++
	return ph, nil
}

// function parses a function name after '|'.
func (p *parser) function() (function, error) {
	start := p.i
	for p.i < len(p.s) {
		c := p.s[p.i]
		if c == '|' || c == '?' || c == '}' || c == ' ' || c == '\t' || c == '{' {
			break
		}
		p.i++
	}
	name := p.s[start:p.i]
	if op, ok := lookupFunction(name); ok {
		return function{op: op}, nil
	}
	if arg, ok := strings.CutPrefix(name, "hash:"); ok {
		n, err := strconv.ParseUint(arg, 10, 64)
		if err != nil || n == 0 || n > MaxHashBuckets || arg[0] == '+' {
			return function{}, p.fail(start+len("hash:"), "expected a bucket count from 1 to "+strconv.Itoa(MaxHashBuckets)+" after hash:")
		}
		return function{op: opHash, n: n}, nil
	}
	if name == "hash" {
		return function{}, p.fail(p.i, "expected ':N' after hash, the number of buckets (such as hash:16)")
	}
	return function{}, p.fail(start, "expected a function: yyyy, yyyyMM, yyyyMMdd, yyyyMMddHH, lower, upper or hash:N")
}

// spaces skips blanks, which are allowed around names and '|' in placeholders.
func (p *parser) spaces() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}
