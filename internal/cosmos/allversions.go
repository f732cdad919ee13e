package cosmos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/rekey-dev/rekey/internal/epk"
	"github.com/rekey-dev/rekey/migrate"
)

// The all-versions-and-deletes change feed: every create, replace and
// delete (TTL expiries included) of a container with a change feed policy
// or continuous backup. docs/cosmos-change-feed.md describes the protocol
// and the sources it was checked against.

// Headers of an all-versions request (azure-sdk-for-js
// src/request/request.ts, ChangeFeedMode.AllVersionsAndDeletes; .NET
// ChangeFeedModeFullFidelity).
const (
	headerWireFormat      = "x-ms-cosmos-changefeed-wire-format-version"
	allVersionsAIM        = "Full-Fidelity Feed"
	allVersionsWireFormat = "2021-09-15"
	// startFromNow as If-None-Match starts a feed at the current end
	// (Constants.ChangeFeedIfNoneMatchStartFromNowHeader).
	startFromNow = "*"
	// maxGoneRetries bounds the 410s one call follows, as the SDKs'
	// MaxRetriesOn410 does.
	maxGoneRetries = 10
)

var (
	// ErrAllVersionsNotEnabled: the container cannot serve the
	// all-versions-and-deletes feed: it has no change feed policy and the
	// account no continuous backup. The service answers 400 even to a
	// start from now; read the latest-version feed instead. It is
	// migrate.ErrAllVersionsNotEnabled, which the pipeline decides on.
	ErrAllVersionsNotEnabled = migrate.ErrAllVersionsNotEnabled
	// ErrOutOfRetention: the continuation points at changes the service no
	// longer keeps (older than the change feed policy's retention). The
	// service answers 400; the same range still serves a start from now,
	// so the range must be reconciled and restarted from a new bookmark.
	// It is migrate.ErrOutOfRetention.
	ErrOutOfRetention = migrate.ErrOutOfRetention
)

// Operation types of a change's metadata.
const (
	ChangeCreate  = "create"
	ChangeReplace = "replace"
	ChangeDelete  = "delete"
)

// ChangeMetadata is a change's metadata as the service writes it
// (.NET ChangeFeedMetadata; Azure Functions' CosmosDBv4ChangeFeedMetadata).
type ChangeMetadata struct {
	OperationType string `json:"operationType"` // ChangeCreate, ChangeReplace or ChangeDelete
	LSN           int64  `json:"lsn"`
	// CRTS is the conflict-resolution timestamp, seconds since the epoch.
	CRTS float64 `json:"crts"`
	// PreviousImageLSN is the LSN of the version a replace or delete
	// superseded; 0 for a create.
	PreviousImageLSN  int64 `json:"previousImageLSN"`
	TimeToLiveExpired bool  `json:"timeToLiveExpired"` // a delete by TTL
	// ID and PartitionKey name the item of a delete, whose Current is
	// empty. PartitionKey is kept as the service writes it (an object of
	// key property names and values, per .NET's ChangeFeedMetadata).
	ID           string          `json:"id"`
	PartitionKey json.RawMessage `json:"partitionKey"`
}

// ChangeEntry is one change of the all-versions-and-deletes feed.
type ChangeEntry struct {
	// Current is the item after the change, with its system properties;
	// nil for a delete (the service sends an empty object).
	Current json.RawMessage
	// Previous is the item before the change when the service sends it
	// (deletes, where available); nil otherwise.
	Previous json.RawMessage
	// Metadata is parsed from MetadataJSON, the raw "metadata" object.
	Metadata     ChangeMetadata
	MetadataJSON json.RawMessage
}

// AllVersionsRequest asks for one page of a feed range's
// all-versions-and-deletes feed.
type AllVersionsRequest struct {
	Range migrate.FeedRange
	// Continuation is where to resume: a bookmark (AllVersionsBookmark) or
	// the Continuation of the previous page. Required: the mode starts
	// only from now or from a continuation.
	Continuation string
	// PageSize caps the changes of the page (x-ms-max-item-count); 0
	// leaves it to the service.
	PageSize int
}

