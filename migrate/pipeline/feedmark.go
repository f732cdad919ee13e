package pipeline

import (
	"context"
	"fmt"

	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/migrate"
)

// FeedMark is where the change feed a lease follows ended at one moment:
// a change after it was made after the mark was taken.
type FeedMark struct {
	Range        migrate.FeedRange
	continuation string
	allVersions  bool
}

// MarkFeedEnd reads the change feed lease l follows (the latest-version
// or the all-versions feed, by its mode) from its checkpoint to the end,
// without moving the checkpoint, and returns where it ends. Every read
// goes under retry. Cutover marks every range so before its final verify.
func MarkFeedEnd(ctx context.Context, src migrate.Source, retry *migrate.Retrier, l lease.Lease, pageSize int) (FeedMark, error) {
	m := FeedMark{Range: migrate.FeedRangeOf(l.Range), continuation: l.Continuation, allVersions: l.ReadsAllVersions()}
	for {
		n, next, err := m.read(ctx, src, retry, pageSize)
		if err != nil {
			return FeedMark{}, err
		}
		m.continuation = next
		if n == 0 {
			return m, nil
		}
	}
}

// Moved reports whether the feed holds a change after the mark.
func (m FeedMark) Moved(ctx context.Context, src migrate.Source, retry *migrate.Retrier) (bool, error) {
	n, _, err := m.read(ctx, src, retry, 1)
	return n > 0, err
}

// read reads one page after the mark: how many changes it holds, and the
// position after it.
func (m FeedMark) read(ctx context.Context, src migrate.Source, retry *migrate.Retrier, pageSize int) (int, string, error) {
	if !m.allVersions {
		page, err := migrate.ReadPage(ctx, src, retry, migrate.ChangeRequest{Range: m.Range, Continuation: m.continuation, PageSize: pageSize})
		return len(page.Items), page.Continuation, err
	}
	vs, ok := src.(migrate.VersionSource)
	if !ok {
		return 0, "", fmt.Errorf("feed range [%s, %s) follows the all-versions change feed, which the source cannot read", m.Range.Min, m.Range.Max)
	}
	var page migrate.VersionPage
	err := retry.Do(ctx, func() error {
		var err error
		page, err = vs.ReadVersions(ctx, migrate.VersionRequest{Range: m.Range, Continuation: m.continuation, PageSize: pageSize})
		return err
	})
	if err != nil {
		return 0, "", fmt.Errorf("read the all-versions change feed of range [%s, %s): %w", m.Range.Min, m.Range.Max, err)
	}
	return len(page.Changes), page.Continuation, nil
}
