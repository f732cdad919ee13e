package cosmos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"sync"

	"github.com/rekey-dev/rekey/internal/epk"
	"github.com/rekey-dev/rekey/migrate"
)

// PartitionKeyRange is one physical partition of a container: the range id
// the service routes by (x-ms-documentdb-partitionkeyrangeid) and its EPK
// range [Min, Max). Min "" is the bottom of the key space, Max "FF" its top.
type PartitionKeyRange struct {
	ID  string
	Min string
	Max string
}

// maxRangePages bounds the pages of one read of the partition key range
// feed, as azcosmos's maxChangeFeedIterations does.
const maxRangePages = 1000

// ErrIncompleteRanges is wrapped by the error of a range read whose ranges
// do not cover the key space exactly once, which the service answers for a
// moment during a split; a later read succeeds.
var ErrIncompleteRanges = errors.New("the partition key ranges do not cover the key space")

// routingCache holds the known partition key ranges of each container of a
// Client, keyed by "db/coll".
type routingCache struct {
	mu sync.Mutex
	m  map[string]*routing
}

// routing is one container's known ranges and the partition key range
// feed's ETag they were read at.
type routing struct {
	mu     sync.Mutex // one refresh at a time
	ranges []PartitionKeyRange
	etag   string
	stale  bool // a request met 410: re-read before the next use
}

// entry returns the routing of container key, creating it.
func (rc *routingCache) entry(key string) *routing {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.m == nil {
		rc.m = map[string]*routing{}
	}
	r, ok := rc.m[key]
	if !ok {
		r = &routing{}
		rc.m[key] = r
	}
	return r
}

// PartitionKeyRanges lists the container's physical partitions, ordered by
// Min and covering the key space. Each call asks the service whether the
// ranges changed since the last read (If-None-Match on the partition key
// range feed, answered 304 when not, costing about one RU), so the list is
// current; a split's children replace their parent.
//
// Errors: ErrNotFound when the container does not exist; an error wrapping
// ErrIncompleteRanges while a split is being published (retry); any other
// failure classified as for every request.
func (c *Container) PartitionKeyRanges(ctx context.Context) ([]PartitionKeyRange, error) {
	ranges, err := c.partitionKeyRanges(ctx, true)
	return append([]PartitionKeyRange(nil), ranges...), err
}

// partitionKeyRanges returns the known ranges, reading them first when
// none are known, a 410 made them stale, or check asks to confirm them.
// The slice is shared: callers must not modify it.
func (c *Container) partitionKeyRanges(ctx context.Context, check bool) ([]PartitionKeyRange, error) {
	if c.err != nil {
		return nil, c.err
	}
	r := c.client.routing.entry(c.String())
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ranges != nil && !r.stale && !check {
		return r.ranges, nil
	}
	if err := c.refreshRanges(ctx, r); err != nil {
		return nil, err
	}
	return r.ranges, nil
}

// invalidateRanges marks the known ranges stale after a request met a
// split or merge (410), so the next use re-reads them.
func (c *Container) invalidateRanges() {
	r := c.client.routing.entry(c.String())
	r.mu.Lock()
	r.stale = true
	r.mu.Unlock()
}

// refreshRanges brings r up to date: incrementally from its ETag when it
// has ranges (only new ranges come back, and their parents leave), in full
// otherwise or when the increment does not fit. r.mu is held.
func (c *Container) refreshRanges(ctx context.Context, r *routing) error {
	if r.ranges != nil {
		added, etag, err := c.readRangeFeed(ctx, r.etag)
		if err != nil {
			return err
		}
		if merged, ok := mergeRanges(r.ranges, added); ok {
			r.ranges, r.etag, r.stale = merged, etag, false
			return nil
		}
	}
	all, etag, err := c.readRangeFeed(ctx, "")
	if err != nil {
		return err
	}
	merged, ok := mergeRanges(nil, all)
	if !ok {
		return fmt.Errorf("read partition key ranges of %s: %w (%d listed)", c, ErrIncompleteRanges, len(all))
	}
	r.ranges, r.etag, r.stale = merged, etag, false
	return nil
}

// rangeDoc is a partition key range as the service lists it.
type rangeDoc struct {
	ID      string   `json:"id"`
	Min     string   `json:"minInclusive"`
	Max     string   `json:"maxExclusive"`
	Parents []string `json:"parents"`
}

