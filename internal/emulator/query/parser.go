package query

import (
	"math"
	"strings"
)

// Parse parses a Cosmos DB NoSQL query. Keywords and function names are
// case-insensitive; true, false, null and undefined are lower case, and
// reserved words cannot follow a dot (write c["value"], not c.value), as in
// the service's grammar. Every error is a *SyntaxError carrying the
// service's message and location. Subqueries, EXISTS, ARRAY(...),
// user-defined functions and spatial functions are reported as unsupported.
func Parse(text string) (q *Query, err error) {
	p := &parser{src: text, lex: lexer{src: text}, q: &Query{text: text}, params: map[string]*paramExpr{}}
	defer func() {
		if r := recover(); r != nil {
			se, ok := r.(*SyntaxError)
			if !ok {
				panic(r)
			}
			q, err = nil, se
		}
	}()
	p.advance()
	p.parseQuery()
	p.resolve()
	p.check()
	return p.q, nil
}

type parser struct {
	src    string
	lex    lexer
	tok    token
	peeked *token
	q      *Query
	params map[string]*paramExpr
	idents []*identRef
	// aliases maps FROM/JOIN aliases to slots.
	aliases map[string]int
	inSel   bool // parsing the select clause: aggregates allowed
	inAgg   bool // parsing an aggregate's argument
}

type identRef struct {
	e          *identExpr
	start, end int
}

func (p *parser) advance() {
	if p.peeked != nil {
		p.tok, p.peeked = *p.peeked, nil
		return
	}
	p.tok = p.lex.next()
}

func (p *parser) peek() token {
	if p.peeked == nil {
		t := p.lex.next()
		p.peeked = &t
	}
	return *p.peeked
}

func (p *parser) fail(e *SyntaxError) { panic(e) }

// syntaxError reports the current token the way the service does.
func (p *parser) syntaxError() {
	t := p.tok
	if t.kind == tEOF {
		p.fail(errAt(p.src, t.end, t.end, CodeEOF, "Syntax error, unexpected end-of-file."))
	}
	p.fail(errAt(p.src, t.start, t.end, CodeSyntax, "Syntax error, incorrect syntax near '%s'.", p.src[t.start:t.end]))
}

func (p *parser) isKw(k string) bool    { return p.tok.kind == tKeyword && p.tok.text == k }
func (p *parser) isPunct(s string) bool { return p.tok.kind == tPunct && p.tok.text == s }

func (p *parser) expectKw(k string) {
	if !p.isKw(k) {
		p.syntaxError()
	}
	p.advance()
}

func (p *parser) expectPunct(s string) {
	if !p.isPunct(s) {
		p.syntaxError()
	}
	p.advance()
}

// literalWords are case-sensitive literal keywords of the grammar.
var literalWords = map[string]Value{"true": BoolValue(true), "false": BoolValue(false), "null": Null(), "undefined": {}}

// expectIdent consumes an identifier usable as a name (alias, property).
func (p *parser) expectIdent() token {
	t := p.tok
	if t.kind != tIdent || t.text == "udf" {
		p.syntaxError()
	}
	if _, lit := literalWords[t.text]; lit {
		p.syntaxError()
	}
	p.advance()
	return t
}

func (p *parser) parseQuery() {
	q := p.q
	p.expectKw("SELECT")
	if p.isKw("DISTINCT") {
		q.distinct = true
		p.advance()
	}
	if p.isKw("TOP") {
		p.advance()
		q.top = p.parseCount()
	}
	p.inSel = true
	switch {
	case p.isPunct("*"):
		q.star = true
		p.advance()
	case p.isKw("VALUE"):
		p.advance()
		q.value = p.parseExpr()
	default:
		for {
			x := p.parseExpr()
			item := selectItem{x: x}
			if p.isKw("AS") {
				p.advance()
				item.name = p.expectIdent().text
			} else if p.tok.kind == tIdent {
				item.name = p.expectIdent().text
			}
			q.items = append(q.items, item)
			if !p.isPunct(",") {
				break
			}
			p.advance()
		}
	}
	p.inSel = false
	if p.isKw("FROM") {
		start := p.tok.start
		p.advance()
		p.parseFrom()
		q.fromText = strings.TrimSpace(p.src[start:p.tok.start])
	} else {
		q.noFrom = true
	}
	if p.isKw("WHERE") {
		p.advance()
		q.where = p.parseExpr()
	}
	if p.isKw("GROUP") {
		p.advance()
		p.expectKw("BY")
		for {
			q.groupBy = append(q.groupBy, p.parseExpr())
			if !p.isPunct(",") {
				break
			}
			p.advance()
		}
	}
	if p.isKw("ORDER") {
		p.advance()
		p.expectKw("BY")
		if p.isKw("RANK") {
			p.fail(errAt(p.src, p.tok.start, p.tok.end, "", "ORDER BY RANK is not supported by the emulator."))
		}
		for {
			item := orderItem{x: p.parseExpr()}
			if p.isKw("ASC") {
				p.advance()
			} else if p.isKw("DESC") {
				item.desc = true
				p.advance()
			}
			q.orderBy = append(q.orderBy, item)
			if !p.isPunct(",") {
				break
			}
			p.advance()
		}
	}
	if p.isKw("OFFSET") {
		p.advance()
		q.offset = p.parseCount()
		p.expectKw("LIMIT")
		q.limit = p.parseCount()
	}
	if p.tok.kind != tEOF {
		p.syntaxError()
	}
}

