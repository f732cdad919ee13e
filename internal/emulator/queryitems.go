package emulator

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/rekey-dev/rekey/internal/emulator/query"
	"github.com/rekey-dev/rekey/internal/epk"
)

// queryScope is the part of a container a query or read feed covers.
type queryScope struct {
	region   epk.Range // EPK range to scan
	pkKey    string    // full logical partition key to keep, or ""
	pkPrefix []any     // hierarchical prefix to keep, or nil
	single   bool      // one logical partition or one physical range
	rangeID  string    // the range named by x-ms-documentdb-partitionkeyrangeid
}

// scopeFromHeaders resolves x-ms-documentdb-partitionkeyrangeid and
// x-ms-documentdb-partitionkey; ok is false when neither is set.
func (c *container) scopeFromHeaders(rc *requestContext) (queryScope, bool, *svcError) {
	if id := rc.header("x-ms-documentdb-partitionkeyrangeid"); id != "" {
		p, err := c.feedScope(id, nil)
		if err != nil {
			return queryScope{}, false, err
		}
		region := epk.Range{Min: p.min, Max: p.max}
		if window, narrowed, werr := epkSubRange(rc, p); werr != nil {
			return queryScope{}, false, werr
		} else if narrowed {
			region = window
		}
		return queryScope{region: region, single: true, rangeID: id}, true, nil
	}
	h := rc.header("x-ms-documentdb-partitionkey")
	if h == "" || h == "[]" {
		return queryScope{}, false, nil
	}
	vals, err := parsePKHeader(h)
	if err != nil {
		return queryScope{}, false, err
	}
	s, serr := c.scopeForKey(vals)
	return s, true, serr
}

// scopeForKey scopes to a full key or, for a hierarchical key, a prefix.
func (c *container) scopeForKey(vals []any) (queryScope, *svcError) {
	if len(vals) == len(c.pk.paths) {
		p := c.partitionFor(c.epkOf(vals))
		return queryScope{region: epk.Range{Min: p.min, Max: p.max}, pkKey: pkKeyOf(vals), single: true}, nil
	}
	if c.pk.kind != "MultiHash" || len(vals) > len(c.pk.paths) || len(vals) == 0 {
		return queryScope{}, badRequest("Partition key provided either doesn't correspond to definition in the collection or doesn't match partition key field values specified in the document: the container's key has %d path(s), the request gave %s.", len(c.pk.paths), pkJSON(vals))
	}
	conv := make([]any, len(vals))
	for i, v := range vals {
		conv[i] = v
		if _, ok := v.(undefined); ok {
			conv[i] = epk.Undefined{}
		}
	}
	r, err := epk.PrefixRange(c.pk.definition(), conv)
	if err != nil {
		return queryScope{}, badRequest("The partition key prefix %s is invalid: %v", pkJSON(vals), err)
	}
	return queryScope{region: r, pkPrefix: vals, single: len(c.overlapping(r.Min, r.Max)) == 1}, nil
}

// keeps reports whether it belongs to the scope's logical partition(s).
func (s queryScope) keeps(it *item) bool {
	if s.pkKey != "" {
		return it.pkKey == s.pkKey
	}
	if s.pkPrefix != nil {
		return pkKeyOf(it.pk[:len(s.pkPrefix)]) == pkKeyOf(s.pkPrefix)
	}
	return true
}

// queryItems answers a query on a container's items: scoped to a logical
// partition, a hierarchical prefix or a physical range when the request (or
// the query's filter) names one, and fanned out across every range
// otherwise, with the gateway's restrictions on cross-partition queries.
func (e *Emulator) queryItems(w http.ResponseWriter, rc *requestContext, c *container) error {
	b, err := parseQuery(rc)
	if err != nil {
		return err
	}
	shape := b.Query().Shape()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sweepExpired()
	scope, named, err := c.scopeFromHeaders(rc)
	if err != nil {
		return err
	}
	if !named {
		scope = queryScope{region: epk.Full}
		if pins := b.PartitionKeyValues(c.pk.paths); len(pins) > 0 {
			vals := make([]any, len(pins))
			for i, v := range pins {
				vals[i] = v.Interface()
			}
			if s, serr := c.scopeForKey(vals); serr == nil {
				scope = s
			}
		}
		if !scope.single {
			if !rc.headerBool("x-ms-documentdb-query-enablecrosspartition") {
				return badRequest("Cross partition query is required but disabled. Please set x-ms-documentdb-query-enablecrosspartition to true, specify x-ms-documentdb-partitionkey, or revise your query to avoid this exception.")
			}
			if !shape.Streamable() || shape.HasTop || shape.HasOffsetLimit {
				return c.crossPartitionError(b)
			}
		}
	}
	return e.runQueryLocked(w, rc, c, b, scope)
}