// AllVersionsPage is one page of changes, from one physical partition
// under the feed range, in LSN order.
type AllVersionsPage struct {
	Changes []ChangeEntry
	// Continuation resumes after this page, for every part of the range;
	// it moves even when Changes is empty and must be kept.
	Continuation string
	RU           float64
}

// AllVersionsBookmark takes the position "now" of feed range fr's
// all-versions-and-deletes feed without reading any change: one request
// per physical partition under fr with If-None-Match: *, keeping the ETag
// each answers. Reading from the bookmark later returns every change made
// after it, as long as it stays within the retention window. Take it
// before a latest-version copy starts, so no change falls between the two.
//
// Errors: ErrAllVersionsNotEnabled (the service's 400 to a start from
// now); ErrNotFound; any other failure classified as for every request.
// A split during the call is followed.
func (c *Container) AllVersionsBookmark(ctx context.Context, fr migrate.FeedRange) (string, error) {
	if c.err != nil {
		return "", c.err
	}
	op := fmt.Sprintf("bookmark the all-versions change feed of %s range [%s, %s)", c, fr.Min, fr.Max)
	rid, err := c.resourceID(ctx)
	if err != nil {
		return "", err
	}
	tok := &allVersionsToken{Format: allVersionsFormat, RID: rid, Range: tokenRange{fr.Min, fr.Max},
		Positions: []position{{Min: fr.Min, Max: fr.Max, ETag: startFromNow}}}
	gone := 0
	for i := 0; i < len(tok.Positions); {
		p := tok.Positions[i]
		prs, err := c.overlappingRanges(ctx, p.Min, p.Max)
		if err != nil {
			return "", fmt.Errorf("%s: %w", op, err)
		}
		if len(prs) > 1 {
			tok.Positions = append(tok.Positions[:i], append(splitPosition(p, prs), tok.Positions[i+1:]...)...)
			continue
		}
		ans, err := c.fetchAllVersions(ctx, op, prs[0], p, 1)
		switch {
		case errors.Is(err, migrate.ErrGone) && gone < maxGoneRetries:
			gone++
			c.invalidateRanges()
			continue
		case statusOf(err) == http.StatusBadRequest:
			return "", fmt.Errorf("%w: %w", ErrAllVersionsNotEnabled, err)
		case err != nil:
			return "", err
		case len(ans.changes) > 0:
			return "", fmt.Errorf("%s: the service returned %d changes to a start from now", op, len(ans.changes))
		case ans.etag == "" || ans.etag == startFromNow:
			return "", fmt.Errorf("%s: the answer has no ETag to resume from", op)
		}
		tok.Positions[i].ETag = ans.etag
		i++
	}
	return tok.encode(), nil
}

