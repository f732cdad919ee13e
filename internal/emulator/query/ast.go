package query

import (
	"strconv"
	"strings"
)

// expr is a scalar expression node.
type expr interface {
	// format appends the canonical text of the expression; GROUP BY
	// matches select expressions to grouping expressions by it.
	format(b *strings.Builder)
}

type (
	litExpr   struct{ v Value }
	paramExpr struct {
		name       string
		slot       int
		start, end int // first reference, for errors
	}
	// identExpr references an alias bound by FROM or JOIN.
	identExpr struct {
		name string
		slot int
	}
	// propExpr is x.name or x["name"].
	propExpr struct {
		x    expr
		name string
	}
	// indexExpr is x[e] for any other e.
	indexExpr struct{ x, idx expr }
	arrayExpr struct{ elems []expr }
	objExpr   struct {
		keys []string
		vals []expr
	}
	unaryExpr struct {
		op string // "-", "+", "~", "NOT"
		x  expr
	}
	binaryExpr struct {
		op   string // "AND", "OR", "??", "=", "!=", "<", ..., "||"
		l, r expr
	}
	inExpr struct {
		x    expr
		list []expr
		not  bool
	}
	betweenExpr struct {
		x, lo, hi expr
		not       bool
	}
	likeExpr struct {
		x, pat expr
		esc    string // "" when no ESCAPE clause
		not    bool
	}
	condExpr struct{ c, a, b expr }
	callExpr struct {
		fn   *builtin
		args []expr
	}
	// aggExpr is an aggregate call; slot indexes the group's results.
	aggExpr struct {
		name string // COUNT, SUM, MIN, MAX, AVG
		arg  expr
		slot int
	}
)

func (e *litExpr) format(b *strings.Builder) {
	if e.v.kind == KindUndefined {
		b.WriteString("undefined")
		return
	}
	b.Write(e.v.AppendJSON(nil))
}
func (e *paramExpr) format(b *strings.Builder) { b.WriteString(e.name) }
func (e *identExpr) format(b *strings.Builder) { b.WriteString(e.name) }
func (e *propExpr) format(b *strings.Builder) {
	e.x.format(b)
	b.WriteByte('[')
	b.Write(appendString(nil, e.name))
	b.WriteByte(']')
}
func (e *indexExpr) format(b *strings.Builder) {
	e.x.format(b)
	b.WriteByte('[')
	e.idx.format(b)
	b.WriteByte(']')
}
func (e *arrayExpr) format(b *strings.Builder) {
	b.WriteByte('[')
	formatList(b, e.elems)
	b.WriteByte(']')
}
func (e *objExpr) format(b *strings.Builder) {
	b.WriteByte('{')
	for i, k := range e.keys {
		if i > 0 {
			b.WriteString(", ")
		}
		b.Write(appendString(nil, k))
		b.WriteString(": ")
		e.vals[i].format(b)
	}
	b.WriteByte('}')
}
func (e *unaryExpr) format(b *strings.Builder) {
	b.WriteString("(" + e.op + " ")
	e.x.format(b)
	b.WriteByte(')')
}
func (e *binaryExpr) format(b *strings.Builder) {
	b.WriteByte('(')
	e.l.format(b)
	b.WriteString(" " + e.op + " ")
	e.r.format(b)
	b.WriteByte(')')
}
func (e *inExpr) format(b *strings.Builder) {
	b.WriteByte('(')
	e.x.format(b)
	b.WriteString(not(e.not) + " IN (")
	formatList(b, e.list)
	b.WriteString("))")
}
func (e *betweenExpr) format(b *strings.Builder) {
	b.WriteByte('(')
	e.x.format(b)
	b.WriteString(not(e.not) + " BETWEEN ")
	e.lo.format(b)
	b.WriteString(" AND ")
	e.hi.format(b)
	b.WriteByte(')')
}
func (e *likeExpr) format(b *strings.Builder) {
	b.WriteByte('(')
	e.x.format(b)
	b.WriteString(not(e.not) + " LIKE ")
	e.pat.format(b)
	if e.esc != "" {
		b.WriteString(" ESCAPE " + strconv.Quote(e.esc))
	}
	b.WriteByte(')')
}
func (e *condExpr) format(b *strings.Builder) {
	b.WriteByte('(')
	e.c.format(b)
	b.WriteString(" ? ")
	e.a.format(b)
	b.WriteString(" : ")
	e.b.format(b)
	b.WriteByte(')')
}
func (e *callExpr) format(b *strings.Builder) {
	b.WriteString(e.fn.name + "(")
	formatList(b, e.args)
	b.WriteByte(')')
}
func (e *aggExpr) format(b *strings.Builder) {
	b.WriteString(e.name + "(")
	e.arg.format(b)
	b.WriteByte(')')
}

