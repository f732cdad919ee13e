package cosmos

import (
	"encoding/json"
	"fmt"
	"sort"

	"github.com/rekey-dev/rekey/internal/epk"
	"github.com/rekey-dev/rekey/migrate"
)

// allVersionsFormat marks the continuations ReadAllVersions and
// AllVersionsBookmark produce; any other text is refused.
const allVersionsFormat = "rekey.allVersions.v1"

// allVersionsToken is the continuation of one feed range's
// all-versions-and-deletes feed, as JSON:
//
//	{"format": "rekey.allVersions.v1",
//	 "rid": "<the container's _rid>",
//	 "range": {"min": "", "max": "FF"},
//	 "positions": [{"min": "", "max": "80", "etag": "\"41\""},
//	               {"min": "80", "max": "FF", "etag": "\"38\""}]}
//
// range is the feed range the token belongs to. positions tile it: one
// per part of it that a physical partition served when the position was
// last read, with the ETag to continue after (the service's If-None-Match
// value; an LSN). A split replaces a position by one per child, each with
// the parent's ETag, which the service accepts on the children (the
// SDKs do the same: azure-sdk-for-js ChangeFeedForEpkRange.handleSplitOrMerge).
// The first position is read next; a position that was read moves to the
// end, so every part of the range is visited in turn.
type allVersionsToken struct {
	Format    string     `json:"format"`
	RID       string     `json:"rid"`
	Range     tokenRange `json:"range"`
	Positions []position `json:"positions"`
}

type tokenRange struct {
	Min string `json:"min"`
	Max string `json:"max"`
}

// position is where one part [Min, Max) of a feed range is in its feed.
type position struct {
	Min  string `json:"min"`
	Max  string `json:"max"`
	ETag string `json:"etag"`
}

func (t *allVersionsToken) encode() string {
	b, _ := json.Marshal(t) // strings only: always encodes
	return string(b)
}

// decodeToken parses s and checks that it is a token of this package for
// feed range fr of the container whose _rid is rid. Errors wrap
// ErrBadContinuation.
func decodeToken(s, rid string, fr migrate.FeedRange) (*allVersionsToken, error) {
	var t allVersionsToken
	if err := json.Unmarshal([]byte(s), &t); err != nil {
		return nil, fmt.Errorf("continuation: %w (not JSON: %v)", ErrBadContinuation, err)
	}
	switch {
	case t.Format != allVersionsFormat:
		return nil, fmt.Errorf("continuation: %w (format %q, want %s; a latest-version continuation cannot resume the all-versions feed)", ErrBadContinuation, t.Format, allVersionsFormat)
	case t.RID != rid:
		return nil, fmt.Errorf("continuation: %w (it belongs to container _rid %q, not %q)", ErrBadContinuation, t.RID, rid)
	case t.Range.Min != fr.Min || t.Range.Max != fr.Max:
		return nil, fmt.Errorf("continuation: %w (it belongs to feed range [%s, %s), not [%s, %s))", ErrBadContinuation, t.Range.Min, t.Range.Max, fr.Min, fr.Max)
	case len(t.Positions) == 0:
		return nil, fmt.Errorf("continuation: %w (no positions)", ErrBadContinuation)
	}
	for _, p := range t.Positions {
		if p.ETag == "" || p.ETag == startFromNow {
			return nil, fmt.Errorf("continuation: %w (position [%s, %s) has no ETag)", ErrBadContinuation, p.Min, p.Max)
		}
	}
	if !tiles(t.Positions, t.Range) {
		return nil, fmt.Errorf("continuation: %w (its positions do not cover [%s, %s) exactly once)", ErrBadContinuation, t.Range.Min, t.Range.Max)
	}
	return &t, nil
}

// tiles reports whether positions cover r exactly once, in any order.
func tiles(positions []position, r tokenRange) bool {
	ps := append([]position(nil), positions...)
	sort.Slice(ps, func(i, j int) bool { return epk.Compare(ps[i].Min, ps[j].Min) < 0 })
	if ps[0].Min != r.Min || ps[len(ps)-1].Max != r.Max {
		return false
	}
	for i, p := range ps {
		if p.Max != epk.MaxEPK && epk.Compare(p.Min, p.Max) >= 0 {
			return false
		}
		if i > 0 && epk.Compare(p.Min, ps[i-1].Max) != 0 {
			return false
		}
	}
	return true
}

// rotate moves the first position, just read, to the end.
func (t *allVersionsToken) rotate() {
	t.Positions = append(t.Positions[1:], t.Positions[0])
}

// split replaces the first position by its parts on the physical ranges
// prs that overlap it, each continuing from its ETag.
func (t *allVersionsToken) split(prs []PartitionKeyRange) {
	p := t.Positions[0]
	parts := make([]position, 0, len(prs)+len(t.Positions)-1)
	for _, pr := range prs {
		parts = append(parts, position{Min: maxEPK(p.Min, pr.Min), Max: minEPK(p.Max, pr.Max), ETag: p.ETag})
	}
	t.Positions = append(parts, t.Positions[1:]...)
}

// maxEPK and minEPK pick the higher and lower of two range bounds; "FF",
// the top of the space, is above every EPK.
func maxEPK(a, b string) string {
	if epk.Compare(a, b) >= 0 {
		return a
	}
	return b
}

func minEPK(a, b string) string {
	switch {
	case a == epk.MaxEPK:
		return b
	case b == epk.MaxEPK || epk.Compare(a, b) <= 0:
		return a
	}
	return b
}
