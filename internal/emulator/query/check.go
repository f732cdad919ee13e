package query

import (
	"strconv"
)

// resolve binds identifiers to FROM/JOIN aliases; an unknown one is the
// service's SC2001 error.
func (p *parser) resolve() {
	for _, r := range p.idents {
		slot, ok := p.aliases[r.e.name]
		if !ok {
			p.fail(errAt(p.src, r.start, r.end, CodeUnresolved, "Identifier '%s' could not be resolved.", r.e.name))
		}
		r.e.slot = slot
	}
}

// check validates clause combinations, names the select items and fills in
// the shape.
func (p *parser) check() {
	q := p.q
	q.shape = Shape{
		HasOrderBy:     len(q.orderBy) > 0,
		HasAggregate:   len(q.aggs) > 0,
		HasGroupBy:     len(q.groupBy) > 0,
		HasDistinct:    q.distinct,
		HasTop:         q.top != nil,
		HasOffsetLimit: q.offset != nil,
		HasJoin:        len(q.joins) > 0 || q.fromIter,
		IsSelectValue:  q.value != nil,
		IsSelectStar:   q.star,
		NoFrom:         q.noFrom,
	}
	if q.star && q.noFrom {
		p.fail(errNoLoc("", "'SELECT *' is not valid if FROM clause is omitted."))
	}
	if q.star && len(q.joins) > 0 {
		p.fail(errNoLoc("", "'SELECT *' is only valid with a single input set."))
	}
	if q.star && len(q.groupBy) > 0 {
		p.fail(errNoLoc("", "'SELECT *' is not valid if GROUP BY is specified."))
	}
	for _, o := range q.orderBy {
		if !isPath(o.x) {
			p.fail(errNoLoc(CodeOrderByNoPath, "Unsupported ORDER BY clause. ORDER BY item expression could not be mapped to a document path."))
		}
	}
	if len(q.groupBy) > 0 && len(q.orderBy) > 0 {
		p.fail(errNoLoc("", "ORDER BY is not supported together with GROUP BY."))
	}
	p.nameItems()
	if len(q.groupBy) > 0 || len(q.aggs) > 0 {
		keys := map[string]bool{}
		for _, g := range q.groupBy {
			keys[exprString(g)] = true
		}
		for _, x := range p.selectExprs() {
			if !groupable(x, keys) {
				p.fail(errNoLoc("", "The expression '%s' in the SELECT clause is neither contained in an aggregate function nor in the GROUP BY clause.", exprString(x)))
			}
		}
	}
}

func (p *parser) selectExprs() []expr {
	if p.q.value != nil {
		return []expr{p.q.value}
	}
	out := make([]expr, len(p.q.items))
	for i, it := range p.q.items {
		out[i] = it.x
	}
	return out
}

// nameItems names unaliased select items: a property path takes its last
// property name (c.a.b and c["a"]["b"] give "b"), an alias reference its
// name, anything else $1, $2, ... in order.
func (p *parser) nameItems() {
	seen := map[string]bool{}
	n := 0
	for i := range p.q.items {
		it := &p.q.items[i]
		if it.name == "" {
			switch x := it.x.(type) {
			case *propExpr:
				it.name = x.name
			case *identExpr:
				it.name = x.name
			default:
				n++
				it.name = "$" + strconv.Itoa(n)
			}
		}
		if seen[it.name] {
			p.fail(errNoLoc("", "The object property name '%s' is specified more than once.", it.name))
		}
		seen[it.name] = true
	}
}

// groupable reports whether x can be evaluated once per group: it is a
// grouping expression, an aggregate, a literal or parameter, or built only
// from those.
func groupable(x expr, keys map[string]bool) bool {
	if keys[exprString(x)] {
		return true
	}
	switch e := x.(type) {
	case *litExpr, *paramExpr, *aggExpr:
		return true
	case *identExpr, *propExpr, *indexExpr:
		return false
	case *arrayExpr:
		return allGroupable(e.elems, keys)
	case *objExpr:
		return allGroupable(e.vals, keys)
	case *unaryExpr:
		return groupable(e.x, keys)
	case *binaryExpr:
		return groupable(e.l, keys) && groupable(e.r, keys)
	case *inExpr:
		return groupable(e.x, keys) && allGroupable(e.list, keys)
	case *betweenExpr:
		return groupable(e.x, keys) && groupable(e.lo, keys) && groupable(e.hi, keys)
	case *likeExpr:
		return groupable(e.x, keys) && groupable(e.pat, keys)
	case *condExpr:
		return groupable(e.c, keys) && groupable(e.a, keys) && groupable(e.b, keys)
	case *callExpr:
		return allGroupable(e.args, keys)
	}
	return false
}

func allGroupable(list []expr, keys map[string]bool) bool {
	for _, x := range list {
		if !groupable(x, keys) {
			return false
		}
	}
	return true
}
