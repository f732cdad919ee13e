package emulator

import (
	"encoding/json"
	"net/http"

	"github.com/rekey-dev/rekey/internal/emulator/query"
	"github.com/rekey-dev/rekey/internal/epk"
)

// partitionedQueryExecutionInfoVersion is the plan format version the
// gateway answers with (.NET PartitionedQueryExecutionInfo,
// CurrentVersion = 2).
const partitionedQueryExecutionInfoVersion = 2

// queryPlan is the gateway's PartitionedQueryExecutionInfo: how an SDK's
// query engine runs a query across partition key ranges.
type queryPlan struct {
	Version    int            `json:"partitionedQueryExecutionInfoVersion"`
	QueryInfo  query.PlanInfo `json:"queryInfo"`
	QueryRange []planRange    `json:"queryRanges"`
}

// planRange is an EPK range of the plan, as the JavaScript SDK's QueryRange
// reads it (src/request/ErrorResponse.ts).
type planRange struct {
	Min            string `json:"min"`
	Max            string `json:"max"`
	IsMinInclusive bool   `json:"isMinInclusive"`
	IsMaxInclusive bool   `json:"isMaxInclusive"`
}

// isQueryPlanRequest reports whether a POST to a container's docs asks for a
// plan: x-ms-cosmos-is-query-plan-request: True, which the JavaScript SDK
// sends (with x-ms-cosmos-query-version and
// x-ms-cosmos-supported-query-features) before any item query
// (src/ClientContext.ts getQueryPlan), as the .NET and Java SDKs do when
// their native query engine is unavailable.
func isQueryPlanRequest(rc *requestContext) bool {
	return rc.headerBool("x-ms-cosmos-is-query-plan-request")
}

// answerQueryPlan serves a plan request. The gateway computes a plan from the
// query text and the container's partition key definition alone: it neither
// runs the query nor charges for it, so no RU budget is consulted here.
func (e *Emulator) answerQueryPlan(w http.ResponseWriter, rc *requestContext, c *container) error {
	b, err := parseQuery(rc)
	if err != nil {
		return err
	}
	c.mu.Lock()
	plan, perr := c.planForLocked(b)
	c.mu.Unlock()
	if perr != nil {
		return perr
	}
	setCommon(w, rc, "", 0)
	w.Header().Del("x-ms-request-charge") // a plan is not charged
	writeJSON(w, http.StatusOK, plan)
	return nil
}

// planForLocked computes b's plan over c: the query info and the EPK ranges
// the query's filter leaves (one point or prefix range when it pins the
// partition key, else the whole space). c.mu is held.
func (c *container) planForLocked(b *query.Bound) (queryPlan, *svcError) {
	info, err := b.Plan()
	if err != nil {
		return queryPlan{}, queryError(err)
	}
	ranges := []planRange{{Min: epk.MinEPK, Max: epk.MaxEPK, IsMinInclusive: true}}
	if pins := b.PartitionKeyValues(c.pk.paths); len(pins) > 0 {
		vals := make([]any, len(pins))
		for i, v := range pins {
			vals[i] = v.Interface()
		}
		scope, serr := c.scopeForKey(vals)
		if serr == nil {
			if scope.pkKey != "" {
				h := c.epkOf(vals)
				ranges = []planRange{{Min: h, Max: h, IsMinInclusive: true, IsMaxInclusive: true}}
			} else {
				ranges = []planRange{{Min: scope.region.Min, Max: scope.region.Max, IsMinInclusive: true}}
			}
		}
	}
	return queryPlan{Version: partitionedQueryExecutionInfoVersion, QueryInfo: info, QueryRange: ranges}, nil
}

// crossPartitionError is the gateway's 400 / 1004 for a cross-partition
// query it cannot serve itself. Its body carries the plan as a JSON string
// in additionalErrorInfo, which is what tells an SDK to fall back to its
// own query engine (azure-sdk-for-js src/queryIterator.ts needsQueryPlan;
// .NET QueryPlanRetriever reads the same field). c.mu is held.
func (c *container) crossPartitionError(b *query.Bound) *svcError {
	qe := badRequest("%s", crossPartitionMessage)
	qe.subStatus = subStatusCrossPartitionQuery
	if plan, err := c.planForLocked(b); err == nil {
		if raw, jerr := json.Marshal(plan); jerr == nil {
			qe.additionalInfo = string(raw)
		}
	}
	return qe
}
