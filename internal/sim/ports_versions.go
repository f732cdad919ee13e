package sim

import (
	"context"
	"fmt"

	"github.com/rekey-dev/rekey/migrate"
)

// The all-versions-and-deletes change feed and the ports that go with it,
// as a process sees them through the adapter: every request made through
// the process (latency, faults, crashes), as the other requests are.

var (
	_ migrate.VersionSource = containerView{}
	_ migrate.CopyFinder    = containerView{}
	_ migrate.TimeToLive    = containerView{}
)

func (v containerView) VersionsBookmark(ctx context.Context, fr migrate.FeedRange) (bookmark string, err error) {
	obj := fmt.Sprintf("[%.6s,%.6s)", fr.Min, fr.Max)
	err = v.p.do(ctx, v.side+".feed.bookmark", obj, func(landing) (string, error) {
		bookmark, err = v.c.VersionsBookmark(background, fr)
		return "ok", err
	})
	return bookmark, err
}

// ReadVersions reads a page of the all-versions feed. A page of the
// source's feed is a look at its range, and at each item it names, for
// the checks: the feed carries deletes, so a delete it shows was seen.
func (v containerView) ReadVersions(ctx context.Context, req migrate.VersionRequest) (page migrate.VersionPage, err error) {
	obj := fmt.Sprintf("[%.6s,%.6s)", req.Range.Min, req.Range.Max)
	err = v.p.do(ctx, v.side+".feed.versions", obj, func(landing) (string, error) {
		page, err = v.c.ReadVersions(background, req)
		if err != nil {
			return "", err
		}
		if v.side == "src" {
			v.p.w.check.lookedVersions(v.p, req.Range, page.Changes)
		}
		return fmt.Sprintf("%d changes %s", len(page.Changes), changeIDs(page.Changes)), nil
	})
	return page, err
}

func (v containerView) FindCopies(ctx context.Context, id string, sourcePaths []string, sourceKey migrate.Key) (items []migrate.Item, ru float64, err error) {
	err = v.p.do(ctx, v.side+".find", itemAddr(sourceKey, id), func(landing) (string, error) {
		items, ru, err = v.c.FindCopies(background, id, sourcePaths, sourceKey)
		return fmt.Sprintf("%d copies", len(items)), err
	})
	return items, ru, err
}

func (v containerView) DefaultTTL(ctx context.Context) (ttl int, err error) {
	err = v.p.do(ctx, v.side+".ttl", "", func(landing) (string, error) {
		ttl, err = v.c.DefaultTTL(background)
		return fmt.Sprint(ttl), err
	})
	return ttl, err
}

// changeIdentity is the source identity of a change of the all-versions
// feed: read from its version, or from a delete's metadata.
func changeIdentity(ch migrate.VersionChange) string {
	switch {
	case ch.Current != nil:
		return identityOf(ch.Current)
	case ch.Previous != nil:
		return identityOf(ch.Previous)
	case len(ch.SourceKey) == 1:
		return ch.ID + "|" + ch.SourceKey[0].String()
	}
	return ch.ID + "|"
}

// changeIDs lists a page's changes for the trace: operation, id and
// version.
func changeIDs(changes []migrate.VersionChange) string {
	out := ""
	for i, ch := range changes {
		if i > 0 {
			out += ","
		}
		body := ch.Current
		if body == nil {
			body = ch.Previous
		}
		out += ch.Op + ":" + changeIdentity(ch) + "@" + versionOf(body)
		if ch.TTLExpired {
			out += "(ttl)"
		}
	}
	return out
}
