package query

import (
	"strconv"
	"strings"
)

// OrderByFilterPlaceholder is the token a plan's rewritten ORDER BY query
// carries in its WHERE clause; the SDKs replace it with "true" or with a
// filter that resumes after a continuation before they send the query to a
// partition key range.
const OrderByFilterPlaceholder = "{documentdb-formattableorderbyquery-filter}"

// PlanInfo is the queryInfo of a query plan, the part of the gateway's
// PartitionedQueryExecutionInfo that tells an SDK's query engine how to run
// a query across partitions: which clauses it must apply itself (ORDER BY
// merge, TOP, OFFSET/LIMIT, DISTINCT, aggregates, GROUP BY) and which query
// to send to each partition key range instead of the original. Field names
// and values follow the .NET SDK's QueryInfo
// (Microsoft.Azure.Cosmos/src/Query/Core/QueryPlan/QueryInfo.cs) and the
// JavaScript SDK's QueryInfo (src/request/ErrorResponse.ts); the rewritten
// queries follow the .NET SDK's QueryPlanBaselineTests baselines (OrderBy,
// Aggregates, OffsetLimit, Distinct, GroupBy).
type PlanInfo struct {
	DistinctType                string             `json:"distinctType"` // None, Ordered or Unordered
	Top                         *int64             `json:"top"`
	Offset                      *int64             `json:"offset"`
	Limit                       *int64             `json:"limit"`
	OrderBy                     []string           `json:"orderBy"` // Ascending or Descending, per ORDER BY item
	OrderByExpressions          []string           `json:"orderByExpressions"`
	GroupByExpressions          []string           `json:"groupByExpressions"`
	GroupByAliases              []string           `json:"groupByAliases"`
	Aggregates                  []string           `json:"aggregates"` // Count, Sum, Min, Max, Average
	GroupByAliasToAggregateType map[string]*string `json:"groupByAliasToAggregateType"`
	RewrittenQuery              string             `json:"rewrittenQuery"`
	HasSelectValue              bool               `json:"hasSelectValue"`
	HasNonStreamingOrderBy      bool               `json:"hasNonStreamingOrderBy"`
}

// aggregateOperators maps the SQL aggregate to the plan's operator name.
var aggregateOperators = map[string]string{"COUNT": "Count", "SUM": "Sum", "MIN": "Min", "MAX": "Max", "AVG": "Average"}

// Plan returns the query plan of b. A plan is only needed, and only
// rewritten, for what a partition cannot finish alone; an error (a
// *SyntaxError) names a shape the emulator cannot plan: an aggregate nested
// inside another expression of the select clause.
func (b *Bound) Plan() (PlanInfo, error) {
	q := b.q
	info := PlanInfo{
		DistinctType:                "None",
		OrderBy:                     []string{},
		OrderByExpressions:          []string{},
		GroupByExpressions:          []string{},
		GroupByAliases:              []string{},
		Aggregates:                  []string{},
		GroupByAliasToAggregateType: map[string]*string{},
		HasSelectValue:              q.value != nil,
	}
	if q.distinct {
		info.DistinctType = "Unordered"
		if len(q.orderBy) > 0 {
			info.DistinctType = "Ordered"
		}
	}
	if b.top >= 0 {
		info.Top = ptr(b.top)
	}
	if q.offset != nil {
		info.Offset, info.Limit = ptr(b.offset), ptr(b.limit)
	}
	for _, o := range q.orderBy {
		info.OrderBy = append(info.OrderBy, map[bool]string{false: "Ascending", true: "Descending"}[o.desc])
		info.OrderByExpressions = append(info.OrderByExpressions, exprString(o.x))
	}
	for _, g := range q.groupBy {
		info.GroupByExpressions = append(info.GroupByExpressions, exprString(g))
	}
	aggregating := len(q.aggs) > 0 || len(q.groupBy) > 0
	if aggregating {
		if err := b.planAggregates(&info); err != nil {
			return PlanInfo{}, err
		}
	}
	info.RewrittenQuery = b.rewrite(aggregating)
	return info, nil
}

