package transform

import (
	"fmt"
	"sync"
)

// Transformer turns source items into target items. It is built once from a
// Spec, is immutable, and is safe for concurrent use by any number of
// goroutines.
type Transformer struct {
	spec   *Spec
	top    []string   // distinct top-level names read or written; top[0] is "id"
	keys   []keyPlan  // one per key of the spec
	source []pathPlan // the source container's key paths
	pool   sync.Pool  // *state
}

// pathPlan is a path resolved against the transformer's top-level names.
type pathPlan struct {
	top   int      // index in Transformer.top of the first name
	segs  []string // all names, root first
	rest  []string // segs[1:]
	field string   // the path as the spec names it, for errors
}

// keyPlan is a compiled Key.
type keyPlan struct {
	path  pathPlan // natural: where the value is read; synthetic: where it is written
	parts []tpart  // synthetic only
}

// tpart is a compiled template part: a literal, or a placeholder, the
// plan of its field and its position in Spec.Placeholders.
type tpart struct {
	lit   string
	ph    *placeholder
	field pathPlan
	ord   int
}

// Result is a transformed item. Apply returns a new one each time; ApplyTo
// refills the one it is given, reusing its Item, Key and SourceKey storage,
// so a caller that keeps them across calls must copy them (the strings in
// them are never reused and are safe to keep).
type Result struct {
	// ID is the item's id, decoded.
	ID string
	// Key holds the target partition key values, one per TargetPaths entry.
	// They are never TypeUndefined; synthetic keys are always TypeString.
	Key []Value
	// SourceKey holds the source partition key values, one per source path
	// given to New, TypeUndefined for a field the item lacks. (An object or
	// an array there cannot be a key of any container: ErrWrongType.)
	SourceKey []Value
	// Item is the target item: the source item without system properties,
	// with the synthetic key properties added. Always one valid JSON object.
	Item []byte
	// DefaultsUsed holds the placeholders whose default went into Key
	// because their field was missing or null. A migration records them
	// before it writes the item, so a default that built a key already
	// written is never changed on resume.
	DefaultsUsed DefaultSet
}

// Size returns the size in bytes of the target item, which the writer holds
// against the service's 2 MB item limit.
func (r *Result) Size() int { return len(r.Item) }

// New compiles spec into a Transformer. sourceKeyPaths are the partition key
// paths of the SOURCE container (such as ["/region"]), whose values every
// Result carries so that verify and reconcile can map a target item back to
// its source item; it may be empty. A bad source path is a *SpecError.
func New(spec *Spec, sourceKeyPaths []string) (*Transformer, error) {
	if spec == nil || len(spec.keys) == 0 {
		return nil, &SpecError{Expected: "expected at least one --key"}
	}
	if len(sourceKeyPaths) > MaxKeys {
		return nil, &SpecError{Index: MaxKeys, Spec: sourceKeyPaths[MaxKeys], What: "source key path",
			Expected: "a partition key has at most 3 paths"}
	}
	t := &Transformer{spec: spec, top: []string{"id"}}
	ord := 0
	for _, k := range spec.keys {
		kp := keyPlan{path: t.plan(k.Path.segs, k.Path.String())}
		if k.Template != nil {
			for _, p := range k.Template.parts {
				tp := tpart{lit: p.lit, ph: p.ph}
				if p.ph != nil {
					tp.field = t.plan(p.ph.field, p.ph.fieldName())
					tp.ord = ord
					ord++
				}
				kp.parts = append(kp.parts, tp)
			}
		}
		t.keys = append(t.keys, kp)
	}
	for i, text := range sourceKeyPaths {
		p, err := ParsePath(text)
		if err != nil {
			se := err.(*SpecError)
			se.Index, se.What = i, "source key path"
			return nil, se
		}
		t.source = append(t.source, t.plan(p.segs, p.String()))
	}
	t.pool.New = func() any { return &state{} }
	return t, nil
}

// plan resolves segs against t.top, adding the first name if it is new.
func (t *Transformer) plan(segs []string, field string) pathPlan {
	p := pathPlan{top: -1, segs: segs, rest: segs[1:], field: field}
	for i, n := range t.top {
		if n == segs[0] {
			p.top = i
		}
	}
	if p.top < 0 {
		p.top = len(t.top)
		t.top = append(t.top, segs[0])
	}
	return p
}

// Spec returns the spec the transformer was built from.
func (t *Transformer) Spec() *Spec { return t.spec }

// TargetPaths returns the target container's partition key paths, in order.
// One path is a Hash key; two or three are a MultiHash (hierarchical) key.
// Either way the key definition is version 2 (large partition keys).
func (t *Transformer) TargetPaths() []string {
	out := make([]string, len(t.spec.keys))
	for i, k := range t.spec.keys {
		out[i] = k.Path.String()
	}
	return out
}

