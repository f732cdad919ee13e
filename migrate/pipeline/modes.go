package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/migrate"
)

// How a range moves between the two change feeds (RunConfig.Mode):
//
//	latest, no bookmark ──(all-versions run: bookmark taken before the
//	  │                    first read, recorded in the lease)──┐
//	  │                                                        v
//	  │                                         latest, bookmark B: the copy
//	  │                                                        │ caught up
//	  │                                                        v
//	  │             all-versions from B, the copy's latest continuation kept
//	  │                                                        │ B left the
//	  │                                                        │ retention
//	  │                                                        v
//	  └── latest from the kept continuation, a new bookmark, Fallback recorded
//
// Each step is one write of the lease, so a crash at any point resumes in
// one state or the next.

// quietCheckpointEvery is how often a quiet range in all-versions mode
// checkpoints the continuation of its empty pages: their positions move
// with the partition's LSN, and a position kept stale for longer than the
// retention would fall out of it on resume.
const quietCheckpointEvery = 10 * time.Second

// probeRange is the whole EPK space, which Run's probe bookmarks.
var probeRange = migrate.FeedRange{Min: "", Max: "FF"}

// resolveFeed decides which feed this run follows: the all-versions feed
// (run.versions set) in all-versions mode, and in auto mode when the
// source keeps versions; the latest-version feed otherwise. It probes the
// source with a bookmark of the whole key space. A run with an Applier
// follows the latest-version feed (auto resolves to it, all-versions is an
// error). In all-versions mode a
// source that cannot serve the feed is an error wrapping
// migrate.ErrAllVersionsNotEnabled.
func (run *run) resolveFeed(ctx context.Context) error {
	if run.cfg.Mode == ModeLatest {
		return nil
	}
	if run.applier != nil {
		// An Applier writes items, not versions (a rollback's reverse sync:
		// its cutover fixes deletes in the source).
		if run.cfg.Mode == ModeAllVersions {
			return fmt.Errorf("mode %s: a run that writes through an Applier (a rollback) follows the latest-version change feed only", ModeAllVersions)
		}
		return nil
	}
	vs, ok := run.source.(migrate.VersionSource)
	if !ok {
		if run.cfg.Mode == ModeAllVersions {
			return fmt.Errorf("mode %s: %w: the source cannot read that feed", ModeAllVersions, migrate.ErrAllVersionsNotEnabled)
		}
		return nil
	}
	err := run.retry.Do(ctx, func() error {
		_, err := vs.VersionsBookmark(ctx, probeRange)
		return err
	})
	switch {
	case err == nil:
		run.versions = vs
		run.log.Info("following the all-versions-and-deletes change feed once each range's copy has caught up", "mode", run.cfg.Mode)
		return nil
	case errors.Is(err, migrate.ErrAllVersionsNotEnabled) && run.cfg.Mode == ModeAuto:
		run.log.Info("the source keeps no all-versions change feed (no change feed policy, no continuous backup): following the latest-version feed; deletes and key-field changes are left to rekey verify --fix and cutover")
		return nil
	case errors.Is(err, migrate.ErrAllVersionsNotEnabled):
		return fmt.Errorf("mode %s: %w: give the source container a change feed policy (or the account continuous backup), or run in mode %s", ModeAllVersions, err, ModeAuto)
	}
	return fmt.Errorf("probe the source's all-versions change feed: %w", err)
}

// prepareFeed brings a held lease in line with the run's feed before its
// range is read. An all-versions run bookmarks a range that has none, in
// the lease, before its copy reads anything, so the all-versions feed it
// switches to later holds every change the copy may have missed; a range
// whose copy had already begun (a run in latest mode) is bookmarked too,
// and its Fallback records that deletes before then are not carried. A
// latest run takes a range that follows the all-versions feed back to the
// latest-version feed.
func (run *run) prepareFeed(readCtx, writeCtx context.Context, h *lease.Hold, log *slog.Logger) error {
	l := h.Lease()
	if run.versions == nil {
		if l.ReadsAllVersions() {
			return run.leaveVersions(writeCtx, h, log, "this run follows the latest-version change feed", "")
		}
		return nil
	}
	if l.ReadsAllVersions() || l.Bookmark != "" {
		return nil
	}
	bookmark, err := run.bookmark(readCtx, l)
	if err != nil || bookmark == "" {
		return err
	}
	now := run.clock.Now().UTC()
	begun := l.Continuation != ""
	if begun {
		log.Warn("this range's copy began without an all-versions bookmark: deletes and key-field changes made before now are left to rekey verify --fix and cutover")
	}
	return run.checkpoint(writeCtx, h, func(l *lease.Lease) {
		l.Mode, l.Bookmark = lease.ModeLatest, bookmark
		if begun {
			l.FallbackAt, l.Fallback = now, "the range's copy began without an all-versions bookmark (a run in latest mode)"
		}
	})
}

