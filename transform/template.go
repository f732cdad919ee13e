package transform

import (
	"bytes"
	"errors"
	"strconv"
)

// evalKey computes key i of the spec into st.keyVals[i] and, for a synthetic
// key, plans where it is written into the target item.
func (t *Transformer) evalKey(st *state, d []byte, i int) error {
	k := &t.keys[i]
	if k.parts == nil {
		v, sp, err := st.readScalar(d, k.path, false)
		st.keyVals[i], st.keySpans[i] = v, sp
		return err
	}
	start := len(st.arena)
	for j := range k.parts {
		p := &k.parts[j]
		if p.ph == nil {
			st.arena = append(st.arena, p.lit...)
			continue
		}
		if err := st.evalPlaceholder(d, p, k.path.field); err != nil {
			return err
		}
	}
	key := span{start, len(st.arena)}
	if n := key.end - key.start; n > MaxKeyBytes {
		return st.fail(ErrKeyTooLarge, k.path.field, "the synthetic key is %d bytes, over the partition key limit of %d", n, MaxKeyBytes)
	}
	st.keyVals[i], st.keySpans[i] = Value{Type: TypeString}, valueSpans{text: key}
	return st.place(d, k.path, key)
}

// evalPlaceholder appends the text of one {field|fn?default} to the arena.
func (st *state) evalPlaceholder(d []byte, p *tpart, keyPath string) error {
	v, found, absent, err := st.resolve(d, p.field)
	if err != nil {
		return err
	}
	ph := p.ph
	if !found || d[v.start] == 'n' {
		if ph.hasDef {
			st.arena = append(st.arena, ph.def...)
			st.defaults |= defaultBit(p.ord)
			return nil
		}
		if !found {
			return st.fail(ErrMissingField, p.field.field, "%s (in key %s; give a default with {%s?value})", st.why(d, p.field, absent), keyPath, p.field.field)
		}
		return st.fail(ErrWrongType, p.field.field, "the value is null; a template needs a string, number or bool (in key %s; give a default with {%s?value})", keyPath, p.field.field)
	}
	raw := d[v.start:v.end]
	typ := TypeNumber
	text := raw
	switch raw[0] {
	case '{', '[':
		return st.fail(ErrWrongType, p.field.field, "the value is %s; a template needs a string, number or bool (in key %s)", describe(raw[0]), keyPath)
	case 't', 'f':
		typ = TypeBool
	case '"':
		typ = TypeString
		st.tmp[0] = appendUnquoted(st.tmp[0][:0], raw[1:len(raw)-1])
		text = st.tmp[0]
	}
	for _, f := range ph.funcs {
		out, err := f.apply(st.tmp[1][:0], typ, text)
		if err != nil {
			var ve *valueError
			if errors.As(err, &ve) {
				return st.fail(ErrInvalidValue, p.field.field, "%s: %s (in key %s)", f, ve.reason, keyPath)
			}
			return err
		}
		st.tmp[0], st.tmp[1] = out, st.tmp[0]
		text, typ = out, TypeString
	}
	st.arena = append(st.arena, text...)
	return nil
}

// place checks the synthetic key's target path in the source item: the
// property may already hold the same string (a re-transform), must not hold
// anything else, and every object on the way must be an object. A missing
// property is planned as an insertion.
func (st *state) place(d []byte, p pathPlan, key span) error {
	if !st.found[p.top] {
		st.inserts = append(st.inserts, insertion{at: -1, segs: p.segs, key: key})
		return nil
	}
	if st.dup[p.top] {
		return st.fail(ErrDuplicateField, p.field, "the item has more than one %s", prefixName(p, 0))
	}
	v := st.vals[p.top]
	for depth := 0; ; depth++ {
		if depth == len(p.rest) {
			raw := d[v.start:v.end]
			if raw[0] == '"' {
				st.tmp[0] = appendUnquoted(st.tmp[0][:0], raw[1:len(raw)-1])
				if bytes.Equal(st.tmp[0], st.arena[key.start:key.end]) {
					return nil
				}
			}
			return st.fail(ErrKeyConflict, p.field, "the item already has %s = %s, which differs from the key %s",
				p.field, shorten(raw), strconv.Quote(string(st.arena[key.start:key.end])))
		}
		if d[v.start] != '{' {
			return st.fail(ErrKeyConflict, p.field, "%s is %s, not an object, so the key cannot be written inside it",
				prefixName(p, depth), describe(d[v.start]))
		}
		m := st.lookup(d, v, p.rest[depth])
		if m.dup {
			return st.fail(ErrDuplicateField, p.field, "%s has more than one %q", prefixName(p, depth), p.rest[depth])
		}
		if !m.found {
			st.inserts = append(st.inserts, insertion{at: m.closeAt, nonEmpty: m.nonEmpty, segs: p.rest[depth:], key: key})
			return nil
		}
		v = m.val
	}
}

// shorten returns JSON text cut to a length that fits in a reason.
func shorten(raw []byte) string {
	if len(raw) > 64 {
		return string(raw[:61]) + "..."
	}
	return string(raw)
}
