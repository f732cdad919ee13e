package query

import (
	"iter"
	"slices"
	"strings"
)

// aggState accumulates one aggregate over a group. The semantics are the
// service's, checked against the .NET SDK's emulator baselines
// (AggregateQueryTests.AggregateMixedTypes_baseline.xml):
//
//   - undefined arguments are skipped by every aggregate;
//   - COUNT counts the remaining values, arrays and objects included, and
//     is 0 over nothing;
//   - SUM and AVG are undefined as soon as one value is not a number; SUM
//     over nothing is 0, AVG over nothing is undefined;
//   - MIN and MAX order mixed primitives by type (null < booleans < numbers
//     < strings), are undefined if an array or object is among the values,
//     and are undefined over nothing.
type aggState struct {
	name    string
	count   int64
	sum     float64
	invalid bool
	best    Value
}

func newAggStates(aggs []*aggExpr) []aggState {
	states := make([]aggState, len(aggs))
	for i, a := range aggs {
		states[i].name = a.name
	}
	return states
}

func (s *aggState) add(v Value) {
	if v.kind == KindUndefined {
		return
	}
	switch s.name {
	case "COUNT":
	case "SUM", "AVG":
		if v.kind != KindNumber {
			s.invalid = true
		} else {
			s.sum += v.num
		}
	case "MIN", "MAX":
		if v.kind == KindArray || v.kind == KindObject {
			s.invalid = true
		} else if s.count == 0 {
			s.best = v
		} else if c := Compare(v, s.best); (s.name == "MIN" && c < 0) || (s.name == "MAX" && c > 0) {
			s.best = v
		}
	}
	s.count++
}

func (s *aggState) result() Value {
	switch s.name {
	case "COUNT":
		return NumberValue(float64(s.count))
	case "SUM":
		if s.invalid {
			return Value{}
		}
		return NumberValue(s.sum)
	case "AVG":
		if s.invalid || s.count == 0 {
			return Value{}
		}
		return NumberValue(s.sum / float64(s.count))
	default: // MIN, MAX
		if s.invalid || s.count == 0 {
			return Value{}
		}
		return s.best
	}
}

// group is one GROUP BY group (or the single group of an aggregate query
// without GROUP BY).
type group struct {
	keys   []Value
	env    []Value // the group's first row, to evaluate grouping expressions
	states []aggState
}

// runGroups evaluates aggregate and GROUP BY queries (and FROM-less ones,
// with docs nil): it folds the rows into groups, then projects one result
// per group with the aggregates' results in place. Groups come out sorted
// by their keys (undefined first), as the service returns them.
func (b *Bound) runGroups(ev *evaluator, docs iter.Seq[Value]) []Value {
	q := b.q
	groups := map[string]*group{}
	var order []*group
	var key strings.Builder
	add := func(env []Value) bool {
		if !b.keep(ev, env) {
			return true
		}
		keys := make([]Value, len(q.groupBy))
		key.Reset()
		for i, g := range q.groupBy {
			keys[i] = ev.eval(g, env)
			writeCanonical(&key, keys[i])
			key.WriteByte(0)
		}
		g := groups[key.String()]
		if g == nil {
			g = &group{keys: keys, env: slices.Clone(env), states: newAggStates(q.aggs)}
			groups[key.String()] = g
			order = append(order, g)
		}
		for i, a := range q.aggs {
			g.states[i].add(ev.eval(a.arg, env))
		}
		return true
	}
	env := make([]Value, q.nslots)
	if q.noFrom {
		add(env)
	} else {
		for doc := range docs {
			b.rows(ev, doc, env, add)
		}
	}
	if len(q.groupBy) == 0 && len(q.aggs) > 0 && len(order) == 0 {
		// An aggregate over no rows still yields its one result (COUNT 0).
		order = append(order, &group{env: make([]Value, q.nslots), states: newAggStates(q.aggs)})
	}
	if len(q.groupBy) > 0 {
		slices.SortStableFunc(order, func(x, y *group) int {
			for i := range x.keys {
				if c := Compare(x.keys[i], y.keys[i]); c != 0 {
					return c
				}
			}
			return 0
		})
	}
	out := make([]Value, 0, len(order))
	for _, g := range order {
		results := make([]Value, len(g.states))
		for i := range g.states {
			results[i] = g.states[i].result()
		}
		ev.aggs = results
		if v := b.project(ev, g.env); v.kind != KindUndefined {
			out = append(out, v)
		}
	}
	ev.aggs = nil
	return out
}
