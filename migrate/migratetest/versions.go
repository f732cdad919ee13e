package migratetest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rekey-dev/rekey/internal/epk"
	"github.com/rekey-dev/rekey/migrate"
)

// The all-versions-and-deletes change feed (migrate.VersionSource), as the
// internal/cosmos adapter serves it on the emulator: a container created
// WithAllVersions keeps a log of every create, replace and delete (expiries
// by time to live included, with TTLExpired) for its retention; a feed
// starts only from a bookmark ("now") or a continuation, returns a range's
// changes in LSN order, and answers 400 (migrate.ErrAllVersionsNotEnabled)
// without the log and 400 (migrate.ErrOutOfRetention) for a position older
// than what the retention keeps. LSNs are container-wide, so a position
// stays valid across splits, as the emulator's are.

var (
	_ migrate.VersionSource = (*Container)(nil)
	_ migrate.CopyFinder    = (*Container)(nil)
	_ migrate.TimeToLive    = (*Container)(nil)
)

// Requests of the all-versions feed and of the search for copies, as
// Calls counts them and Intercept sees them.
const (
	OpBookmark = "bookmark"
	OpVersions = "versions"
	OpFind     = "find"
)

// WithAllVersions makes the container keep an all-versions log for
// retention, as a change feed policy does; with previous, replaces and
// deletes carry the version before them (the container-level opt-in of
// the service; without it only deletes' metadata name the item).
func WithAllVersions(retention time.Duration, previous bool) Option {
	return func(c *Container) { c.versions = &versionLog{retention: retention, previous: previous} }
}

// versionLog is a container's all-versions log: changes in LSN order, and
// the highest LSN no longer kept.
type versionLog struct {
	retention time.Duration
	previous  bool
	changes   []logged
	gone      uint64
}

type logged struct {
	migrate.VersionChange
	epk string
	at  time.Time
}

// logWrite records a create or replace of it (over old, nil for a create);
// c.mu is held.
func (c *Container) logWrite(it, old *item) {
	if c.versions == nil {
		return
	}
	ch := migrate.VersionChange{Op: migrate.OpCreate, LSN: int64(it.lsn), TS: it.mtime.Unix(), Current: withLSN(it.doc, it.lsn)}
	if old != nil {
		ch.Op = migrate.OpReplace
		if c.versions.previous {
			ch.Previous = old.doc
		}
	}
	c.versions.changes = append(c.versions.changes, logged{VersionChange: ch, epk: it.epk, at: it.mtime})
}

// logDelete records the deletion of it at LSN lsn; c.mu is held.
func (c *Container) logDelete(it *item, lsn uint64, ttl bool) {
	if c.versions == nil {
		return
	}
	now := c.now()
	ch := migrate.VersionChange{Op: migrate.OpDelete, LSN: int64(lsn), TS: now.Unix(), ID: it.id, SourceKey: it.key, TTLExpired: ttl}
	if c.versions.previous || ttl {
		ch.Previous = it.doc
	}
	c.versions.changes = append(c.versions.changes, logged{VersionChange: ch, epk: it.epk, at: now})
}

// unlogAfter drops the changes after LSN lsn: writes of a batch that did
// not commit; c.mu is held.
func (c *Container) unlogAfter(lsn uint64) {
	if c.versions == nil {
		return
	}
	n := len(c.versions.changes)
	for n > 0 && uint64(c.versions.changes[n-1].LSN) > lsn {
		n--
	}
	c.versions.changes = c.versions.changes[:n]
}

// sweepExpired removes the items whose time to live has run out, logging
// each removal as a delete by time to live, as the service's background
// deletion shows in the all-versions feed; c.mu is held.
func (c *Container) sweepExpired() {
	if c.versions == nil || c.ttl == 0 {
		return
	}
	now := c.now()
	var expired []string
	for a, it := range c.items {
		if !it.live(now) {
			expired = append(expired, a)
		}
	}
	slices.Sort(expired) // one order on every run
	for _, a := range expired {
		it := c.items[a]
		delete(c.items, a)
		c.lsn++
		c.logDelete(it, c.lsn, true)
	}
}

// versionToken is a position in the all-versions feed of a feed range.
type versionToken struct {
	Feed string `json:"feed"` // "all-versions": never a latest-version continuation
	Min  string `json:"min"`
	Max  string `json:"max"`
	LSN  uint64 `json:"lsn"`
}

const versionFeed = "all-versions"

func (t versionToken) encode() string {
	b, _ := json.Marshal(t) // strings and a number: always encodes
	return string(b)
}