// bookmark takes the all-versions position "now" of a lease's range. In
// auto mode a source that stopped keeping versions yields "" (the range
// stays on the latest-version feed); in all-versions mode it is an error.
func (run *run) bookmark(ctx context.Context, l lease.Lease) (string, error) {
	var bookmark string
	err := run.retry.Do(ctx, func() error {
		var err error
		bookmark, err = run.versions.VersionsBookmark(ctx, migrate.FeedRangeOf(l.Range))
		return err
	})
	switch {
	case errors.Is(err, migrate.ErrAllVersionsNotEnabled) && run.cfg.Mode == ModeAuto:
		run.log.Warn("the source stopped keeping an all-versions change feed: this range follows the latest-version feed", "range", l.ID)
		return "", nil
	case err != nil:
		return "", fmt.Errorf("bookmark the all-versions change feed: %w", err)
	}
	return bookmark, nil
}

// switchDue reports whether the range, at the end of its latest-version
// feed, is to switch to the all-versions feed from its bookmark.
func (run *run) switchDue(l lease.Lease) bool {
	return run.versions != nil && !l.ReadsAllVersions() && l.Bookmark != ""
}

// switchToVersions moves the range, whose copy reached the end of the
// latest-version feed at continuation latest, to the all-versions feed
// from its bookmark, keeping latest to fall back to. The range is not
// caught up yet: the all-versions feed replays every change since the
// bookmark (harmlessly: the copy converges to each item's last version)
// and carries the deletes and key changes the copy could not see.
func (run *run) switchToVersions(ctx context.Context, h *lease.Hold, latest string, log *slog.Logger) error {
	log.Info("the range's copy caught up: following the all-versions change feed from the bookmark taken before the copy")
	return run.checkpoint(ctx, h, func(l *lease.Lease) {
		l.Mode, l.Continuation, l.Bookmark = lease.ModeAllVersions, l.Bookmark, latest
	})
}

// quietCheckpointDue reports whether an empty page's continuation should
// be checkpointed although the range had already caught up: in
// all-versions mode, when it moved and the last such checkpoint is
// quietCheckpointEvery old.
func (run *run) quietCheckpointDue(l lease.Lease, continuation string) bool {
	return l.ReadsAllVersions() && continuation != l.Continuation && run.clock.Now().Sub(l.CaughtUpAt) >= quietCheckpointEvery
}

// fallBack handles a range whose all-versions position left the retention
// window (cause): the changes since are gone from that feed. It says so,
// and moves the range back to the latest-version feed from the
// continuation its copy had reached (every item changed since is read
// again at its latest version), bookmarked anew so that it switches back
// once caught up, and records the fallback: the deletes and key changes
// in between are left to reconciliation.
func (run *run) fallBack(ctx context.Context, h *lease.Hold, log *slog.Logger, cause error) error {
	log.Warn("this range's all-versions position is older than the source's change feed retention: the deletes and key-field changes made since are gone from that feed. "+
		"Falling back to the latest-version feed from where the range's copy ended; rekey verify --fix or cutover reconciles what it misses",
		"err", cause)
	bookmark, err := run.bookmark(ctx, h.Lease())
	if err != nil {
		return err
	}
	return run.leaveVersions(ctx, h, log, "the range's all-versions position fell out of the retention window", bookmark)
}

// leaveVersions moves a range that follows the all-versions feed back to
// the latest-version feed from the continuation its copy had reached (the
// start, when the lease kept none), with bookmark to switch back to
// ("": none), and records why.
func (run *run) leaveVersions(ctx context.Context, h *lease.Hold, log *slog.Logger, why, bookmark string) error {
	if l := h.Lease(); l.ReadsAllVersions() && l.Bookmark == "" {
		log.Warn("the lease kept no latest-version continuation: the range is copied again from the migration's start")
	}
	log.Warn("following the latest-version change feed", "reason", why)
	now := run.clock.Now().UTC()
	return run.checkpoint(ctx, h, func(l *lease.Lease) {
		if l.ReadsAllVersions() {
			l.Continuation = l.Bookmark
		}
		l.Mode, l.Bookmark = lease.ModeLatest, bookmark
		l.FallbackAt, l.Fallback = now, why
	})
}

// versionPages reads the lease's range of the all-versions feed, one page
// a call, from its checkpoint.
func (run *run) versionPages(l lease.Lease) func(ctx context.Context, pageSize int) (page, float64, error) {
	req := migrate.VersionRequest{Range: migrate.FeedRangeOf(l.Range), Continuation: l.Continuation}
	return func(ctx context.Context, pageSize int) (page, float64, error) {
		req.PageSize = pageSize
		if run.versions == nil {
			return page{}, 0, fmt.Errorf("read the all-versions change feed: %w", migrate.ErrAllVersionsNotEnabled)
		}
		vp, err := run.versions.ReadVersions(ctx, req)
		if err != nil {
			return page{}, vp.RU, fmt.Errorf("read the all-versions change feed: %w", err)
		}
		req.Continuation = vp.Continuation
		p := page{changes: vp.Changes, continuation: vp.Continuation}
		for _, c := range vp.Changes {
			p.bytes += int64(len(c.Current) + len(c.Previous))
		}
		return p, vp.RU, nil
	}
}

// applyVersions applies one page of the all-versions feed behind the
// hold's fence (versionWriter), then checkpoints the lease.
func (run *run) applyVersions(ctx context.Context, h *lease.Hold, p page) error {
	var newest int64
	for _, c := range p.changes {
		newest = max(newest, c.TS)
	}
	ru, err := run.vw.apply(ctx, p.changes, h.Fence)
	if err != nil {
		return err
	}
	return run.checkpointPage(ctx, h, p, len(p.changes), ru, newest)
}
