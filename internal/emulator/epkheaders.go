package emulator

import (
	"strings"

	"github.com/rekey-dev/rekey/internal/epk"
)

// epkSubRange reads the EPK window a request narrows its partition key range
// to: x-ms-start-epk and x-ms-end-epk with x-ms-read-key-type:
// EffectivePartitionKeyRange. The SDKs send them, next to
// x-ms-documentdb-partitionkeyrangeid, when the feed range or query range
// they read covers only part of a physical partition: a feed range after a
// split, a hierarchical partition key prefix, a range from
// Container.getFeedRanges narrowed by the caller (azure-sdk-for-js
// src/ClientContext.ts queryFeed; src/client/ChangeFeed/ChangeFeedForEpkRange.ts
// getFeedResponse; .NET FeedRangeEpk). The window is intersected with p's own
// range; ok is false when the request names no window.
func epkSubRange(rc *requestContext, p *partition) (r epk.Range, ok bool, err *svcError) {
	start, end := rc.r.Header["X-Ms-Start-Epk"], rc.r.Header["X-Ms-End-Epk"]
	if start == nil && end == nil {
		return epk.Range{}, false, nil
	}
	if kt := rc.header("x-ms-read-key-type"); kt != "" && !strings.EqualFold(kt, "EffectivePartitionKeyRange") {
		return epk.Range{}, false, badRequest("The x-ms-read-key-type %q is not supported with x-ms-start-epk and x-ms-end-epk: use EffectivePartitionKeyRange.", kt)
	}
	if start == nil || end == nil {
		return epk.Range{}, false, badRequest("x-ms-start-epk and x-ms-end-epk must be sent together.")
	}
	lo, hi := strings.ToUpper(start[0]), strings.ToUpper(end[0])
	for _, s := range []string{lo, hi} {
		for i := 0; i < len(s); i++ {
			if !strings.ContainsRune("0123456789ABCDEF", rune(s[i])) {
				return epk.Range{}, false, badRequest("The effective partition key %q in x-ms-start-epk or x-ms-end-epk is not hexadecimal.", truncate(s, 80))
			}
		}
	}
	r = epk.Range{Min: maxEPK2(lo, p.min), Max: minEPK2(hi, p.max)}
	if hi == maxEPK {
		r.Max = p.max
	}
	return r, true, nil
}
