package cosmos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"

	"github.com/rekey-dev/rekey/migrate"
)

// ErrBadContinuation is wrapped by ReadChanges's error for a continuation
// that is not one ReadChanges returned. The SDK would silently restart such
// a range from the beginning of its feed, so it is refused instead.
var ErrBadContinuation = errors.New("not a change feed continuation of this package")

// ReadChanges reads one page of a feed range's latest-version change feed.
//
// The first call of a range (empty Continuation) starts at StartFrom, or at
// the beginning of the feed when StartFrom is zero. Later calls pass the
// Continuation of the previous page: a composite token of the SDK that
// lists the physical ranges under the feed range with a position in each,
// so it survives splits (the SDK expands a split range into its children,
// each resuming at the parent's position) and a restart of the process.
//
// The page holds each changed item once, at its latest version, with its
// system properties. An empty page means every physical range under the
// feed range is at the end of its feed for now; its Continuation still
// moves and must be kept. RU is the total charge of the page's requests.
func (c *Container) ReadChanges(ctx context.Context, req migrate.ChangeRequest) (migrate.ChangePage, error) {
	if c.err != nil {
		return migrate.ChangePage{}, c.err
	}
	op := fmt.Sprintf("read change feed of %s range [%s, %s)", c, req.Range.Min, req.Range.Max)
	opts := &azcosmos.ChangeFeedOptions{}
	if req.PageSize > 0 {
		opts.MaxItemCount = int32(min(req.PageSize, math.MaxInt32))
	}
	if req.Continuation != "" {
		if err := checkContinuation(req.Continuation); err != nil {
			return migrate.ChangePage{}, fmt.Errorf("%s: %w", op, err)
		}
		cont := req.Continuation
		opts.Continuation = &cont
	} else {
		opts.FeedRange = &azcosmos.FeedRange{MinInclusive: req.Range.Min, MaxExclusive: req.Range.Max}
		if !req.StartFrom.IsZero() {
			start := req.StartFrom
			opts.StartFrom = &start
		}
	}
	resp, err := c.cc.ReadChangeFeed(ctx, opts)
	if err != nil {
		return migrate.ChangePage{}, c.classify(ctx, op, err)
	}
	if resp.ContinuationToken == "" {
		return migrate.ChangePage{}, fmt.Errorf("%s: the SDK returned no continuation", op)
	}
	return migrate.ChangePage{
		Items:        resp.Items,
		Continuation: resp.ContinuationToken,
		RU:           float64(resp.RequestCharge),
	}, nil
}

// compositeToken is the shape of the SDK's change-feed continuation
// (cosmos_change_feed_composite_continuation_token.go), checked only far
// enough to refuse what the SDK would ignore.
type compositeToken struct {
	ResourceID   string `json:"resourceId"`
	Continuation []struct {
		MinInclusive *string `json:"minInclusive"`
		MaxExclusive *string `json:"maxExclusive"`
	} `json:"continuation"`
}

// checkContinuation refuses a continuation that the SDK would not resume
// from: it drops anything but a composite token with at least one range.
func checkContinuation(s string) error {
	var t compositeToken
	if err := json.Unmarshal([]byte(s), &t); err != nil {
		return fmt.Errorf("continuation: %w (%v)", ErrBadContinuation, err)
	}
	if len(t.Continuation) == 0 {
		return fmt.Errorf("continuation: %w (no ranges)", ErrBadContinuation)
	}
	for _, r := range t.Continuation {
		if r.MinInclusive == nil || r.MaxExclusive == nil {
			return fmt.Errorf("continuation: %w (a range without bounds)", ErrBadContinuation)
		}
	}
	return nil
}
