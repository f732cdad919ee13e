package cutover

import (
	"context"
	"fmt"
	"time"

	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/migrate"
)

// followMargin is how far before the cutover began the Gate starts reading
// Follow's change feed to find where it ends: the application writes to
// it only after the record, so the read passes over rekey's own writes
// alone, and the margin covers a clock that runs ahead of the service's.
const followMargin = 10 * time.Minute

// cutoverRecord is what the cutover records: its time, the verify's count
// and digest, what the application writes from now on, where Follow's
// change feed stands, and the newest _ts of the source's items.
func (c *Gate) cutoverRecord(ctx context.Context, cfg Config, rep *Report, start time.Time) (lease.Cutover, error) {
	cut := lease.Cutover{At: c.Clock.Now().UTC(), Items: rep.Verify.Matched, VerifyDigest: rep.Verify.Digest, Application: cfg.Application}
	leases, err := c.Runner.Store.List(ctx)
	if err != nil {
		return lease.Cutover{}, fmt.Errorf("list leases: %w", err)
	}
	for _, l := range leases {
		cut.SourceHorizon = max(cut.SourceHorizon, l.LastChangeTS)
	}
	if c.Follow != nil {
		from := c.runnerClock().Now().Add(-followMargin - c.Clock.Now().Sub(start))
		if cut.Follow, err = feedEnds(ctx, c.Follow, c.runnerClock(), from); err != nil {
			return lease.Cutover{}, fmt.Errorf("find where the change feed of the container the application writes next stands: %w", err)
		}
	}
	return cut, nil
}

// feedEnds reads each of src's feed ranges from the time from to the end
// of its change feed and returns where each ends: reading from there
// returns only what is written after.
func feedEnds(ctx context.Context, src migrate.Source, clock migrate.Clock, from time.Time) ([]lease.FeedPosition, error) {
	retry := &migrate.Retrier{Clock: clock, Tries: migrate.DefaultTransientTries}
	ranges, err := migrate.ReadFeedRanges(ctx, src, retry)
	if err != nil {
		return nil, err
	}
	out := make([]lease.FeedPosition, 0, len(ranges))
	for _, r := range ranges {
		req := migrate.ChangeRequest{Range: r, StartFrom: from, PageSize: markPageSize}
		for {
			page, err := migrate.ReadPage(ctx, src, retry, req)
			if err != nil {
				return nil, err
			}
			req.Continuation, req.StartFrom = page.Continuation, time.Time{}
			if len(page.Items) == 0 {
				break
			}
		}
		out = append(out, lease.FeedPosition{Range: r.LeaseRange(), Continuation: req.Continuation})
	}
	return out, nil
}