// KeyKind returns "Hash" for one target path and "MultiHash" for two or three,
// the kind of the target container's partition key definition.
func (t *Transformer) KeyKind() string {
	if len(t.spec.keys) > 1 {
		return "MultiHash"
	}
	return "Hash"
}

// SourcePaths returns the source key paths given to New, canonically written.
func (t *Transformer) SourcePaths() []string {
	out := make([]string, len(t.source))
	for i, p := range t.source {
		out[i] = p.field
	}
	return out
}

// Apply transforms one source item. On failure it returns an *Error whose
// Kind says why; the same item always gives the same result or error.
func (t *Transformer) Apply(item []byte) (Result, error) {
	var r Result
	err := t.ApplyTo(&r, item)
	return r, err
}

// ApplyTo is Apply into r, reusing r's storage (see Result). After an error
// r is left as it was. In steady state it makes one allocation per item, for
// the strings of the result.
func (t *Transformer) ApplyTo(r *Result, item []byte) error {
	st := t.pool.Get().(*state)
	defer t.pool.Put(st)
	st.reset(len(t.top), len(t.keys), len(t.source))
	if err := t.scanTop(st, item); err != nil {
		return err
	}
	if err := t.readID(st, item); err != nil {
		return err
	}
	for i := range t.keys {
		if err := t.evalKey(st, item, i); err != nil {
			return err
		}
	}
	for i, p := range t.source {
		v, sp, err := st.readScalar(item, p, true)
		if err != nil {
			return err
		}
		st.srcVals[i], st.srcSpans[i] = v, sp
	}
	r.Item = st.write(item, r.Item[:0])

	// Every string of the result is a substring of one allocation.
	arena := string(st.arena)
	sub := func(s span) string { return arena[s.start:s.end] }
	r.ID = sub(st.id)
	r.Key = fill(r.Key[:0], st.keyVals, st.keySpans, sub)
	r.SourceKey = fill(r.SourceKey[:0], st.srcVals, st.srcSpans, sub)
	r.DefaultsUsed = st.defaults
	return nil
}

func fill(dst []Value, vals []Value, spans []valueSpans, sub func(span) string) []Value {
	for i, v := range vals {
		switch v.Type {
		case TypeString:
			v.Str = sub(spans[i].text)
		case TypeNumber:
			v.Raw = sub(spans[i].text)
		}
		dst = append(dst, v)
	}
	return dst
}

// fail builds the *Error of the current item.
func (st *state) fail(kind error, field, format string, args ...any) *Error {
	e := &Error{Kind: kind, Field: field, Reason: fmt.Sprintf(format, args...)}
	if st.idOK {
		e.ID = string(st.arena[st.id.start:st.id.end])
	}
	return e
}

// readID checks and decodes the id into the arena.
func (t *Transformer) readID(st *state, d []byte) error {
	if !st.found[0] {
		return st.fail(ErrInvalidID, "id", "the item has no id%s", st.caseHint(d, span{st.objStart, st.objEnd + 1}, "id"))
	}
	if st.dup[0] {
		return st.fail(ErrDuplicateField, "id", "the item has more than one id")
	}
	v := st.vals[0]
	if d[v.start] != '"' {
		return st.fail(ErrInvalidID, "id", "the id is %s, want a string", describe(d[v.start]))
	}
	start := len(st.arena)
	st.arena = appendUnquoted(st.arena, d[v.start+1:v.end-1])
	st.id = span{start, len(st.arena)}
	switch n := st.id.end - st.id.start; {
	case n == 0:
		return st.fail(ErrInvalidID, "id", "the id is empty")
	case n > MaxIDBytes:
		return st.fail(ErrInvalidID, "id", "the id is %d bytes, over the limit of %d", n, MaxIDBytes)
	}
	st.idOK = true
	return nil
}

// describe names the JSON type of a value from its first byte.
func describe(c byte) string {
	switch c {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a bool"
	case 'n':
		return "null"
	}
	return "a number"
}

// SourceKeyOf reads only an item's id and source key values, as Apply
// reports them, without evaluating the target key. The writer uses it on an
// item already in the target to tell which source item it was copied from.
func (t *Transformer) SourceKeyOf(item []byte) (string, []Value, error) {
	st := t.pool.Get().(*state)
	defer t.pool.Put(st)
	st.reset(len(t.top), len(t.keys), len(t.source))
	if err := t.scanTop(st, item); err != nil {
		return "", nil, err
	}
	if err := t.readID(st, item); err != nil {
		return "", nil, err
	}
	for i, p := range t.source {
		v, sp, err := st.readScalar(item, p, true)
		if err != nil {
			return "", nil, err
		}
		st.srcVals[i], st.srcSpans[i] = v, sp
	}
	arena := string(st.arena)
	sub := func(s span) string { return arena[s.start:s.end] }
	return sub(st.id), fill(nil, st.srcVals, st.srcSpans, sub), nil
}