// VersionsBookmark is the position "now" of feed range fr's all-versions
// feed.
func (c *Container) VersionsBookmark(ctx context.Context, fr migrate.FeedRange) (string, error) {
	op := fmt.Sprintf("bookmark the all-versions change feed of range [%s, %s)", fr.Min, fr.Max)
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	if err := c.before(OpBookmark, nil, ""); err != nil {
		return "", err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.versions == nil {
		return "", notEnabled(op)
	}
	c.sweepExpired()
	return versionToken{Feed: versionFeed, Min: fr.Min, Max: fr.Max, LSN: c.lsn}.encode(), nil
}

// ReadVersions reads up to PageSize changes of the request's range after
// its position, in LSN order; a page that is not full moves the position
// to now.
func (c *Container) ReadVersions(ctx context.Context, req migrate.VersionRequest) (migrate.VersionPage, error) {
	op := fmt.Sprintf("read the all-versions change feed of range [%s, %s)", req.Range.Min, req.Range.Max)
	if err := ctx.Err(); err != nil {
		return migrate.VersionPage{}, fmt.Errorf("%s: %w", op, err)
	}
	if err := c.before(OpVersions, nil, ""); err != nil {
		return migrate.VersionPage{}, err
	}
	var tok versionToken
	if err := json.Unmarshal([]byte(req.Continuation), &tok); err != nil || tok.Feed != versionFeed || tok.Min != req.Range.Min || tok.Max != req.Range.Max {
		return migrate.VersionPage{}, fmt.Errorf("%s: continuation %.40q: %w", op, req.Continuation, ErrBadContinuation)
	}
	pageSize := req.PageSize
	if pageSize <= 0 {
		pageSize = defaultPageSize
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.versions == nil {
		return migrate.VersionPage{}, notEnabled(op)
	}
	c.sweepExpired()
	v := c.versions
	cut := c.now().Add(-v.retention)
	n := 0
	for n < len(v.changes) && v.changes[n].at.Before(cut) {
		v.gone = uint64(v.changes[n].LSN)
		n++
	}
	v.changes = v.changes[n:]
	if tok.LSN < v.gone {
		return migrate.VersionPage{}, wrapped{migrate.ErrOutOfRetention, badRequest(op, fmt.Sprintf("the continuation is out of the retention window of %s: changes up to LSN %d are no longer kept", v.retention, v.gone))}
	}
	r := epk.Range{Min: req.Range.Min, Max: req.Range.Max}
	page := migrate.VersionPage{}
	next := c.lsn
	for _, ch := range v.changes {
		if uint64(ch.LSN) <= tok.LSN || !r.Contains(ch.epk) {
			continue
		}
		if len(page.Changes) == pageSize {
			next = uint64(page.Changes[pageSize-1].LSN)
			break
		}
		page.Changes = append(page.Changes, ch.VersionChange)
		page.RU += sizeFactor(len(ch.Current) + len(ch.Previous))
	}
	if len(page.Changes) == 0 {
		page.RU = notModifiedRU
	} else {
		page.RU += feedPageRU
	}
	tok.LSN = max(next, tok.LSN)
	page.Continuation = tok.encode()
	return page, nil
}

// notEnabled is the 400 of a container that keeps no all-versions log.
func notEnabled(op string) error {
	return wrapped{migrate.ErrAllVersionsNotEnabled, badRequest(op, "the all versions and deletes change feed is not enabled on the container: it has no change feed policy")}
}

// wrapped is a sentinel carried with the service's answer, as the
// adapter wraps its 400s.
type wrapped struct {
	sentinel error
	err      *migrate.RequestError
}

func (w wrapped) Error() string   { return w.sentinel.Error() + ": " + w.err.Error() }
func (w wrapped) Unwrap() []error { return []error{w.sentinel, w.err} }

// FindCopies returns the live items with the id whose fields at
// sourcePaths hold sourceKey (an absent field matching an undefined
// component), as the adapter's cross-partition query does, in the order
// of their addresses; it costs a query's charge per partition.
func (c *Container) FindCopies(ctx context.Context, id string, sourcePaths []string, sourceKey migrate.Key) ([]migrate.Item, float64, error) {
	op := fmt.Sprintf("find the copies of item %q with source key %s", id, keyText(sourceKey))
	if err := ctx.Err(); err != nil {
		return nil, 0, fmt.Errorf("%s: %w", op, err)
	}
	if err := c.before(OpFind, sourceKey, id); err != nil {
		return nil, 0, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	var out []migrate.Item
	for _, it := range c.items {
		if it.id != id || !it.live(now) {
			continue
		}
		members, _, err := parseObject(it.doc)
		if err != nil {
			continue
		}
		if got, err := keyOf(members, sourcePaths); err == nil && sameKey(got, sourceKey) {
			out = append(out, migrate.Item{ID: it.id, Key: it.key, Body: it.doc, ETag: it.etag})
		}
	}
	slices.SortFunc(out, func(a, b migrate.Item) int { return strings.Compare(addr(a.Key, a.ID), addr(b.Key, b.ID)) })
	return out, queryRU * float64(len(c.parts)), nil
}

// queryRU is what a query charges per partition it runs on.
const queryRU = 2.5

// DefaultTTL is the container's default time to live in seconds (0: off).
func (c *Container) DefaultTTL(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("read container: %w", err)
	}
	return int(c.ttl / time.Second), nil
}