// readRangeFeed reads the container's partition key range feed the way
// azcosmos's fetchAllChangeFeedPages does: GET .../pkranges with A-IM:
// Incremental Feed and x-ms-max-item-count: -1, from etag (all ranges when
// empty) page by page, each page's ETag the next page's If-None-Match,
// until the service answers 304. It returns the ranges listed and the last
// ETag.
func (c *Container) readRangeFeed(ctx context.Context, etag string) ([]rangeDoc, string, error) {
	op := "read partition key ranges of " + c.String()
	var out []rangeDoc
	for range maxRangePages {
		h := http.Header{}
		h.Set(headerAIM, headerValueIncrement)
		h.Set(headerMaxItemCount, "-1")
		if etag != "" {
			h.Set(headerIfNoneMatch, etag)
		}
		resp, err := c.client.send(ctx, rawRequest{
			op: op, method: http.MethodGet, header: h,
			target: rawTarget{resourceType: resourcePKRanges, link: containerLink(c.db, c.id)},
			path:   containerPath(c.db, c.id, resourcePKRanges),
		})
		if err != nil {
			return nil, "", err
		}
		if e := resp.header.Get(headerETag); e != "" {
			etag = e
		}
		if resp.status == http.StatusNotModified {
			return out, etag, nil
		}
		var page struct {
			Ranges []rangeDoc `json:"PartitionKeyRanges"`
		}
		if err := json.Unmarshal(resp.body, &page); err != nil {
			return nil, "", fmt.Errorf("%s: the answer is not a list of ranges: %w", op, err)
		}
		out = append(out, page.Ranges...)
		if etag == "" {
			return nil, "", fmt.Errorf("%s: the answer has no ETag to continue from", op)
		}
	}
	return nil, "", fmt.Errorf("%s: no end after %d pages", op, maxRangePages)
}

// mergeRanges applies added (new ranges, each naming the parents it
// replaces) to known, as azcosmos's tryCombine does, and reports whether
// the result covers the key space exactly once.
func mergeRanges(known []PartitionKeyRange, added []rangeDoc) ([]PartitionKeyRange, bool) {
	gone := map[string]bool{}
	for _, d := range added {
		for _, p := range d.Parents {
			gone[p] = true
		}
	}
	byID := map[string]PartitionKeyRange{}
	for _, r := range known {
		if !gone[r.ID] {
			byID[r.ID] = r
		}
	}
	for _, d := range added {
		if !gone[d.ID] {
			byID[d.ID] = PartitionKeyRange{ID: d.ID, Min: d.Min, Max: d.Max}
		}
	}
	out := make([]PartitionKeyRange, 0, len(byID))
	for _, r := range byID {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return epk.Compare(out[i].Min, out[j].Min) < 0 })
	return out, covers(out)
}

// covers reports whether sorted ranges tile [MinEPK, MaxEPK) with no gap
// or overlap.
func covers(ranges []PartitionKeyRange) bool {
	if len(ranges) == 0 || ranges[0].Min != epk.MinEPK || ranges[len(ranges)-1].Max != epk.MaxEPK {
		return false
	}
	for i := 1; i < len(ranges); i++ {
		if epk.Compare(ranges[i].Min, ranges[i-1].Max) != 0 {
			return false
		}
	}
	return true
}

// overlappingRanges returns the known ranges that share keys with
// [min, max), reading them when none are known or they are stale.
func (c *Container) overlappingRanges(ctx context.Context, min, max string) ([]PartitionKeyRange, error) {
	ranges, err := c.partitionKeyRanges(ctx, false)
	if err != nil {
		return nil, err
	}
	first, end := epk.Overlapping(epkRanges(ranges), epk.Range{Min: min, Max: max})
	if first == end {
		return nil, fmt.Errorf("read partition key ranges of %s: none overlaps [%s, %s)", c, min, max)
	}
	return append([]PartitionKeyRange(nil), ranges[first:end]...), nil
}

// RangeOfKey returns the physical partition that holds partition key key,
// from the known ranges (read once, and again after a 410), without a
// request when they are known. A bulk request for the key goes to its ID.
//
// Errors: the container's definition or ranges could not be read; the key
// does not fit the container's definition (wrong number of components).
func (c *Container) RangeOfKey(ctx context.Context, key migrate.Key) (PartitionKeyRange, error) {
	if c.err != nil {
		return PartitionKeyRange{}, c.err
	}
	def, err := c.cachedDefinition(ctx)
	if err != nil {
		return PartitionKeyRange{}, err
	}
	h, err := key.EPK(def.EPK())
	if err != nil {
		return PartitionKeyRange{}, fmt.Errorf("partition key %s of %s: %w", key.String(), c, err)
	}
	ranges, err := c.partitionKeyRanges(ctx, false)
	if err != nil {
		return PartitionKeyRange{}, err
	}
	i, ok := epk.Find(epkRanges(ranges), h)
	if !ok {
		return PartitionKeyRange{}, fmt.Errorf("partition key %s of %s: no range holds its EPK %s", key.String(), c, h)
	}
	return ranges[i], nil
}

func epkRanges(ranges []PartitionKeyRange) []epk.Range {
	out := make([]epk.Range, len(ranges))
	for i, r := range ranges {
		out[i] = epk.Range{Min: r.Min, Max: r.Max}
	}
	return out
}
