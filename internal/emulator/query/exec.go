package query

import (
	"iter"
	"slices"
)

// rows calls fn with the environment of each input row of doc (the FROM
// binding times the JOINs' array elements) until fn returns false; it
// reports whether iteration ran to the end. env has q.nslots entries and is
// overwritten.
func (b *Bound) rows(ev *evaluator, doc Value, env []Value, fn func([]Value) bool) bool {
	q := b.q
	v := doc
	for _, st := range q.fromPath {
		if st.isIdx {
			v = v.Index(st.index)
		} else {
			v = v.Get(st.name)
		}
	}
	if !q.fromIter {
		if v.kind == KindUndefined {
			return true
		}
		env[0] = v
		return b.joinRows(ev, 0, env, fn)
	}
	if v.kind != KindArray {
		return true
	}
	for _, e := range v.Elems() {
		env[0] = e
		if !b.joinRows(ev, 0, env, fn) {
			return false
		}
	}
	return true
}

func (b *Bound) joinRows(ev *evaluator, j int, env []Value, fn func([]Value) bool) bool {
	if j == len(b.q.joins) {
		return fn(env)
	}
	jn := b.q.joins[j]
	src := ev.eval(jn.src, env)
	if src.kind != KindArray {
		return true
	}
	for _, e := range src.Elems() {
		env[jn.slot] = e
		if !b.joinRows(ev, j+1, env, fn) {
			return false
		}
	}
	return true
}

// project applies the select clause to one row; Undefined means no result.
func (b *Bound) project(ev *evaluator, env []Value) Value {
	q := b.q
	switch {
	case q.star:
		return env[0]
	case q.value != nil:
		return ev.eval(q.value, env)
	}
	l := &list{keys: make([]string, 0, len(q.items)), items: make([]Value, 0, len(q.items))}
	for _, it := range q.items {
		if v := ev.eval(it.x, env); v.kind != KindUndefined {
			l.keys = append(l.keys, it.name)
			l.items = append(l.items, v)
		}
	}
	return Value{kind: KindObject, list: l}
}

func (b *Bound) keep(ev *evaluator, env []Value) bool {
	return b.q.where == nil || ev.eval(b.q.where, env).isTrue()
}

// Match applies the query's FROM binding, WHERE clause and projection to
// one document, for the streaming path: ok is false when the document
// produces no result. It is valid for queries whose Shape is Streamable and
// has no JOIN (ErrNotStreamable, ErrJoin otherwise). TOP and OFFSET LIMIT
// are left to the caller, which counts results across pages (see Top and
// OffsetLimit). Match is safe for concurrent use; over a stored document
// it allocates only the strings the filter reads and the projection.
func (b *Bound) Match(doc Value) (result Value, ok bool, err error) {
	q := b.q
	if !q.shape.Streamable() {
		return Value{}, false, ErrNotStreamable
	}
	if q.shape.HasJoin {
		return Value{}, false, ErrJoin
	}
	ev := evaluator{params: b.params}
	v := doc
	for _, st := range q.fromPath {
		if st.isIdx {
			v = v.Index(st.index)
		} else {
			v = v.Get(st.name)
		}
	}
	if v.kind == KindUndefined {
		return Value{}, false, nil
	}
	env := [1]Value{v}
	if !b.keep(&ev, env[:]) {
		return Value{}, false, nil
	}
	out := b.project(&ev, env[:])
	return out, out.kind != KindUndefined, nil
}

// MatchAppend is Match for any streamable query, JOINs included: it
// appends the document's results, in order, to dst.
func (b *Bound) MatchAppend(dst []Value, doc Value) ([]Value, error) {
	if !b.q.shape.Streamable() {
		return dst, ErrNotStreamable
	}
	ev := evaluator{params: b.params}
	env := make([]Value, b.q.nslots)
	b.rows(&ev, doc, env, func(env []Value) bool {
		if b.keep(&ev, env) {
			if v := b.project(&ev, env); v.kind != KindUndefined {
				dst = append(dst, v)
			}
		}
		return true
	})
	return dst, nil
}

// sorted is a result with its ORDER BY keys and input position.
type sorted struct {
	v    Value
	keys []Value
	seq  int
}

// Run executes the whole query over docs, in the order the documents are
// stored (that order breaks ORDER BY ties, reversed when the first sort
// key is DESC, as the service breaks them by document id): WHERE, ORDER BY
// (any number of keys; undefined sorts first), GROUP BY, aggregates,
// DISTINCT, TOP, then OFFSET LIMIT. docs is read once. A query without
// FROM ignores docs and yields its one result.
func (b *Bound) Run(docs iter.Seq[Value]) ([]Value, error) {
	q := b.q
	ev := &evaluator{params: b.params}
	if q.noFrom {
		return b.finish(b.runGroups(ev, nil)), nil
	}
	if len(q.aggs) > 0 || len(q.groupBy) > 0 {
		return b.finish(b.runGroups(ev, docs)), nil
	}
	env := make([]Value, q.nslots)
	var rows []sorted
	for doc := range docs {
		b.rows(ev, doc, env, func(env []Value) bool {
			if !b.keep(ev, env) {
				return true
			}
			v := b.project(ev, env)
			if v.kind == KindUndefined {
				return true
			}
			r := sorted{v: v, seq: len(rows)}
			if len(q.orderBy) > 0 {
				r.keys = make([]Value, len(q.orderBy))
				for i, o := range q.orderBy {
					r.keys[i] = ev.eval(o.x, env)
				}
			}
			rows = append(rows, r)
			return true
		})
	}
	if len(q.orderBy) > 0 {
		firstDesc := q.orderBy[0].desc
		slices.SortFunc(rows, func(x, y sorted) int {
			for i, o := range q.orderBy {
				if c := Compare(x.keys[i], y.keys[i]); c != 0 {
					if o.desc {
						return -c
					}
					return c
				}
			}
			if firstDesc {
				return y.seq - x.seq
			}
			return x.seq - y.seq
		})
	}
	out := make([]Value, len(rows))
	for i, r := range rows {
		out[i] = r.v
	}
	return b.finish(out), nil
}

// finish applies DISTINCT, TOP and OFFSET LIMIT to projected results.
func (b *Bound) finish(out []Value) []Value {
	if b.q.distinct {
		seen := map[string]bool{}
		kept := out[:0]
		for _, v := range out {
			k := canonicalKey(v)
			if !seen[k] {
				seen[k] = true
				kept = append(kept, v)
			}
		}
		out = kept
	}
	if b.top >= 0 && int64(len(out)) > b.top {
		out = out[:b.top]
	}
	if b.offset > 0 {
		out = out[min(b.offset, int64(len(out))):]
	}
	if b.limit >= 0 && int64(len(out)) > b.limit {
		out = out[:b.limit]
	}
	return out
}