// readItemFeed answers GET .../docs: every item of the scope, like SELECT *.
func (e *Emulator) readItemFeed(w http.ResponseWriter, rc *requestContext, c *container) error {
	q, _ := query.Parse("SELECT * FROM root")
	b, _ := q.Bind(nil)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sweepExpired()
	scope, named, err := c.scopeFromHeaders(rc)
	if err != nil {
		return err
	}
	if !named {
		scope = queryScope{region: epk.Full}
	}
	return e.runQueryLocked(w, rc, c, b, scope)
}

// runQueryLocked executes one page of b over scope; c.mu is held.
func (e *Emulator) runQueryLocked(w http.ResponseWriter, rc *requestContext, c *container, b *query.Bound, scope queryScope) error {
	maxCount, err := maxItemCount(rc)
	if err != nil {
		return err
	}
	tok, err := decodeToken(rc.header("x-ms-continuation"))
	if err != nil {
		return err
	}
	parts := c.overlapping(scope.region.Min, scope.region.Max)
	if len(parts) == 0 {
		return badRequest("The query's partition key range [%q, %q) matches no partition.", scope.region.Min, scope.region.Max)
	}
	if aerr := e.admitRequest(rc, c, parts[0]); aerr != nil {
		return aerr
	}
	start := time.Now()
	var page queryPage
	if b.Query().Shape().Streamable() {
		page, err = c.streamPage(b, scope, tok, maxCount)
	} else {
		page, err = c.materializedPage(b, scope, tok, maxCount)
	}
	if err != nil {
		return err
	}
	ru := queryCost(page.examined, page.bytes)
	c.charge(parts[0], ru)
	rc.charge += ru

	rangeID := scope.rangeID
	if rangeID == "" {
		rangeID = parts[0].id
	}
	setCommon(w, rc, rangeID, c.lsn)
	h := w.Header()
	if page.next != nil {
		h.Set("x-ms-continuation", encodeToken(*page.next))
	}
	h.Set("x-ms-item-count", itoa(len(page.docs)))
	h.Set("x-ms-documentdb-query-metrics", queryMetrics(time.Since(start), page))
	if rc.headerBool("x-ms-cosmos-populateindexmetrics") {
		h.Set("x-ms-cosmos-index-utilization", base64.StdEncoding.EncodeToString([]byte(`{"UtilizedSingleIndexes":[],"PotentialSingleIndexes":[],"UtilizedCompositeIndexes":[],"PotentialCompositeIndexes":[]}`)))
	}
	writeRaw(w, http.StatusOK, documentsPage(c.rid, page.docs))
	return nil
}

// queryPage is one page of query results.
type queryPage struct {
	docs     [][]byte
	bytes    int
	examined int
	next     *continuation // nil: the query is complete
}

// scanItems yields p's items of the scope with a creation ordinal above
// after and an EPK in [lo, hi), in creation (_rid) order. With candidate ids
// it looks those up instead of scanning the partition.
func (s queryScope) scanItems(p *partition, lo, hi string, after uint64, cands []query.Candidate, useCands bool, yield func(*item) bool) {
	keep := func(it *item) bool {
		return it.seq > after && s.keeps(it) && compareEPK(it.epk, lo) >= 0 && compareEPK(it.epk, hi) < 0
	}
	if !useCands {
		p.bySeq.AscendGreaterOrEqual(&item{seq: after + 1}, func(it *item) bool {
			if !keep(it) {
				return true
			}
			return yield(it)
		})
		return
	}
	var found []*item
	seen := map[*item]bool{}
	for _, cand := range cands {
		for _, it := range p.byID[cand.ID] {
			if !seen[it] && keep(it) {
				seen[it] = true
				found = append(found, it)
			}
		}
	}
	sort.Slice(found, func(i, j int) bool { return found[i].seq < found[j].seq })
	for _, it := range found {
		if !yield(it) {
			return
		}
	}
}

func queryMetrics(d time.Duration, page queryPage) string {
	ms := float64(d.Microseconds()) / 1000
	return fmt.Sprintf("totalExecutionTimeInMs=%.2f;queryCompileTimeInMs=0.01;queryLogicalPlanBuildTimeInMs=0.01;queryPhysicalPlanBuildTimeInMs=0.01;queryOptimizationTimeInMs=0.01;VMExecutionTimeInMs=%.2f;indexLookupTimeInMs=0.00;documentLoadTimeInMs=0.00;systemFunctionExecuteTimeInMs=0.00;userFunctionExecuteTimeInMs=0.00;retrievedDocumentCount=%d;retrievedDocumentSize=0;outputDocumentCount=%d;outputDocumentSize=%d;writeOutputTimeInMs=0.00;indexUtilizationRatio=1.00",
		ms, ms, page.examined, len(page.docs), page.bytes)
}

func itoa(n int) string { return strconv.Itoa(n) }
