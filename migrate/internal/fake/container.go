package fake

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/rekey-dev/rekey/migrate"
)

// Container is a Target that is also a migrate.Source: a latest-version
// change feed over two feed ranges (ContainerRanges, by a hash of each item's
// key and id), ordered by the ETag counter, which serves as the LSN. Bodies
// come back with a "_ts": the LSN, or TS when it is set (items written
// within one second). The hooks run outside the container's lock, so a
// test can write to the container from them: OnFeed after every
// change-feed page, OnRead before every ReadItem.
type Container struct {
	*Target
	TS     int64
	OnFeed func(req migrate.ChangeRequest, page migrate.ChangePage)
	OnRead func(id string)
}

// NewContainer returns an empty container.
func NewContainer() *Container { return &Container{Target: NewTarget()} }

// ContainerRanges are the feed ranges of every Container.
var ContainerRanges = []migrate.FeedRange{{Min: "", Max: "80"}, {Min: "80", Max: "FF"}}

func memRangeOf(addr string) migrate.FeedRange {
	h := fnv.New32a()
	h.Write([]byte(addr))
	return ContainerRanges[h.Sum32()%2]
}

// lsnOf reads the LSN out of a Target ETag (`"e12"`).
func lsnOf(etag string) int {
	n, _ := strconv.Atoi(strings.Trim(etag, `"e`))
	return n
}

func (c *Container) stamp(it migrate.Item) []byte {
	ts := int64(lsnOf(it.ETag))
	if c.TS != 0 {
		ts = c.TS
	}
	body := strings.TrimSuffix(strings.TrimSpace(string(it.Body)), "}")
	return fmt.Appendf(nil, `%s,"_ts":%d}`, body, ts)
}

func (c *Container) Definition(context.Context) (migrate.Definition, error) {
	return migrate.Definition{Paths: []string{"/region"}, Kind: "Hash", Version: 2}, nil
}

func (c *Container) FeedRanges(context.Context) ([]migrate.FeedRange, error) {
	return ContainerRanges, nil
}

func (c *Container) ItemCount(context.Context) (int64, error) { return int64(c.Count()), nil }

func (c *Container) ReadChanges(_ context.Context, req migrate.ChangeRequest) (migrate.ChangePage, error) {
	c.mu.Lock()
	if err := c.inject("feed", nil, ""); err != nil {
		c.mu.Unlock()
		return migrate.ChangePage{}, err
	}
	after, _ := strconv.Atoi(req.Continuation)
	var found []migrate.Item
	for addr, it := range c.items {
		if memRangeOf(addr) == req.Range && lsnOf(it.ETag) > after {
			found = append(found, it)
		}
	}
	sort.Slice(found, func(i, j int) bool { return lsnOf(found[i].ETag) < lsnOf(found[j].ETag) })
	if len(found) > req.PageSize {
		found = found[:req.PageSize]
	}
	page := migrate.ChangePage{Continuation: strconv.Itoa(after), RU: 2}
	for _, it := range found {
		page.Items = append(page.Items, c.stamp(it))
		page.Continuation = strconv.Itoa(lsnOf(it.ETag))
	}
	c.mu.Unlock()
	if c.OnFeed != nil {
		c.OnFeed(req, page)
	}
	return page, nil
}

func (c *Container) ReadItem(ctx context.Context, key migrate.Key, id string) (migrate.Item, error) {
	if c.OnRead != nil {
		c.OnRead(id)
	}
	it, err := c.Read(ctx, key, id)
	if err != nil {
		return migrate.Item{}, err
	}
	it.Body = c.stamp(it)
	return it, nil
}

// Upsert writes an item as an application does: create, or replace the
// current version.
func (c *Container) Upsert(t testing.TB, key migrate.Key, body string) {
	t.Helper()
	ctx := context.Background()
	_, err := c.Create(ctx, key, []byte(body))
	if errors.Is(err, migrate.ErrConflict) {
		var it migrate.Item
		if it, err = c.Read(ctx, key, IDOf([]byte(body))); err == nil {
			_, err = c.Replace(ctx, key, it.ID, []byte(body), it.ETag)
		}
	}
	if err != nil {
		t.Fatalf("upsert %s: %v", body, err)
	}
}
