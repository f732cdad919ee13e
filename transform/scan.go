package transform

import (
	"math"
	"strconv"
	"strings"
)

// span is a byte range [start, end).
type span struct{ start, end int }

// valueSpans locates a Value's text in the arena.
type valueSpans struct{ text span }

// state is the scratch space of one ApplyTo call, pooled by the Transformer.
type state struct {
	stack []byte // nesting scratch for skipValue
	name  []byte // decoded escaped member names

	// Top-level members named in Transformer.top.
	found    []bool
	dup      []bool
	vals     []span // value spans in the item
	objStart int    // offset of the item's opening '{'
	objEnd   int    // offset of the item's closing '}'
	runs     []span // consecutive kept top-level members, copied as they are
	inserts  []insertion

	arena    []byte // decoded strings of the result
	id       span
	idOK     bool
	keyVals  []Value
	keySpans []valueSpans
	srcVals  []Value
	srcSpans []valueSpans
	tmp      [2][]byte  // template function scratch
	defaults DefaultSet // placeholders that took their default
}

func (st *state) reset(tops, keys, sources int) {
	st.found = resize(st.found, tops)
	st.dup = resize(st.dup, tops)
	st.vals = resize(st.vals, tops)
	clear(st.found)
	clear(st.dup)
	st.runs = st.runs[:0]
	st.inserts = st.inserts[:0]
	st.arena = st.arena[:0]
	st.idOK = false
	st.defaults = 0
	st.keyVals = resize(st.keyVals, keys)
	st.keySpans = resize(st.keySpans, keys)
	st.srcVals = resize(st.srcVals, sources)
	st.srcSpans = resize(st.srcSpans, sources)
}

func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// nameIs reports whether the member name with raw bytes (between the quotes)
// equals name, decoding escapes only when the raw bytes have them.
func (st *state) nameIs(raw []byte, escaped bool, name string) bool {
	if !escaped {
		return string(raw) == name
	}
	st.name = appendUnquoted(st.name[:0], raw)
	return string(st.name) == name
}

// scanTop validates the whole item, records the members named in t.top, and
// splits the kept members into runs around the system properties.
func (t *Transformer) scanTop(st *state, d []byte) error {
	i := skipSpace(d, 0)
	if i >= len(d) || d[i] != '{' {
		if i >= len(d) {
			return &Error{Kind: ErrInvalidJSON, Reason: "the item is empty"}
		}
		end, err := skipValue(d, i, &st.stack, 0)
		if err != nil {
			return &Error{Kind: ErrInvalidJSON, Reason: err.Error()}
		}
		if end = skipSpace(d, end); end != len(d) {
			return &Error{Kind: ErrInvalidJSON, Reason: (&syntaxError{end, "data after the value"}).Error()}
		}
		return &Error{Kind: ErrNotObject, Reason: "the item is " + describe(d[i]) + ", not an object"}
	}
	st.objStart = i
	bad := func(err error) error {
		e := &Error{Kind: ErrInvalidJSON, Reason: err.Error()}
		if st.found[0] && !st.dup[0] && d[st.vals[0].start] == '"' {
			e.ID = string(appendUnquoted(nil, d[st.vals[0].start+1:st.vals[0].end-1]))
		}
		return e
	}
	i = skipSpace(d, i+1)
	run := span{-1, -1}
	if i < len(d) && d[i] == '}' {
		st.objEnd = i
		i++
	} else {
		for {
			if i >= len(d) || d[i] != '"' {
				return bad(&syntaxError{i, "expected a string for an object key"})
			}
			nameStart := i
			nameEnd, escaped, err := scanString(d, i)
			if err != nil {
				return bad(err)
			}
			i = skipSpace(d, nameEnd)
			if i >= len(d) || d[i] != ':' {
				return bad(&syntaxError{i, "expected ':' after an object key"})
			}
			valStart := skipSpace(d, i+1)
			valEnd, err := skipValue(d, valStart, &st.stack, 1)
			if err != nil {
				return bad(err)
			}
			raw := d[nameStart+1 : nameEnd-1]
			if escaped {
				st.name = appendUnquoted(st.name[:0], raw)
				raw = st.name
			}
			for k, n := range t.top {
				if string(raw) == n {
					st.dup[k] = st.found[k]
					st.found[k] = true
					st.vals[k] = span{valStart, valEnd}
					break
				}
			}
			if len(raw) > 0 && raw[0] == '_' && IsSystemProperty(string(raw)) {
				if run.start >= 0 {
					st.runs = append(st.runs, run)
					run = span{-1, -1}
				}
			} else {
				if run.start < 0 {
					run.start = nameStart
				}
				run.end = valEnd
			}
			i = skipSpace(d, valEnd)
			if i < len(d) && d[i] == ',' {
				i = skipSpace(d, i+1)
				continue
			}
			if i < len(d) && d[i] == '}' {
				st.objEnd = i
				i++
				break
			}
			return bad(&syntaxError{i, "expected ',' or '}'"})
		}
	}
	if run.start >= 0 {
		st.runs = append(st.runs, run)
	}
	if i = skipSpace(d, i); i != len(d) {
		return bad(&syntaxError{i, "data after the item's closing '}'"})
	}
	return nil
}

