package emulator

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// The all-versions-and-deletes change feed
// (https://learn.microsoft.com/azure/cosmos-db/nosql/change-feed-modes):
// every create, replace and delete of a container, TTL expiries included,
// kept for the retention its changeFeedPolicy names. docs/emulator.md
// describes the wire shape with its sources.

// fullFidelityFeed is the A-IM value of the all-versions-and-deletes change
// feed (azure-sdk-for-js src/client/ChangeFeed/ChangeFeedMode.ts; .NET
// HttpConstants.A_IMHeaderValues.FullFidelityFeed). The SDKs send it with
// x-ms-cosmos-changefeed-wire-format-version: 2021-09-15.
const fullFidelityFeed = "Full-Fidelity Feed"

// changeKind is a change's operationType on the wire.
type changeKind string

const (
	changeCreate  changeKind = "create"
	changeReplace changeKind = "replace"
	changeDelete  changeKind = "delete"
)

// change is one entry of a container's all-versions log.
type change struct {
	kind       changeKind
	lsn        uint64
	prevLSN    uint64 // the LSN of the version this change replaced or deleted; 0 for a create
	at         time.Time
	crts       int64 // conflict-resolution timestamp: the change's _ts, seconds
	epk        string
	pkKey      string
	pk         []any
	id         string
	current    []byte // the new version (create, replace)
	previous   []byte // the deleted version (delete)
	ttlExpired bool
}

// versionLog is a container's all-versions log while its changeFeedPolicy
// keeps one: changes in LSN order, and the highest LSN whose change is no
// longer kept (pruned past the retention, or made before the log started).
type versionLog struct {
	retention time.Duration // 0: no policy, nothing is kept
	changes   []change
	goneLSN   uint64
}

// setPolicy applies a changeFeedPolicy's retention; c.mu is held. Turning
// the policy on starts an empty log: earlier changes were never kept.
func (c *container) setPolicy(retention time.Duration) {
	if retention > 0 && c.versions.retention == 0 {
		c.versions.changes = nil
		c.versions.goneLSN = c.lsn
	}
	if retention == 0 {
		c.versions.changes = nil
	}
	c.versions.retention = retention
}

// recordChange appends a change when the container keeps versions; c.mu is
// held.
func (c *container) recordChange(ch change) {
	if c.versions.retention == 0 {
		return
	}
	ch.at = c.clock()
	c.versions.changes = append(c.versions.changes, ch)
}

// pruneVersions drops changes older than the retention; c.mu is held.
func (c *container) pruneVersions() {
	v := &c.versions
	cut := c.clock().Add(-v.retention)
	n := 0
	for n < len(v.changes) && v.changes[n].at.Before(cut) {
		v.goneLSN = v.changes[n].lsn
		n++
	}
	if n > 0 {
		v.changes = append(v.changes[:0], v.changes[n:]...)
	}
}

// parseChangeFeedPolicy reads a container's changeFeedPolicy:
// {"retentionDuration": minutes} (.NET ChangeFeedPolicy,
// azure-sdk-for-js src/client/ChangeFeed/ChangeFeedPolicy.ts).
func parseChangeFeedPolicy(raw []byte) (time.Duration, *svcError) {
	if raw == nil || string(raw) == "null" {
		return 0, nil
	}
	var p struct {
		RetentionDuration *float64 `json:"retentionDuration"`
	}
	if err := json.Unmarshal(raw, &p); err != nil || p.RetentionDuration == nil {
		return 0, badRequest("The changeFeedPolicy %s is invalid: want {\"retentionDuration\": minutes}.", truncate(string(raw), 120))
	}
	m := *p.RetentionDuration
	if m < 0 || m != float64(int64(m)) {
		return 0, badRequest("The changeFeedPolicy retentionDuration %v is invalid: use a whole, non-negative number of minutes.", m)
	}
	return time.Duration(m) * time.Minute, nil
}

