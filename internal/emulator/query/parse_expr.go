package query

import (
	"strings"
)

// Operator precedence, lowest first, follows the grammar the SDKs share with
// the service (sql.g4): ?: and ??, then OR, AND, the IN / LIKE / BETWEEN
// predicates, then the binary levels below, then the unary operators, NOT
// included (so NOT a = b is (NOT a) = b, as there).
var binLevels = [][]string{
	{"||"},
	{"|"},
	{"^"},
	{"&"},
	{"=", "!=", "<>"},
	{"<", ">", "<=", ">="},
	{"<<", ">>", ">>>"},
	{"+", "-"},
	{"*", "/", "%"},
}

func (p *parser) parseExpr() expr {
	c := p.parseCoalesce()
	if !p.isPunct("?") {
		return c
	}
	p.advance()
	a := p.parseExpr()
	p.expectPunct(":")
	b := p.parseExpr()
	return &condExpr{c: c, a: a, b: b}
}

func (p *parser) parseCoalesce() expr {
	l := p.parseOr()
	for p.isPunct("??") {
		p.advance()
		l = &binaryExpr{op: "??", l: l, r: p.parseOr()}
	}
	return l
}

func (p *parser) parseOr() expr {
	l := p.parseAnd()
	for p.isKw("OR") {
		p.advance()
		l = &binaryExpr{op: "OR", l: l, r: p.parseAnd()}
	}
	return l
}

func (p *parser) parseAnd() expr {
	l := p.parsePredicate()
	for p.isKw("AND") {
		p.advance()
		l = &binaryExpr{op: "AND", l: l, r: p.parsePredicate()}
	}
	return l
}

// parsePredicate parses x [NOT] IN (...), x [NOT] LIKE p [ESCAPE 'c'] and
// x [NOT] BETWEEN lo AND hi.
func (p *parser) parsePredicate() expr {
	x := p.parseBinary(0)
	neg := false
	if p.isKw("NOT") {
		next := p.peek()
		if next.kind != tKeyword || (next.text != "IN" && next.text != "LIKE" && next.text != "BETWEEN") {
			return x
		}
		neg = true
		p.advance()
	}
	switch {
	case p.isKw("IN"):
		p.advance()
		p.expectPunct("(")
		if p.isKw("SELECT") {
			p.unsupported("Subqueries are")
		}
		var list []expr
		for {
			list = append(list, p.parseExpr())
			if !p.isPunct(",") {
				break
			}
			p.advance()
		}
		p.expectPunct(")")
		return &inExpr{x: x, list: list, not: neg}
	case p.isKw("LIKE"):
		p.advance()
		e := &likeExpr{x: x, pat: p.parseBinary(0), not: neg}
		if p.isKw("ESCAPE") {
			p.advance()
			t := p.tok
			if t.kind != tString || len([]rune(t.str)) != 1 {
				p.syntaxError()
			}
			e.esc = t.str
			p.advance()
		}
		return e
	case p.isKw("BETWEEN"):
		p.advance()
		lo := p.parseBinary(0)
		p.expectKw("AND")
		return &betweenExpr{x: x, lo: lo, hi: p.parseBinary(0), not: neg}
	}
	if neg {
		p.syntaxError()
	}
	return x
}

func (p *parser) parseBinary(level int) expr {
	if level == len(binLevels) {
		return p.parseUnary()
	}
	l := p.parseBinary(level + 1)
	for p.tok.kind == tPunct && inList(binLevels[level], p.tok.text) {
		op := p.tok.text
		if op == "<>" {
			op = "!="
		}
		p.advance()
		l = &binaryExpr{op: op, l: l, r: p.parseBinary(level + 1)}
	}
	return l
}