// ReadAllVersions reads one page of a feed range's all-versions-and-deletes
// feed from req.Continuation, as the JavaScript SDK's ChangeFeedForEpkRange
// does: the parts of the range (one per physical partition) are read in
// turn; the first part with changes gives the page and moves to the end of
// the turn; when no part has changes the page is empty. A part whose
// partition split (410) is replaced by its children, which continue from
// its ETag, and the known ranges are re-read.
//
// Errors: ErrBadContinuation (a continuation this package did not produce
// for this container and range, or none); ErrOutOfRetention and
// ErrAllVersionsNotEnabled for the two 400s the mode has (the service
// gives them no distinct substatus, so a 400 to a continuation is told
// apart by asking the same partition for "now": a 400 again means the
// mode is not enabled); both also match migrate.ErrBadRequest and carry
// the *migrate.RequestError. Other failures are classified as for every
// request.
func (c *Container) ReadAllVersions(ctx context.Context, req AllVersionsRequest) (AllVersionsPage, error) {
	if c.err != nil {
		return AllVersionsPage{}, c.err
	}
	op := fmt.Sprintf("read the all-versions change feed of %s range [%s, %s)", c, req.Range.Min, req.Range.Max)
	if req.Continuation == "" {
		return AllVersionsPage{}, fmt.Errorf("%s: %w (none given: start from AllVersionsBookmark)", op, ErrBadContinuation)
	}
	rid, err := c.resourceID(ctx)
	if err != nil {
		return AllVersionsPage{}, err
	}
	tok, err := decodeToken(req.Continuation, rid, req.Range)
	if err != nil {
		return AllVersionsPage{}, fmt.Errorf("%s: %w", op, err)
	}
	var page AllVersionsPage
	gone := 0
	for visited := 0; visited < len(tok.Positions); {
		p := tok.Positions[0]
		prs, err := c.overlappingRanges(ctx, p.Min, p.Max)
		if err != nil {
			return AllVersionsPage{}, fmt.Errorf("%s: %w", op, err)
		}
		if len(prs) > 1 {
			tok.split(prs)
			continue
		}
		ans, err := c.fetchAllVersions(ctx, op, prs[0], p, req.PageSize)
		page.RU += ans.ru + errorRU(err)
		switch {
		case errors.Is(err, migrate.ErrGone) && gone < maxGoneRetries:
			gone++
			c.invalidateRanges()
			continue
		case statusOf(err) == http.StatusBadRequest:
			return AllVersionsPage{}, c.classifyAllVersions400(ctx, op, prs[0], p, err)
		case err != nil:
			return AllVersionsPage{}, err
		}
		if ans.etag != "" && ans.etag != startFromNow {
			tok.Positions[0].ETag = ans.etag
		}
		tok.rotate()
		visited++
		if len(ans.changes) > 0 {
			page.Changes = ans.changes
			break
		}
	}
	page.Continuation = tok.encode()
	return page, nil
}

// classifyAllVersions400 tells the two 400s of a read from a continuation
// apart by asking partition pr for "now": if that is refused too, the mode
// is not enabled; if it is served, the continuation left the retention.
func (c *Container) classifyAllVersions400(ctx context.Context, op string, pr PartitionKeyRange, p position, err400 error) error {
	_, probe := c.fetchAllVersions(ctx, op+" (probe from now)", pr, position{Min: p.Min, Max: p.Max, ETag: startFromNow}, 1)
	switch {
	case probe == nil:
		return fmt.Errorf("%w: %w", ErrOutOfRetention, err400)
	case statusOf(probe) == http.StatusBadRequest:
		return fmt.Errorf("%w: %w", ErrAllVersionsNotEnabled, err400)
	}
	return fmt.Errorf("%w (and asking for the current position failed: %v)", err400, probe)
}

// feedAnswer is the service's answer for one position: its new ETag and
// the changes after the old one (none on a 304).
type feedAnswer struct {
	etag    string
	changes []ChangeEntry
	ru      float64
}

// fetchAllVersions reads one page of physical partition pr's
// all-versions feed after p.ETag ("*" for now), narrowed to [p.Min, p.Max)
// with x-ms-start-epk/x-ms-end-epk when p covers only part of pr.
func (c *Container) fetchAllVersions(ctx context.Context, op string, pr PartitionKeyRange, p position, pageSize int) (feedAnswer, error) {
	h := http.Header{}
	h.Set(headerAIM, allVersionsAIM)
	h.Set(headerWireFormat, allVersionsWireFormat)
	h.Set(headerIfNoneMatch, p.ETag)
	h.Set(headerRangeID, pr.ID)
	if pageSize > 0 {
		h.Set(headerMaxItemCount, strconv.Itoa(pageSize))
	}
	if epk.Compare(p.Min, pr.Min) != 0 || !sameMax(p.Max, pr.Max) {
		h.Set(headerStartEPK, p.Min)
		h.Set(headerEndEPK, p.Max)
	}
	resp, err := c.client.send(ctx, rawRequest{
		op: op, method: http.MethodGet, header: h,
		target: rawTarget{resourceType: resourceDocs, link: containerLink(c.db, c.id)},
		path:   containerPath(c.db, c.id, resourceDocs),
	})
	if err != nil {
		return feedAnswer{}, err
	}
	ans := feedAnswer{etag: resp.header.Get(headerETag), ru: resp.ru}
	if resp.status == http.StatusNotModified {
		return ans, nil
	}
	if ans.changes, err = parseChanges(resp.body); err != nil {
		return feedAnswer{}, fmt.Errorf("%s: %w", op, err)
	}
	return ans, nil
}

