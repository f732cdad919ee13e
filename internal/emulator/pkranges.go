package emulator

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
)

type pkRangeDoc struct {
	ID                 string   `json:"id"`
	RID                string   `json:"_rid"`
	Self               string   `json:"_self"`
	ETag               string   `json:"_etag"`
	MinInclusive       string   `json:"minInclusive"`
	MaxExclusive       string   `json:"maxExclusive"`
	RIDPrefix          int      `json:"ridPrefix"`
	ThroughputFraction float64  `json:"throughputFraction"`
	Status             string   `json:"status"`
	Parents            []string `json:"parents"`
	TS                 int64    `json:"_ts"`
	LSN                uint64   `json:"lsn"`
}

// readPKRanges answers GET .../pkranges: the container's partition key
// ranges. With A-IM: Incremental Feed and If-None-Match set to the ETag of an
// earlier answer, only the ranges created since (the children of splits, which
// name their parents) are returned, and 304 when there are none; the SDK's
// routing map merges them and drops the parents.
func (e *Emulator) readPKRanges(w http.ResponseWriter, rc *requestContext, c *container) error {
	incremental := strings.EqualFold(rc.header("A-IM"), "Incremental Feed")
	since := 0
	if inm := rc.header("If-None-Match"); inm != "" {
		n, err := strconv.Atoi(strings.Trim(inm, `"`))
		if err != nil {
			return badRequest("The If-None-Match value %q is not a partition key range feed ETag.", inm)
		}
		since = n
	}
	c.mu.Lock()
	version := len(c.rangeLog)
	var ranges []*partition
	if incremental && since > 0 {
		for _, p := range c.rangeLog[min(since, version):] {
			ranges = append(ranges, p)
		}
	} else {
		ranges = append(ranges, c.ranges...)
	}
	docs := make([][]byte, 0, len(ranges))
	fraction := 1 / float64(len(c.ranges))
	for _, p := range ranges {
		doc := pkRangeDoc{
			ID: p.id, RID: p.rid, Self: c.self() + "pkranges/" + p.rid + "/",
			ETag:         "\"" + strconv.Itoa(p.logIndex) + "\"",
			MinInclusive: p.min, MaxExclusive: p.max,
			RIDPrefix: p.logIndex - 1, ThroughputFraction: fraction, Status: "online",
			Parents: append([]string{}, p.parents...), TS: p.ts, LSN: c.lsn,
		}
		b, _ := json.Marshal(doc)
		docs = append(docs, b)
	}
	c.mu.Unlock()

	rc.charge = metadataReadRU
	setCommon(w, rc, "", 0)
	w.Header().Set("etag", "\""+strconv.Itoa(version)+"\"")
	if incremental && len(docs) == 0 {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	writeRaw(w, http.StatusOK, feedPage("PartitionKeyRanges", c.rid, docs))
	return nil
}
