package emulator

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxResponseBytes caps one page of documents, as the service caps responses
// at about 4 MB whatever the page size asked for.
const maxResponseBytes = 4 * 1024 * 1024

// defaultPageSize is the page size when x-ms-max-item-count is absent.
const defaultPageSize = 100

// readChangeFeed answers a change-feed read (GET .../docs with A-IM:
// Incremental Feed) in latest-version mode: each live item of the scope once,
// at its latest version, in LSN order; deleted items do not appear.
//
// Scope: one partition key range (x-ms-documentdb-partitionkeyrangeid; 410
// with substatus 1002 once that range has split), optionally narrowed to an
// EPK window (x-ms-start-epk / x-ms-end-epk, see epkSubRange), or one
// logical partition (x-ms-documentdb-partitionkey). Start: after the LSN in If-None-Match (the
// ETag of a previous page), now for If-None-Match: *, else from the time in
// If-Modified-Since, else from the beginning. The response ETag is the
// continuation; 304 Not Modified when nothing is new.
//
// LSNs are container-wide, so a continuation taken on a parent range stays
// valid on its children after a split: nothing is missed or replayed.
func (e *Emulator) readChangeFeed(w http.ResponseWriter, rc *requestContext, c *container) error {
	maxCount, err := maxItemCount(rc)
	if err != nil {
		return err
	}
	var since time.Time
	if ims := rc.header("If-Modified-Since"); ims != "" {
		t, perr := parseHTTPDate(ims)
		if perr != nil {
			return badRequest("The If-Modified-Since header %q is not an HTTP date.", ims)
		}
		since = t
	}
	var pkFilter string
	var pk []any
	if h := rc.header("x-ms-documentdb-partitionkey"); h != "" {
		vals, perr := parsePKHeader(h)
		if perr != nil {
			return perr
		}
		pk, pkFilter = vals, pkKeyOf(vals)
	}

	c.mu.Lock()
	c.sweepExpired()
	p, serr := c.feedScope(rc.header("x-ms-documentdb-partitionkeyrangeid"), pk)
	if serr != nil {
		c.mu.Unlock()
		return serr
	}
	window, narrowed, werr := epkSubRange(rc, p)
	if werr != nil {
		c.mu.Unlock()
		return werr
	}
	if aerr := e.admitRequest(rc, c, p); aerr != nil {
		c.mu.Unlock()
		return aerr
	}
	after, perr := feedStart(rc.header("If-None-Match"), c.lsn)
	if perr != nil {
		c.mu.Unlock()
		return perr
	}
	var docs [][]byte
	var sizes []int
	size, last := 0, uint64(0)
	p.byLSN.AscendGreaterOrEqual(&item{lsn: after + 1}, func(it *item) bool {
		if pkFilter != "" && it.pkKey != pkFilter {
			return true
		}
		if narrowed && !window.Contains(it.epk) {
			return true
		}
		if !since.IsZero() && it.mtime.Before(since) {
			return true
		}
		doc := withLSN(nil, it.doc, it.lsn)
		docs = append(docs, doc)
		sizes = append(sizes, len(it.doc))
		size += len(doc)
		last = it.lsn
		return len(docs) < maxCount && size < maxResponseBytes
	})
	next := c.lsn
	if len(docs) == maxCount || size >= maxResponseBytes {
		next = last // a full page: more may follow, continue right after it
	}
	if next < after {
		next = after
	}
	ru := feedCost(sizes)
	c.charge(p, ru)
	c.mu.Unlock()

	rc.charge += ru
	setCommon(w, rc, p.id, next)
	h := w.Header()
	h.Set("etag", strconv.Quote(strconv.FormatUint(next, 10)))
	h.Set("x-ms-item-count", strconv.Itoa(len(docs)))
	h.Set("x-ms-documentdb-partitionkeyrangeid", p.id)
	if len(docs) == 0 {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	writeRaw(w, http.StatusOK, documentsPage(c.rid, docs))
	return nil
}

// feedScope resolves the partition a change-feed or query request targets by
// range id or partition key; c.mu must be held.
func (c *container) feedScope(rangeID string, pk []any) (*partition, *svcError) {
	switch {
	case rangeID != "":
		p, ok := c.rangeByID[rangeID]
		if !ok {
			return nil, newError(http.StatusNotFound, "The partition key range %q does not exist in container %s.", rangeID, c.link())
		}
		if p.gone {
			return nil, pkRangeGone(rangeID)
		}
		return p, nil
	case pk != nil:
		return c.partitionFor(c.epkOf(pk)), nil
	default:
		return nil, badRequest("The change feed of a partitioned container is read per partition key range or per partition key: set x-ms-documentdb-partitionkeyrangeid or x-ms-documentdb-partitionkey.")
	}
}

// feedStart turns If-None-Match into the LSN to read after.
func feedStart(inm string, current uint64) (uint64, *svcError) {
	switch inm {
	case "":
		return 0, nil
	case "*":
		return current, nil
	}
	n, err := strconv.ParseUint(strings.Trim(inm, `"`), 10, 64)
	if err != nil {
		return 0, badRequest("The If-None-Match continuation %q is not a change-feed ETag of this emulator.", truncate(inm, 80))
	}
	return n, nil
}

// maxItemCount reads x-ms-max-item-count; -1 or absent means the default page.
func maxItemCount(rc *requestContext) (int, *svcError) {
	h := rc.header("x-ms-max-item-count")
	if h == "" {
		return defaultPageSize, nil
	}
	n, err := strconv.Atoi(h)
	if err != nil || n == 0 || n < -1 {
		return 0, badRequest("The x-ms-max-item-count header %q is invalid: use -1 or a positive number.", h)
	}
	if n == -1 {
		return 1000, nil
	}
	return n, nil
}

// documentsPage renders {"_rid":..., "Documents":[...], "_count":n}.
func documentsPage(rid string, docs [][]byte) []byte {
	return feedPage("Documents", rid, docs)
}

func feedPage(field, rid string, docs [][]byte) []byte {
	n := 64
	for _, d := range docs {
		n += len(d) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, `{"_rid":`...)
	b = strconv.AppendQuote(b, rid)
	b = append(b, `,"`...)
	b = append(b, field...)
	b = append(b, `":[`...)
	for i, d := range docs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, d...)
	}
	b = append(b, `],"_count":`...)
	b = strconv.AppendInt(b, int64(len(docs)), 10)
	return append(b, '}')
}

// parseHTTPDate reads an HTTP date; it also takes RFC 1123 with a zone name
// other than GMT (the Go SDK writes If-Modified-Since with "UTC").
func parseHTTPDate(s string) (time.Time, error) {
	if t, err := http.ParseTime(s); err == nil {
		return t, nil
	}
	return time.Parse(time.RFC1123, s)
}
