package cosmos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

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
// A call reads one physical range with changes, so a continuation may
// list ranges it has not read yet, which hold no position. The SDK would
// read those from the beginning of their feed; given StartFrom with the
// continuation, they are read from StartFrom first (readUnstarted).
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
	var started migrate.ChangePage // what reading unstarted ranges found
	if req.Continuation != "" {
		tok, err := parseToken(req.Continuation)
		if err != nil {
			return migrate.ChangePage{}, fmt.Errorf("%s: %w", op, err)
		}
		if !req.StartFrom.IsZero() && tok.unstarted() >= 0 {
			page, done, err := c.readUnstarted(ctx, op, tok, req.StartFrom, opts.MaxItemCount)
			if err != nil || done {
				return page, err
			}
			started, req.Continuation = page, page.Continuation
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
		RU:           started.RU + float64(resp.RequestCharge),
	}, nil
}

// readUnstarted reads, from start, the physical ranges the continuation tok
// has not read yet, one at a time (each alone in a continuation of its own,
// which the SDK sends with If-Modified-Since and no position), putting each
// back at the end of the queue with the position it was read to, or its
// children when it split, as the SDK moves a range it read. It stops at the
// first with changes and returns that page (done). Otherwise it returns an
// empty page with the continuation updated and the charge so far, done
// only when a range still has no position (the service gave it none):
// what it did not read it reads from start again on the next call, rather
// than from the beginning.
func (c *Container) readUnstarted(ctx context.Context, op string, tok sdkToken, start time.Time, pageSize int32) (migrate.ChangePage, bool, error) {
	var page migrate.ChangePage
	for tries := 4 * (len(tok.Continuation) + 1); tries > 0; tries-- {
		i := tok.unstarted()
		if i < 0 {
			break
		}
		one := tok
		one.Continuation = []sdkEntry{tok.Continuation[i]}
		cont, err := one.encode()
		if err != nil {
			return migrate.ChangePage{}, false, fmt.Errorf("%s: %w", op, err)
		}
		from := start
		resp, err := c.cc.ReadChangeFeed(ctx, &azcosmos.ChangeFeedOptions{Continuation: &cont, StartFrom: &from, MaxItemCount: pageSize})
		if err != nil {
			return migrate.ChangePage{}, false, c.classify(ctx, op, err)
		}
		page.RU += float64(resp.RequestCharge)
		read, err := parseToken(resp.ContinuationToken)
		if err != nil {
			return migrate.ChangePage{}, false, fmt.Errorf("%s: the SDK's continuation: %w", op, err)
		}
		rest := slices.Delete(slices.Clone(tok.Continuation), i, i+1)
		tok.Continuation = append(rest, read.Continuation...)
		if page.Continuation, err = tok.encode(); err != nil {
			return migrate.ChangePage{}, false, fmt.Errorf("%s: %w", op, err)
		}
		if len(resp.Items) > 0 {
			page.Items = resp.Items
			return page, true, nil
		}
	}
	return page, tok.unstarted() >= 0, nil
}

// sdkToken is the SDK's change-feed continuation in full (azcosmos v1.5.0,
// cosmos_change_feed_composite_continuation_token.go and
// cosmos_change_feed_range.go): the container's resource id and the queue of
// physical ranges, each with the ETag it was read to (none before it was
// read). ReadChanges checks it, and rewrites its queue to read unstarted
// ranges from a time (docs/cosmos-change-feed.md).
type sdkToken struct {
	Version      int        `json:"version,omitempty"`
	ResourceID   string     `json:"resourceId"`
	Continuation []sdkEntry `json:"continuation"`
}

type sdkEntry struct {
	MinInclusive      *string `json:"minInclusive"`
	MaxExclusive      *string `json:"maxExclusive"`
	ContinuationToken *string `json:"continuationToken,omitempty"`
}

// parseToken reads a continuation ReadChanges returned, refusing what the
// SDK would not resume from: it drops anything but a composite token with
// at least one range (and would restart the range from the beginning).
func parseToken(s string) (sdkToken, error) {
	var t sdkToken
	if err := json.Unmarshal([]byte(s), &t); err != nil {
		return sdkToken{}, fmt.Errorf("continuation: %w (%v)", ErrBadContinuation, err)
	}
	if len(t.Continuation) == 0 {
		return sdkToken{}, fmt.Errorf("continuation: %w (no ranges)", ErrBadContinuation)
	}
	for _, r := range t.Continuation {
		if r.MinInclusive == nil || r.MaxExclusive == nil {
			return sdkToken{}, fmt.Errorf("continuation: %w (a range without bounds)", ErrBadContinuation)
		}
	}
	return t, nil
}

// unstarted is the index of the first range not read yet, or -1.
func (t sdkToken) unstarted() int {
	return slices.IndexFunc(t.Continuation, func(e sdkEntry) bool {
		return e.ContinuationToken == nil || *e.ContinuationToken == ""
	})
}

func (t sdkToken) encode() (string, error) {
	b, err := json.Marshal(t)
	if err != nil {
		return "", fmt.Errorf("encode the continuation: %w", err)
	}
	return string(b), nil
}