// parseCount parses the operand of TOP, OFFSET or LIMIT.
func (p *parser) parseCount() *countSpec {
	t := p.tok
	switch t.kind {
	case tNumber:
		p.advance()
		if t.num != math.Trunc(t.num) || t.num < 0 || t.num > math.MaxInt32 {
			p.fail(errAt(p.src, t.start, t.end, "", "The count value provided for a TOP, OFFSET or LIMIT clause must be a non-negative 32-bit integer."))
		}
		return &countSpec{n: int64(t.num), start: t.start, end: t.end}
	case tParam:
		p.advance()
		return &countSpec{param: p.param(t), start: t.start, end: t.end}
	}
	p.syntaxError()
	return nil
}

func (p *parser) param(t token) *paramExpr {
	if pe, ok := p.params[t.text]; ok {
		return pe
	}
	pe := &paramExpr{name: t.text, slot: len(p.q.params), start: t.start, end: t.end}
	p.params[t.text] = pe
	p.q.params = append(p.q.params, pe)
	return pe
}

// parseFrom parses the FROM clause and its JOINs and binds the aliases.
func (p *parser) parseFrom() {
	q := p.q
	p.aliases = map[string]int{}
	var alias token
	if p.tok.kind == tIdent && p.peek().kind == tKeyword && p.peek().text == "IN" {
		alias = p.expectIdent()
		p.advance() // IN
		p.expectIdent()
		q.fromPath = p.parseFromPath()
		q.fromIter = true
	} else {
		root := p.expectIdent()
		q.fromPath = p.parseFromPath()
		alias = root
		if n := len(q.fromPath); n > 0 && !q.fromPath[n-1].isIdx {
			alias.text = q.fromPath[n-1].name
		}
		if p.isKw("AS") {
			p.advance()
			alias = p.expectIdent()
		} else if p.tok.kind == tIdent {
			alias = p.expectIdent()
		}
		q.rootDoc = len(q.fromPath) == 0
	}
	p.aliases[alias.text] = 0
	q.rootAlias = alias.text
	q.nslots = 1
	for p.isKw("JOIN") {
		p.advance()
		if p.isPunct("(") {
			p.fail(errAt(p.src, p.tok.start, p.tok.end, "", "Subqueries are not supported by the emulator."))
		}
		name := p.expectIdent()
		p.expectKw("IN")
		start := p.tok.start
		src := p.parsePostfix()
		if !isPath(src) {
			p.fail(errAt(p.src, start, p.tok.start, CodeSyntax, "Syntax error, incorrect syntax near '%s'.", strings.TrimSpace(p.src[start:p.tok.start])))
		}
		if _, dup := p.aliases[name.text]; dup {
			p.fail(errAt(p.src, name.start, name.end, "", "The input set name or alias '%s' is specified more than once in the FROM clause.", name.text))
		}
		p.aliases[name.text] = q.nslots
		q.joins = append(q.joins, join{slot: q.nslots, src: src})
		q.nslots++
	}
}

// parseFromPath parses .name, [number] and ["name"] steps.
func (p *parser) parseFromPath() []pathStep {
	var path []pathStep
	for {
		switch {
		case p.isPunct("."):
			p.advance()
			path = append(path, pathStep{name: p.expectIdent().text})
		case p.isPunct("["):
			p.advance()
			t := p.tok
			switch {
			case t.kind == tString:
				path = append(path, pathStep{name: t.str})
			case t.kind == tNumber && t.num == math.Trunc(t.num) && t.num >= 0 && t.num <= math.MaxInt32:
				path = append(path, pathStep{index: int(t.num), isIdx: true})
			default:
				p.syntaxError()
			}
			p.advance()
			p.expectPunct("]")
		default:
			return path
		}
	}
}

// isPath reports whether e is an alias followed by property/index steps.
func isPath(e expr) bool {
	for {
		switch x := e.(type) {
		case *identExpr:
			return true
		case *propExpr:
			e = x.x
		case *indexExpr:
			if l, ok := x.idx.(*litExpr); !ok || l.v.kind != KindNumber {
				return false
			}
			e = x.x
		default:
			return false
		}
	}
}