func ptr(n int64) *int64 { return &n }

// planAggregates fills the aggregate fields: a VALUE query names its one
// aggregate in Aggregates; any other aggregating query maps each select
// item's alias to its aggregate, or to null for a grouping value.
func (b *Bound) planAggregates(info *PlanInfo) error {
	q := b.q
	if q.value != nil {
		if a, ok := q.value.(*aggExpr); ok {
			info.Aggregates = append(info.Aggregates, aggregateOperators[a.name])
		} else if containsAggregate(q.value) {
			return errNoLoc("", "The emulator cannot plan a cross-partition query whose SELECT VALUE nests an aggregate inside an expression.")
		}
		return nil
	}
	for _, it := range q.items {
		info.GroupByAliases = append(info.GroupByAliases, it.name)
		if a, ok := it.x.(*aggExpr); ok {
			op := aggregateOperators[a.name]
			info.GroupByAliasToAggregateType[it.name] = &op
			continue
		}
		if containsAggregate(it.x) {
			return errNoLoc("", "The emulator cannot plan a cross-partition query whose select item '%s' nests an aggregate inside an expression.", it.name)
		}
		info.GroupByAliasToAggregateType[it.name] = nil
	}
	return nil
}

func containsAggregate(x expr) bool {
	var b strings.Builder
	x.format(&b)
	s := b.String()
	for name := range aggregateOperators {
		if strings.Contains(s, name+"(") {
			return true
		}
	}
	return false
}

// rewrite returns the query each partition key range runs, or "" when the
// original query serves as it is.
func (b *Bound) rewrite(aggregating bool) string {
	q := b.q
	var s strings.Builder
	switch {
	case aggregating:
		s.WriteString("SELECT ")
		s.WriteString(b.aggregateSelect())
		b.writeTail(&s, q.where, "")
		if len(q.groupBy) > 0 {
			s.WriteString("\nGROUP BY ")
			formatList(&s, q.groupBy)
		}
		return s.String()
	case len(q.orderBy) > 0:
		s.WriteString("SELECT ")
		if b.top >= 0 && !q.distinct {
			s.WriteString("TOP " + strconv.FormatInt(b.top, 10) + " ")
		}
		s.WriteString(q.rootAlias + "._rid, [")
		for i, o := range q.orderBy {
			if i > 0 {
				s.WriteString(", ")
			}
			s.WriteString(`{"item": ` + exprString(o.x) + "}")
		}
		s.WriteString("] AS orderByItems, " + b.payload() + " AS payload")
		filter := "(" + OrderByFilterPlaceholder + ")"
		if q.value != nil {
			filter = "(" + filter + " AND IS_DEFINED(" + exprString(q.value) + "))"
		}
		b.writeTail(&s, q.where, filter)
		s.WriteString("\nORDER BY ")
		for i, o := range q.orderBy {
			if i > 0 {
				s.WriteString(", ")
			}
			o.x.format(&s)
			if o.desc {
				s.WriteString(" DESC")
			}
		}
		b.writeOffsetLimit(&s)
		return s.String()
	case q.offset != nil && !q.distinct:
		s.WriteString("SELECT ")
		if b.top >= 0 {
			s.WriteString("TOP " + strconv.FormatInt(b.top, 10) + " ")
		}
		s.WriteString(b.selectList())
		b.writeTail(&s, q.where, "")
		b.writeOffsetLimit(&s)
		return s.String()
	case q.distinct && q.offset != nil:
		s.WriteString("SELECT DISTINCT ")
		s.WriteString(b.selectList())
		b.writeTail(&s, q.where, "")
		return s.String()
	}
	return ""
}

