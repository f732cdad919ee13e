package query

import (
	"encoding/json"
	"math"
)

// Param is one query parameter as the request body carries it:
//
//	{"query": "...", "parameters": [{"name": "@id", "value": "x"}]}
type Param struct {
	Name  string          `json:"name"`
	Value json.RawMessage `json:"value"`
}

// Bound is a query bound to parameter values: what the emulator executes.
// It is safe for concurrent use.
type Bound struct {
	q      *Query
	params []Value // by paramExpr.slot
	top    int64   // -1 when absent
	offset int64   // 0 when absent
	limit  int64   // -1 when absent
}

// Bind resolves the query's parameters against params (matched by exact
// name; unused ones are ignored). A parameter the query references that is
// missing or whose value is not JSON is a *SyntaxError naming it, located at
// its first reference; so is a TOP, OFFSET or LIMIT parameter that is not a
// non-negative integer.
func (q *Query) Bind(params []Param) (*Bound, error) {
	b := &Bound{q: q, params: make([]Value, len(q.params)), top: -1, limit: -1}
	for _, pe := range q.params {
		found := false
		for _, p := range params {
			if p.Name != pe.name {
				continue
			}
			v, err := Decode(p.Value)
			if err != nil {
				return nil, errAt(q.text, pe.start, pe.end, "", "The value of parameter '%s' is not valid JSON.", pe.name)
			}
			b.params[pe.slot] = v
			found = true
			break
		}
		if !found {
			return nil, errAt(q.text, pe.start, pe.end, CodeUnresolved, "Identifier '%s' could not be resolved.", pe.name)
		}
	}
	var err error
	if b.top, err = b.count(q.top, -1); err != nil {
		return nil, err
	}
	if b.offset, err = b.count(q.offset, 0); err != nil {
		return nil, err
	}
	if b.limit, err = b.count(q.limit, -1); err != nil {
		return nil, err
	}
	return b, nil
}

func (b *Bound) count(c *countSpec, absent int64) (int64, error) {
	if c == nil {
		return absent, nil
	}
	if c.param == nil {
		return c.n, nil
	}
	v := b.params[c.param.slot]
	if v.kind != KindNumber || v.num != math.Trunc(v.num) || v.num < 0 || v.num > math.MaxInt32 {
		return 0, errAt(b.q.text, c.start, c.end, "", "The count value provided for a TOP, OFFSET or LIMIT clause must be a non-negative 32-bit integer.")
	}
	return int64(v.num), nil
}

// Query returns the parsed query.
func (b *Bound) Query() *Query { return b.q }

// Top returns the TOP count, or -1 when the query has no TOP.
func (b *Bound) Top() int64 { return b.top }

// OffsetLimit returns the OFFSET and LIMIT counts, or 0 and -1 when the
// query has no OFFSET LIMIT clause.
func (b *Bound) OffsetLimit() (offset, limit int64) { return b.offset, b.limit }