// readAllVersionsFeed answers A-IM: Full-Fidelity Feed for one partition key
// range (optionally narrowed by x-ms-start-epk / x-ms-end-epk) or one
// partition key. As with the service it starts only from now
// (If-None-Match: *) or from a continuation (the ETag of an earlier page);
// it answers 400 when the container has no changeFeedPolicy, for a start
// from the beginning or from a point in time, and for a continuation whose
// changes have left the retention window. LSNs are container-wide, so a
// continuation stays valid across splits.
func (e *Emulator) readAllVersionsFeed(w http.ResponseWriter, rc *requestContext, c *container) error {
	maxCount, err := maxItemCount(rc)
	if err != nil {
		return err
	}
	var pk []any
	pkFilter := ""
	if h := rc.header("x-ms-documentdb-partitionkey"); h != "" {
		vals, perr := parsePKHeader(h)
		if perr != nil {
			return perr
		}
		pk, pkFilter = vals, pkKeyOf(vals)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sweepExpired()
	if c.versions.retention == 0 {
		return badRequest("The all versions and deletes change feed (A-IM: Full-Fidelity Feed) is not enabled on container %s: set a changeFeedPolicy with a retentionDuration, or enable continuous backup on the account.", c.link())
	}
	p, serr := c.feedScope(rc.header("x-ms-documentdb-partitionkeyrangeid"), pk)
	if serr != nil {
		return serr
	}
	window, narrowed, werr := epkSubRange(rc, p)
	if werr != nil {
		return werr
	}
	inm := rc.header("If-None-Match")
	switch {
	case inm == "" && rc.header("If-Modified-Since") != "":
		return badRequest("The all versions and deletes change feed starts from now or from a continuation token, not from a point in time.")
	case inm == "":
		return badRequest("The all versions and deletes change feed starts from now or from a continuation token, not from the beginning.")
	}
	after, perr := feedStart(inm, c.lsn)
	if perr != nil {
		return perr
	}
	c.pruneVersions()
	if after < c.versions.goneLSN {
		return badRequest("The continuation token of the all versions and deletes change feed is out of the retention window of %s: changes up to LSN %d are no longer kept.", c.versions.retention, c.versions.goneLSN)
	}
	if aerr := e.admitRequest(rc, c, p); aerr != nil {
		return aerr
	}
	var docs [][]byte
	var sizes []int
	size, last := 0, uint64(0)
	for i := range c.versions.changes {
		ch := &c.versions.changes[i]
		if ch.lsn <= after {
			continue
		}
		if pkFilter != "" && ch.pkKey != pkFilter {
			continue
		}
		if !p.holds(ch.epk) || (narrowed && !window.Contains(ch.epk)) {
			continue
		}
		doc := c.renderChange(ch)
		docs = append(docs, doc)
		sizes = append(sizes, len(doc))
		size += len(doc)
		last = ch.lsn
		if len(docs) >= maxCount || size >= maxResponseBytes {
			break
		}
	}
	next := c.lsn
	if len(docs) >= maxCount || size >= maxResponseBytes {
		next = last
	}
	if next < after {
		next = after
	}
	ru := feedCost(sizes)
	c.charge(p, ru)
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

// renderChange writes one change in the service's wire format
// (x-ms-cosmos-changefeed-wire-format-version 2021-09-15):
//
//	{"current": {...}, "previous": {...}, "metadata": {"operationType": "create",
//	 "lsn": 7, "crts": 1700000000, "previousImageLSN": 5,
//	 "timeToLiveExpired": false, "id": "...", "partitionKey": {"pk": "a"}}}
//
// current is the new version (an empty object for a delete); previous,
// timeToLiveExpired, id and partitionKey appear on deletes only;
// previousImageLSN on replaces and deletes. Names follow .NET
// ChangeFeedMetadata and the Azure Functions CosmosDBv4ChangeFeedMetadata
// reference, which documents them as the wire names.
func (c *container) renderChange(ch *change) []byte {
	b := make([]byte, 0, len(ch.current)+len(ch.previous)+256)
	b = append(b, `{"current":`...)
	if ch.current != nil {
		b = withLSN(b, ch.current, ch.lsn)
	} else {
		b = append(b, "{}"...)
	}
	if ch.previous != nil {
		b = append(b, `,"previous":`...)
		b = append(b, ch.previous...)
	}
	b = append(b, `,"metadata":{"operationType":"`...)
	b = append(b, ch.kind...)
	b = append(b, `","lsn":`...)
	b = strconv.AppendUint(b, ch.lsn, 10)
	b = append(b, `,"crts":`...)
	b = strconv.AppendInt(b, ch.crts, 10)
	if ch.prevLSN > 0 {
		b = append(b, `,"previousImageLSN":`...)
		b = strconv.AppendUint(b, ch.prevLSN, 10)
	}
	if ch.kind == changeDelete {
		b = append(b, `,"timeToLiveExpired":`...)
		b = strconv.AppendBool(b, ch.ttlExpired)
		b = append(b, `,"id":`...)
		b = append(b, jsonQuote(ch.id)...)
		b = append(b, `,"partitionKey":`...)
		b = append(b, c.pkObject(ch.pk)...)
	}
	return append(b, "}}"...)
}

// pkObject renders a partition key as the metadata's partitionKey: each
// key path's last property name with its value.
func (c *container) pkObject(pk []any) []byte {
	obj := make([]byte, 0, 64)
	obj = append(obj, '{')
	for i, steps := range c.pk.paths {
		if i > 0 {
			obj = append(obj, ',')
		}
		obj = append(obj, jsonQuote(steps[len(steps)-1])...)
		obj = append(obj, ':')
		var v any
		if i < len(pk) {
			v = pk[i]
		}
		if _, undef := v.(undefined); undef {
			v = map[string]any{}
		}
		raw, _ := json.Marshal(v)
		obj = append(obj, raw...)
	}
	return append(obj, '}')
}
