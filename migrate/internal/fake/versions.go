package fake

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"github.com/rekey-dev/rekey/migrate"
)

// A Container keeps an all-versions-and-deletes log once KeepVersions is
// called, and serves it as migrate.VersionSource does: from a bookmark or
// a continuation (an LSN), changes in LSN order per feed range, a 400
// (migrate.ErrAllVersionsNotEnabled) while it keeps none, and a 400
// (migrate.ErrOutOfRetention) for a position older than what
// ForgetVersions dropped.

var (
	_ migrate.VersionSource = (*Container)(nil)
	_ migrate.CopyFinder    = (*Target)(nil)
)

// versionLog is a Container's all-versions log.
type versionLog struct {
	previous bool // previous images on replaces and deletes
	changes  []loggedChange
	gone     int // the highest LSN no longer kept
}

type loggedChange struct {
	migrate.VersionChange
	rng migrate.FeedRange
}

// KeepVersions starts the container's all-versions log; with previous, the
// changes carry previous images (the container-level opt-in of the
// service).
func (c *Container) KeepVersions(previous bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.versions = &versionLog{previous: previous, gone: c.etag}
	c.onChange = c.logChange
}

// logChange records a write in the log; c.mu is held.
func (c *Container) logChange(lsn int, before, after *migrate.Item) {
	c.logChangeTTL(lsn, before, after, false)
}

func (c *Container) logChangeTTL(lsn int, before, after *migrate.Item, ttl bool) {
	ch := migrate.VersionChange{LSN: int64(lsn), TS: int64(lsn), TTLExpired: ttl}
	it := after
	switch {
	case before == nil:
		ch.Op = migrate.OpCreate
	case after == nil:
		ch.Op, it = migrate.OpDelete, before
		ch.ID, ch.SourceKey = before.ID, sourceKeyOf(before.Body)
	default:
		ch.Op = migrate.OpReplace
	}
	if after != nil {
		ch.Current = c.stamp(*after)
	}
	if before != nil && c.versions.previous {
		ch.Previous = c.stamp(*before)
	}
	c.versions.changes = append(c.versions.changes, loggedChange{VersionChange: ch, rng: memRangeOf(itemAddr(it.Key, it.ID))})
}

// sourceKeyOf reads the fake source's key, /region, from a body.
func sourceKeyOf(body []byte) migrate.Key {
	key, err := keyAt(body, []string{"/region"})
	if err != nil {
		return nil
	}
	return key
}

// Expire deletes an item as its time to live would: the log records the
// deletion with TTLExpired.
func (c *Container) Expire(key migrate.Key, id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	it, ok := c.items[itemAddr(key, id)]
	if !ok {
		return false
	}
	delete(c.items, itemAddr(key, id))
	c.etag++
	if c.versions != nil {
		c.logChangeTTL(c.etag, &it, nil, true)
	}
	return true
}

// ForgetVersions drops every change logged so far, as the retention
// window does: positions before now are out of retention.
func (c *Container) ForgetVersions() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.versions.changes = nil
	c.versions.gone = c.etag
}

func badRequest(op string) error {
	return &migrate.RequestError{Op: op, Status: http.StatusBadRequest}
}

// versionToken is the continuation of LSN lsn: "v" and the LSN, so that
// a latest-version continuation (the LSN alone) is never taken for one.
func versionToken(lsn int64) string { return "v" + strconv.FormatInt(lsn, 10) }

// VersionsBookmark is the current LSN.
func (c *Container) VersionsBookmark(_ context.Context, _ migrate.FeedRange) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.inject("bookmark", nil, ""); err != nil {
		return "", err
	}
	if c.versions == nil {
		return "", wrap(migrate.ErrAllVersionsNotEnabled, badRequest("bookmark"))
	}
	return versionToken(int64(c.etag)), nil
}

// ReadVersions returns up to PageSize changes of the range after the
// continuation's LSN; a short page moves the continuation to now.
func (c *Container) ReadVersions(_ context.Context, req migrate.VersionRequest) (migrate.VersionPage, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.inject("versions", nil, ""); err != nil {
		return migrate.VersionPage{}, err
	}
	if c.versions == nil {
		return migrate.VersionPage{}, wrap(migrate.ErrAllVersionsNotEnabled, badRequest("read versions"))
	}
	after, err := strconv.Atoi(strings.TrimPrefix(req.Continuation, "v"))
	if err != nil || !strings.HasPrefix(req.Continuation, "v") {
		return migrate.VersionPage{}, badRequest("read versions: continuation " + req.Continuation)
	}
	if after < c.versions.gone {
		return migrate.VersionPage{}, wrap(migrate.ErrOutOfRetention, badRequest("read versions"))
	}
	page := migrate.VersionPage{RU: 2, Continuation: versionToken(int64(c.etag))}
	for _, ch := range c.versions.changes {
		if int(ch.LSN) <= after || ch.rng != req.Range {
			continue
		}
		if len(page.Changes) == req.PageSize {
			page.Continuation = versionToken(page.Changes[len(page.Changes)-1].LSN)
			break
		}
		page.Changes = append(page.Changes, ch.VersionChange)
	}
	return page, nil
}

// wrapped is a sentinel carried with the service's error.
type wrapped struct {
	sentinel error
	err      error
}

func wrap(sentinel, err error) error { return &wrapped{sentinel, err} }

func (w *wrapped) Error() string   { return w.sentinel.Error() + ": " + w.err.Error() }
func (w *wrapped) Unwrap() []error { return []error{w.sentinel, w.err} }