func inList(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (p *parser) parseUnary() expr {
	var op string
	switch {
	case p.isPunct("-"), p.isPunct("+"), p.isPunct("~"):
		op = p.tok.text
	case p.isKw("NOT"):
		op = "NOT"
	default:
		return p.parsePostfix()
	}
	p.advance()
	x := p.parseUnary()
	if l, ok := x.(*litExpr); ok && l.v.kind == KindNumber {
		switch op {
		case "-":
			return &litExpr{v: NumberValue(-l.v.num)}
		case "+":
			return l
		}
	}
	return &unaryExpr{op: op, x: x}
}

// parsePostfix parses a primary expression and its .name / [index] steps.
func (p *parser) parsePostfix() expr {
	x := p.parsePrimary()
	for {
		switch {
		case p.isPunct("."):
			p.advance()
			x = &propExpr{x: x, name: p.expectIdent().text}
		case p.isPunct("["):
			p.advance()
			idx := p.parseExpr()
			p.expectPunct("]")
			if l, ok := idx.(*litExpr); ok && l.v.kind == KindString {
				x = &propExpr{x: x, name: l.v.str}
			} else {
				x = &indexExpr{x: x, idx: idx}
			}
		default:
			return x
		}
	}
}

func (p *parser) unsupported(what string) {
	p.fail(errAt(p.src, p.tok.start, p.tok.end, "", "%s not supported by the emulator.", what))
}

func (p *parser) parsePrimary() expr {
	t := p.tok
	switch t.kind {
	case tNumber:
		p.advance()
		return &litExpr{v: NumberValue(t.num)}
	case tString:
		p.advance()
		return &litExpr{v: StringValue(t.str)}
	case tParam:
		p.advance()
		return p.param(t)
	case tIdent:
		next := p.peek()
		if next.kind == tPunct && next.text == "(" {
			return p.parseCall()
		}
		if t.text == "udf" && next.kind == tPunct && next.text == "." {
			p.unsupported("User-defined functions are")
		}
		if v, ok := literalWords[t.text]; ok {
			p.advance()
			return &litExpr{v: v}
		}
		p.advance()
		e := &identExpr{name: t.text}
		p.idents = append(p.idents, &identRef{e: e, start: t.start, end: t.end})
		return e
	case tKeyword:
		next := p.peek()
		if next.kind == tPunct && next.text == "(" {
			switch t.text {
			case "LEFT", "RIGHT":
				return p.parseCall()
			case "EXISTS", "ARRAY":
				p.unsupported("Subqueries are")
			}
		}
	case tPunct:
		switch t.text {
		case "[":
			p.advance()
			var elems []expr
			if !p.isPunct("]") {
				elems = p.parseList()
			}
			p.expectPunct("]")
			return &arrayExpr{elems: elems}
		case "{":
			return p.parseObject()
		case "(":
			p.advance()
			if p.isKw("SELECT") {
				p.unsupported("Subqueries are")
			}
			x := p.parseExpr()
			p.expectPunct(")")
			return x
		}
	}
	p.syntaxError()
	return nil
}

func (p *parser) parseList() []expr {
	var list []expr
	for {
		list = append(list, p.parseExpr())
		if !p.isPunct(",") {
			return list
		}
		p.advance()
	}
}

// parseObject parses {"k": expr, k2: expr}; keys are string literals or
// identifiers.
func (p *parser) parseObject() expr {
	p.advance() // {
	o := &objExpr{}
	seen := map[string]bool{}
	for !p.isPunct("}") {
		t := p.tok
		var key string
		switch t.kind {
		case tString:
			key = t.str
			p.advance()
		case tIdent:
			key = p.expectIdent().text
		default:
			p.syntaxError()
		}
		if seen[key] {
			p.fail(errAt(p.src, t.start, t.end, "", "The object property name '%s' is specified more than once.", key))
		}
		seen[key] = true
		p.expectPunct(":")
		o.keys = append(o.keys, key)
		o.vals = append(o.vals, p.parseExpr())
		if !p.isPunct(",") {
			break
		}
		p.advance()
	}
	p.expectPunct("}")
	return o
}

// aggregateNames are the aggregate functions; they are valid only in the
// select clause and cannot nest.
var aggregateNames = map[string]bool{"COUNT": true, "SUM": true, "MIN": true, "MAX": true, "AVG": true}

func (p *parser) parseCall() expr {
	t := p.tok
	name := strings.ToUpper(t.text)
	p.advance() // name
	p.advance() // (
	isAgg := aggregateNames[name]
	if isAgg {
		if !p.inSel || p.inAgg {
			p.fail(errAt(p.src, t.start, t.end, "", "Aggregate function '%s' is not allowed here: aggregates are valid only in the SELECT clause and cannot be nested.", name))
		}
		p.inAgg = true
	}
	var args []expr
	if !p.isPunct(")") {
		args = p.parseList()
	}
	end := p.tok.end
	p.expectPunct(")")
	if isAgg {
		p.inAgg = false
		if len(args) != 1 {
			p.fail(errAt(p.src, t.start, end, "", "The %s function requires 1 argument(s).", name))
		}
		a := &aggExpr{name: name, arg: args[0], slot: len(p.q.aggs)}
		p.q.aggs = append(p.q.aggs, a)
		return a
	}
	fn := builtins[name]
	if fn == nil {
		p.fail(errAt(p.src, t.start, t.end, CodeUnknownFunc, "'%s' is not a recognized built-in function name.", t.text))
	}
	if len(args) < fn.minArgs || (fn.maxArgs >= 0 && len(args) > fn.maxArgs) {
		p.fail(errAt(p.src, t.start, end, "", "The %s function requires %s argument(s).", name, fn.arity()))
	}
	return &callExpr{fn: fn, args: args}
}