// sameMax compares two range tops; "FF" equals only itself.
func sameMax(a, b string) bool {
	if a == epk.MaxEPK || b == epk.MaxEPK {
		return a == b
	}
	return epk.Compare(a, b) == 0
}

// parseChanges reads a page: {"Documents": [{"current", "previous",
// "metadata"}, ...]}.
func parseChanges(body []byte) ([]ChangeEntry, error) {
	var page struct {
		Documents []struct {
			Current  json.RawMessage `json:"current"`
			Previous json.RawMessage `json:"previous"`
			Metadata json.RawMessage `json:"metadata"`
		} `json:"Documents"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		return nil, fmt.Errorf("the page is not a list of changes: %w", err)
	}
	out := make([]ChangeEntry, len(page.Documents))
	for i, d := range page.Documents {
		if len(d.Metadata) == 0 || !bytes.HasPrefix(d.Metadata, []byte("{")) {
			return nil, fmt.Errorf("change %d has no metadata: not the all-versions wire format", i)
		}
		e := ChangeEntry{Current: document(d.Current), Previous: document(d.Previous), MetadataJSON: d.Metadata}
		if err := json.Unmarshal(d.Metadata, &e.Metadata); err != nil {
			return nil, fmt.Errorf("change %d: metadata: %w", i, err)
		}
		switch e.Metadata.OperationType {
		case ChangeCreate, ChangeReplace, ChangeDelete:
		default:
			return nil, fmt.Errorf("change %d: unknown operationType %q", i, e.Metadata.OperationType)
		}
		out[i] = e
	}
	return out, nil
}

// document is an item of a change, nil when absent, null or {} (the
// service's current of a delete).
func document(raw json.RawMessage) json.RawMessage {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 || bytes.Equal(t, []byte("null")) {
		return nil
	}
	if t[0] == '{' && len(bytes.TrimSpace(t[1:len(t)-1])) == 0 {
		return nil
	}
	return raw
}

// splitPosition is p's parts on the physical ranges prs that overlap it.
func splitPosition(p position, prs []PartitionKeyRange) []position {
	t := allVersionsToken{Positions: []position{p}}
	t.split(prs)
	return t.Positions
}

// resourceID is the container's _rid, read once: it ties a continuation
// to this container, not to a later one of the same name.
func (c *Container) resourceID(ctx context.Context) (string, error) {
	c.mu.Lock()
	rid := c.rid
	c.mu.Unlock()
	if rid != "" {
		return rid, nil
	}
	resp, err := c.cc.Read(ctx, nil)
	if err != nil {
		return "", c.classify(ctx, "read container "+c.String(), err)
	}
	if resp.ContainerProperties == nil || resp.ContainerProperties.ResourceID == "" {
		return "", fmt.Errorf("read container %s: the response has no _rid", c)
	}
	c.mu.Lock()
	c.rid = resp.ContainerProperties.ResourceID
	c.mu.Unlock()
	return resp.ContainerProperties.ResourceID, nil
}

// errorRU is what a failed request still cost.
func errorRU(err error) float64 {
	var re *migrate.RequestError
	if errors.As(err, &re) {
		return re.RU
	}
	return 0
}
