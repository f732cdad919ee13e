package emulator

import (
	"encoding/json"

	"github.com/rekey-dev/rekey/internal/emulator/query"
)

// continuation is a query's x-ms-continuation. A streaming scan keeps a queue
// of EPK regions still to scan, each with the creation ordinal it has been
// scanned through, so a page can resume exactly where the last one stopped
// even if a partition split in between (its children are scanned from the
// same ordinal). A materialized query (ORDER BY, aggregates, ...) keeps the
// number of results already returned.
type continuation struct {
	Ranges  []scanRegion `json:"ranges,omitempty"`
	Emitted int64        `json:"n,omitempty"`    // results counted so far, for TOP and OFFSET LIMIT
	Skip    int          `json:"skip,omitempty"` // results returned so far (materialized)
	fresh   bool
}

type scanRegion struct {
	Min string `json:"min"`
	Max string `json:"max"`
	Seq uint64 `json:"seq"` // scanned through this creation ordinal
}

func decodeToken(s string) (continuation, *svcError) {
	if s == "" {
		return continuation{fresh: true}, nil
	}
	var t continuation
	if err := json.Unmarshal([]byte(s), &t); err != nil {
		return continuation{}, badRequest("Invalid continuation token %q: it was not issued by this emulator for this query.", truncate(s, 80))
	}
	return t, nil
}

func encodeToken(t continuation) string {
	if t.Ranges == nil && t.Skip == 0 {
		t.Ranges = []scanRegion{} // keep "ranges" so an empty queue still reads as a token
	}
	b, _ := json.Marshal(t)
	return string(b)
}

// streamPage runs one page of a streamable query, resuming from tok. A page
// that fills up always carries a continuation, even when nothing is left:
// like the service, the scan does not look ahead, so the last page may be
// empty.
func (c *container) streamPage(b *query.Bound, scope queryScope, tok continuation, maxCount int) (queryPage, *svcError) {
	queue := tok.Ranges
	if tok.fresh {
		queue = []scanRegion{{Min: scope.region.Min, Max: scope.region.Max}}
	}
	cands, useCands := b.IDCandidates(c.pk.paths)
	star := b.Query().Shape().IsSelectStar && !b.Query().Shape().HasJoin
	top := b.Top()
	offset, limit := b.OffsetLimit()
	emitted := tok.Emitted
	var page queryPage
	done := false // TOP or LIMIT reached
	var vals []query.Value
	var qerr error

	for len(queue) > 0 && !done {
		head := queue[0]
		full := false
		for _, p := range c.overlapping(head.Min, head.Max) {
			lo, hi := maxEPK2(head.Min, p.min), minEPK2(head.Max, p.max)
			last := head.Seq
			scope.scanItems(p, lo, hi, head.Seq, cands, useCands, func(it *item) bool {
				page.examined++
				last = it.seq
				vals, qerr = b.MatchAppend(vals[:0], query.Raw(it.doc))
				if qerr != nil {
					return false
				}
				for _, v := range vals {
					k := emitted
					emitted++
					if (top >= 0 && k >= top) || (limit >= 0 && k >= offset+limit) {
						done = true
						return false
					}
					if k < offset {
						continue
					}
					doc := it.doc
					if !star {
						doc = v.AppendJSON(nil)
					}
					page.docs = append(page.docs, doc)
					page.bytes += len(doc)
				}
				if (top >= 0 && emitted >= top) || (limit >= 0 && emitted >= offset+limit) {
					done = true
					return false
				}
				full = len(page.docs) >= maxCount || page.bytes >= maxResponseBytes
				return !full
			})
			if qerr != nil {
				return queryPage{}, queryError(qerr)
			}
			if done {
				break
			}
			if full {
				rest := []scanRegion{{Min: lo, Max: hi, Seq: last}}
				if compareEPK(hi, head.Max) < 0 {
					rest = append(rest, scanRegion{Min: hi, Max: head.Max, Seq: head.Seq})
				}
				queue = append(rest, queue[1:]...)
				break
			}
		}
		if done {
			break
		}
		if full {
			page.next = &continuation{Ranges: queue, Emitted: emitted}
			return page, nil
		}
		queue = queue[1:]
	}
	return page, nil
}

// materializedPage runs the whole query over the scope and returns the page
// after tok.Skip results; the scope is one logical partition or one range.
func (c *container) materializedPage(b *query.Bound, scope queryScope, tok continuation, maxCount int) (queryPage, *svcError) {
	var page queryPage
	docs := func(yield func(query.Value) bool) {
		for _, p := range c.overlapping(scope.region.Min, scope.region.Max) {
			lo, hi := maxEPK2(scope.region.Min, p.min), minEPK2(scope.region.Max, p.max)
			stop := false
			scope.scanItems(p, lo, hi, 0, nil, false, func(it *item) bool {
				page.examined++
				if !yield(query.Raw(it.doc)) {
					stop = true
					return false
				}
				return true
			})
			if stop {
				return
			}
		}
	}
	results, err := b.Run(docs)
	if err != nil {
		return queryPage{}, queryError(err)
	}
	skip := min(tok.Skip, len(results))
	end := min(skip+maxCount, len(results))
	for _, r := range results[skip:end] {
		doc := r.AppendJSON(nil)
		page.docs = append(page.docs, doc)
		page.bytes += len(doc)
	}
	if end < len(results) {
		page.next = &continuation{Skip: end}
	}
	return page, nil
}

func maxEPK2(a, b string) string {
	if compareEPK(a, b) >= 0 {
		return a
	}
	return b
}

func minEPK2(a, b string) string {
	if compareEPK(a, b) <= 0 {
		return a
	}
	return b
}