// caseHint returns a hint naming a member of obj that differs from name
// only in case, because users confuse Id and id; "" when there is none.
func (st *state) caseHint(d []byte, obj span, name string) string {
	i := skipSpace(d, obj.start+1)
	for d[i] != '}' {
		nameEnd, _, _ := scanString(d, i)
		st.name = appendUnquoted(st.name[:0], d[i+1:nameEnd-1])
		if strings.EqualFold(string(st.name), name) {
			return " (it has " + strconv.Quote(string(st.name)) + "; names are case-sensitive)"
		}
		valStart := skipSpace(d, skipSpace(d, nameEnd)+1)
		valEnd, _ := skipValue(d, valStart, &st.stack, 0) // validated already
		i = skipSpace(d, valEnd)
		if d[i] == ',' {
			i = skipSpace(d, i+1)
		}
	}
	return ""
}

// member is the result of looking a name up in an object.
type member struct {
	val      span // the value, when found
	found    bool
	dup      bool
	closeAt  int  // offset of the object's closing '}'
	nonEmpty bool // the object has at least one member
}

// lookup finds name among the members of the (already validated) object
// d[obj.start:obj.end].
func (st *state) lookup(d []byte, obj span, name string) member {
	m := member{}
	i := skipSpace(d, obj.start+1)
	for d[i] != '}' {
		m.nonEmpty = true
		nameEnd, escaped, _ := scanString(d, i)
		valStart := skipSpace(d, skipSpace(d, nameEnd)+1)
		valEnd, _ := skipValue(d, valStart, &st.stack, 0) // validated already
		if st.nameIs(d[i+1:nameEnd-1], escaped, name) {
			if m.found {
				m.dup = true
			}
			m.found, m.val = true, span{valStart, valEnd}
		}
		i = skipSpace(d, valEnd)
		if d[i] == ',' {
			i = skipSpace(d, i+1)
		}
	}
	m.closeAt = i
	return m
}

// absence says where a path stops existing. It is rendered into a reason
// only when it becomes an error, so a default or an undefined source key
// costs nothing.
type absence struct {
	depth     int  // index in the path of the name that is missing, or of the non-object
	parent    span // the object searched, or the value that is not an object
	notObject bool
}

// resolve finds the value at p. When the path does not exist, found is false
// and the absence says where it stops.
func (st *state) resolve(d []byte, p pathPlan) (v span, found bool, a absence, err error) {
	if !st.found[p.top] {
		return span{}, false, absence{depth: 0, parent: span{st.objStart, st.objEnd + 1}}, nil
	}
	if st.dup[p.top] {
		return span{}, false, a, st.fail(ErrDuplicateField, p.field, "the item has more than one %s", prefixName(p, 0))
	}
	v = st.vals[p.top]
	for i, name := range p.rest {
		if d[v.start] != '{' {
			return span{}, false, absence{depth: i, parent: v, notObject: true}, nil
		}
		m := st.lookup(d, v, name)
		if m.dup {
			return span{}, false, a, st.fail(ErrDuplicateField, p.field, "%s has more than one %q", prefixName(p, i), name)
		}
		if !m.found {
			return span{}, false, absence{depth: i + 1, parent: v}, nil
		}
		v = m.val
	}
	return v, true, a, nil
}

// why renders an absence for people.
func (st *state) why(d []byte, p pathPlan, a absence) string {
	name := p.segs[a.depth]
	switch {
	case a.notObject:
		return prefixName(p, a.depth) + " is " + describe(d[a.parent.start]) + ", not an object"
	case a.depth == 0:
		return "the item has no such field" + st.caseHint(d, a.parent, name)
	}
	return prefixName(p, a.depth-1) + " has no field " + strconv.Quote(name) + st.caseHint(d, a.parent, name)
}

// prefixName names the first n+1 names of p in the style of p.field.
func prefixName(p pathPlan, n int) string {
	segs := p.segs[:n+1]
	if strings.HasPrefix(p.field, "/") {
		return Path{segs: segs}.String()
	}
	return (&placeholder{field: segs}).fieldName()
}

// readScalar reads the key value at p. For a source key (undefinedOK), a
// missing field is TypeUndefined; for a target key it is an error.
func (st *state) readScalar(d []byte, p pathPlan, undefinedOK bool) (Value, valueSpans, error) {
	v, found, absent, err := st.resolve(d, p)
	if err != nil {
		return Value{}, valueSpans{}, err
	}
	if !found {
		if undefinedOK {
			return Value{Type: TypeUndefined}, valueSpans{}, nil
		}
		return Value{}, valueSpans{}, st.fail(ErrMissingField, p.field, "%s", st.why(d, p, absent))
	}
	raw := d[v.start:v.end]
	switch raw[0] {
	case '{', '[':
		return Value{}, valueSpans{}, st.fail(ErrWrongType, p.field,
			"the value is %s; a partition key must be a string, number, bool or null", describe(raw[0]))
	case 'n':
		return Value{Type: TypeNull}, valueSpans{}, nil
	case 't', 'f':
		return Value{Type: TypeBool, Bool: raw[0] == 't'}, valueSpans{}, nil
	case '"':
		start := len(st.arena)
		st.arena = appendUnquoted(st.arena, raw[1:len(raw)-1])
		if n := len(st.arena) - start; n > MaxKeyBytes && !undefinedOK {
			return Value{}, valueSpans{}, st.fail(ErrKeyTooLarge, p.field,
				"the value is %d bytes, over the partition key limit of %d", n, MaxKeyBytes)
		}
		return Value{Type: TypeString}, valueSpans{text: span{start, len(st.arena)}}, nil
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || math.IsInf(f, 0) {
		return Value{}, valueSpans{}, st.fail(ErrInvalidValue, p.field, "the number %s is out of the float64 range", raw)
	}
	start := len(st.arena)
	st.arena = append(st.arena, raw...)
	return Value{Type: TypeNumber, Num: f}, valueSpans{text: span{start, len(st.arena)}}, nil
}