func not(b bool) string {
	if b {
		return " NOT"
	}
	return ""
}

func formatList(b *strings.Builder, list []expr) {
	for i, e := range list {
		if i > 0 {
			b.WriteString(", ")
		}
		e.format(b)
	}
}

func exprString(e expr) string {
	var b strings.Builder
	e.format(&b)
	return b.String()
}

// countSpec is the operand of TOP, OFFSET or LIMIT: a literal or a
// parameter resolved by Bind.
type countSpec struct {
	n     int64
	param *paramExpr // nil for a literal
	start int        // byte offset, for errors
	end   int
}

type selectItem struct {
	x    expr
	name string // output property name (alias or derived)
}

type orderItem struct {
	x    expr
	desc bool
}

// join is "JOIN alias IN source": it iterates the array source evaluates to.
type join struct {
	slot int
	src  expr
}

// Shape summarizes the clauses of a query. The emulator uses it to answer a
// cross-partition query the gateway cannot serve with the service's 400
// error, and to choose between the streaming path (Match) and the
// materialized one (Run).
type Shape struct {
	HasOrderBy     bool
	HasAggregate   bool // an aggregate (COUNT, SUM, ...) in the select clause
	HasGroupBy     bool
	HasDistinct    bool
	HasTop         bool
	HasOffsetLimit bool
	HasJoin        bool // JOIN, or FROM x IN path: a document can yield several results
	IsSelectValue  bool
	IsSelectStar   bool
	NoFrom         bool // SELECT without FROM: one result whatever the documents
}

// Streamable reports whether results can be produced document by document
// with Match/MatchAppend; otherwise Run must see every document.
func (s Shape) Streamable() bool {
	return !s.HasOrderBy && !s.HasAggregate && !s.HasGroupBy && !s.HasDistinct && !s.NoFrom
}

// Query is a parsed query. It is immutable and safe for concurrent use;
// Bind it to parameter values to execute it.
type Query struct {
	text     string
	shape    Shape
	distinct bool
	top      *countSpec
	star     bool
	value    expr         // SELECT VALUE expr
	items    []selectItem // SELECT expr [AS name], ...
	noFrom   bool         // SELECT without FROM: one row, no documents
	fromPath []pathStep   // FROM root.a.b or FROM x IN root.a: path under the document
	fromIter bool         // FROM x IN path: iterate the array at fromPath
	joins    []join
	where    expr
	groupBy  []expr
	orderBy  []orderItem
	offset   *countSpec
	limit    *countSpec
	params   []*paramExpr // one per distinct name, by slot
	aggs     []*aggExpr   // by slot
	nslots   int          // aliases: slot 0 is FROM's, then one per JOIN
	rootDoc  bool         // slot 0 is bound to the document itself
	// fromText is the FROM clause with its JOINs as written ("FROM c JOIN
	// t IN c.tags"), and rootAlias the name slot 0 is bound to; query plans
	// rewrite the other clauses around them.
	fromText  string
	rootAlias string
}

// pathStep is one step of a FROM path: a property name or an array index.
type pathStep struct {
	name  string
	index int // used when name is ""
	isIdx bool
}

// Text returns the query text as given to Parse.
func (q *Query) Text() string { return q.text }

// Shape reports which clauses the query uses.
func (q *Query) Shape() Shape { return q.shape }
