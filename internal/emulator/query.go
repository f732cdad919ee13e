package emulator

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/rekey-dev/rekey/internal/emulator/query"
)

// queryRequest is the body of a query: {"query": "...", "parameters": [...]}.
type queryRequest struct {
	Query      string        `json:"query"`
	Parameters []query.Param `json:"parameters"`
}

// crossPartitionMessage is the gateway's answer to a cross-partition query it
// cannot run itself (ORDER BY, aggregates, GROUP BY, DISTINCT, TOP, OFFSET
// LIMIT need the client-side query engine, which the Go SDK does not have).
const crossPartitionMessage = "The provided cross partition query can not be directly served by the gateway. This is a first chance (internal) exception that all newer clients will know how to handle gracefully. This exception is traced, but unless you see it bubble up as an exception (which only happens on older SDK clients), then you can safely ignore this message."

// parseQuery reads, parses and binds a query request.
func parseQuery(rc *requestContext) (*query.Bound, *svcError) {
	body, err := rc.readBody()
	if err != nil {
		return nil, err
	}
	var req queryRequest
	if jsonErr := json.Unmarshal(body, &req); jsonErr != nil {
		return nil, badRequest("The query request body is invalid: %v", jsonErr)
	}
	if req.Query == "" {
		return nil, badRequest("The query request body has no query text.")
	}
	q, perr := query.Parse(req.Query)
	if perr != nil {
		return nil, queryError(perr)
	}
	b, berr := q.Bind(req.Parameters)
	if berr != nil {
		return nil, queryError(berr)
	}
	return b, nil
}

// queryError renders a query error as the service does: the errors list in
// the message.
func queryError(err error) *svcError {
	var se *query.SyntaxError
	if !errors.As(err, &se) {
		return badRequest("%v", err)
	}
	type loc struct {
		Start int `json:"start"`
		End   int `json:"end"`
	}
	entry := map[string]any{"severity": "Error", "message": se.Message}
	if se.Code != "" {
		entry["code"] = se.Code
	}
	if se.Start >= 0 {
		entry["location"] = loc{se.Start, se.End}
	}
	b, _ := json.Marshal(map[string]any{"errors": []any{entry}})
	return badRequest("Message: %s", b)
}

// queryResources runs a query over metadata documents (databases, containers,
// offers); they are few, so every page re-runs the query.
func (e *Emulator) queryResources(w http.ResponseWriter, rc *requestContext, field, rid string, bodies [][]byte) error {
	b, err := parseQuery(rc)
	if err != nil {
		return err
	}
	docs := func(yield func(query.Value) bool) {
		for _, d := range bodies {
			if !yield(query.Raw(d)) {
				return
			}
		}
	}
	results, rerr := b.Run(docs)
	if rerr != nil {
		return queryError(rerr)
	}
	out := make([][]byte, len(results))
	for i, r := range results {
		out[i] = r.AppendJSON(nil)
	}
	rc.charge = queryCost(len(bodies), 0)
	return e.writeFeed(w, rc, field, rid, out)
}

// writeFeed answers a metadata feed (a list or query result), paging by
// x-ms-max-item-count with an offset continuation.
func (e *Emulator) writeFeed(w http.ResponseWriter, rc *requestContext, field, rid string, docs [][]byte) error {
	maxCount, err := maxItemCount(rc)
	if err != nil {
		return err
	}
	tok, terr := decodeToken(rc.header("x-ms-continuation"))
	if terr != nil {
		return terr
	}
	skip := min(tok.Skip, len(docs))
	end := min(skip+maxCount, len(docs))
	if rc.charge == 0 {
		rc.charge = metadataReadRU
	}
	setCommon(w, rc, "", 0)
	if end < len(docs) {
		w.Header().Set("x-ms-continuation", encodeToken(continuation{Skip: end}))
	}
	w.Header().Set("x-ms-item-count", itoa(end-skip))
	writeRaw(w, http.StatusOK, feedPage(field, rid, docs[skip:end]))
	return nil
}

// matchesCondition evaluates a patch condition ("from c where ...") on doc.
func matchesCondition(condition string, doc []byte) (bool, *svcError) {
	q, err := query.Parse("SELECT * " + condition)
	if err != nil {
		return false, queryError(err)
	}
	b, err := q.Bind(nil)
	if err != nil {
		return false, queryError(err)
	}
	_, ok, err := b.Match(query.Raw(doc))
	if err != nil {
		return false, badRequest("The patch condition %q is not a simple filter: %v", condition, err)
	}
	return ok, nil
}