// writeTail writes FROM and WHERE; extra, when set, is ANDed to the filter.
func (b *Bound) writeTail(s *strings.Builder, where expr, extra string) {
	if b.q.fromText != "" {
		s.WriteString("\n" + b.q.fromText)
	}
	switch {
	case where != nil && extra != "":
		s.WriteString("\nWHERE (" + exprString(where) + " AND " + extra + ")")
	case where != nil:
		s.WriteString("\nWHERE " + exprString(where))
	case extra != "":
		s.WriteString("\nWHERE " + extra)
	}
}

// writeOffsetLimit asks a partition for the first OFFSET + LIMIT results:
// the SDK skips OFFSET of the merged results itself.
func (b *Bound) writeOffsetLimit(s *strings.Builder) {
	if b.q.offset == nil || b.q.distinct {
		return
	}
	s.WriteString("\nOFFSET 0 LIMIT " + strconv.FormatInt(b.offset+b.limit, 10))
}

// payload is what an ORDER BY query returns per document, as the original
// select clause would.
func (b *Bound) payload() string {
	q := b.q
	switch {
	case q.star:
		return q.rootAlias
	case q.value != nil:
		return exprString(q.value)
	}
	var s strings.Builder
	s.WriteByte('{')
	for i, it := range q.items {
		if i > 0 {
			s.WriteString(", ")
		}
		s.Write(appendString(nil, it.name))
		s.WriteString(": " + exprString(it.x))
	}
	s.WriteByte('}')
	return s.String()
}

// selectList writes the original select clause, aliasing items by the
// names they were given.
func (b *Bound) selectList() string {
	q := b.q
	switch {
	case q.star:
		return "*"
	case q.value != nil:
		return "VALUE " + exprString(q.value)
	}
	return "VALUE " + b.payload()
}

// aggregateSelect is the select clause of an aggregating query's rewrite:
// per partition, partial aggregates the SDK can combine, keyed by the
// grouping values.
func (b *Bound) aggregateSelect() string {
	q := b.q
	var s strings.Builder
	if len(q.groupBy) == 0 && q.value != nil {
		s.WriteString("VALUE [" + aggregateItem(q.value) + "]")
		return s.String()
	}
	if len(q.groupBy) > 0 {
		s.WriteString("[")
		for i, g := range q.groupBy {
			if i > 0 {
				s.WriteString(", ")
			}
			s.WriteString(`{"item": ` + exprString(g) + "}")
		}
		s.WriteString("] AS groupByItems, ")
	}
	switch {
	case q.value != nil:
		if _, ok := q.value.(*aggExpr); ok {
			s.WriteString("[" + aggregateItem(q.value) + "]")
		} else {
			s.WriteString(exprString(q.value))
		}
	default:
		s.WriteByte('{')
		for i, it := range q.items {
			if i > 0 {
				s.WriteString(", ")
			}
			s.Write(appendString(nil, it.name))
			s.WriteString(": ")
			if _, ok := it.x.(*aggExpr); ok {
				s.WriteString(aggregateItem(it.x))
			} else {
				s.WriteString(exprString(it.x))
			}
		}
		s.WriteByte('}')
	}
	s.WriteString(" AS payload")
	return s.String()
}

// aggregateItem is the partial result of one aggregate as the SDKs combine
// it: {"item": COUNT(x)}, {"item": SUM(x)}, {"item": {"sum": SUM(x),
// "count": COUNT(x)}} for AVG, and for MIN and MAX the value with an "item2"
// that tells an undefined result from a missing one.
func aggregateItem(x expr) string {
	a, ok := x.(*aggExpr)
	if !ok {
		return `{"item": ` + exprString(x) + "}"
	}
	arg := exprString(a.arg)
	switch a.name {
	case "AVG":
		return `{"item": {"sum": SUM(` + arg + `), "count": COUNT(` + arg + `)}}`
	case "MIN", "MAX":
		lower := strings.ToLower(a.name)
		return `{"item": ` + a.name + "(" + arg + `), "item2": {"` + lower + `": ` + a.name + "(" + arg + `), "count": COUNT(` + arg + `)}}`
	}
	return `{"item": ` + a.name + "(" + arg + ")}"
}
