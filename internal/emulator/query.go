package emulator

import (
	"encoding/json"
	"errors"
	"fmt"
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
	if lerr := checkQueryText(req.Query); lerr != nil {
		return nil, lerr
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
	if lerr := checkQueryText(condition); lerr != nil {
		return false, lerr
	}
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

// Limits on query text. maxQueryBytes is the service's (concepts-limits.md,
// "SQL query limits": 512 KB). maxQueryNesting bounds how deeply
// parentheses, array and object literals nest: the parser recurses once per
// level, and a query of a few hundred KB of "(" would exhaust the goroutine
// stack, a fatal error that no recover catches and that would take the whole
// emulator down.
const (
	maxQueryBytes   = 512 * 1024
	maxQueryNesting = 1000
)

// checkQueryText refuses query text over the limits, before it is parsed.
func checkQueryText(text string) *svcError {
	if len(text) > maxQueryBytes {
		return queryError(&query.SyntaxError{Start: -1, Message: fmt.Sprintf("The SQL query text is %d bytes long, over the limit of %d.", len(text), maxQueryBytes)})
	}
	depth := 0
	var quote byte // the open string literal's quote, or 0
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case quote != 0 && c == '\\':
			i++
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '(' || c == '[' || c == '{':
			if depth++; depth > maxQueryNesting {
				return queryError(&query.SyntaxError{Start: i, End: i + 1, Message: fmt.Sprintf("The SQL query nests expressions more than %d levels deep.", maxQueryNesting)})
			}
		case c == ')' || c == ']' || c == '}':
			depth--
		}
	}
	return nil
}
