package migrate

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/transform"
)

// feedContainer is a memTarget that is also a Source: a latest-version
// change feed over two feed ranges (by a hash of each item's key and id),
// ordered by the ETag counter, which serves as the LSN. Bodies come back
// with a "_ts": the LSN, or ts when it is set (items written within one
// second). The hooks run outside the container's lock, so a test can write
// to the container from them: onFeed after every change-feed page, onRead
// before every ReadItem.
type feedContainer struct {
	*memTarget
	ts     int64
	onFeed func(req ChangeRequest, page ChangePage)
	onRead func(id string)
}

func newFeedContainer() *feedContainer { return &feedContainer{memTarget: newMemTarget()} }

var feedRanges = []FeedRange{{Min: "", Max: "80"}, {Min: "80", Max: "FF"}}

func memRangeOf(addr string) FeedRange {
	h := fnv.New32a()
	h.Write([]byte(addr))
	return feedRanges[h.Sum32()%2]
}

// lsnOf reads the LSN out of a memTarget ETag (`"e12"`).
func lsnOf(etag string) int {
	n, _ := strconv.Atoi(strings.Trim(etag, `"e`))
	return n
}

func (c *feedContainer) stamp(it Item) []byte {
	ts := int64(lsnOf(it.ETag))
	if c.ts != 0 {
		ts = c.ts
	}
	body := strings.TrimSuffix(strings.TrimSpace(string(it.Body)), "}")
	return fmt.Appendf(nil, `%s,"_ts":%d}`, body, ts)
}

func (c *feedContainer) Definition(context.Context) (Definition, error) {
	return Definition{Paths: []string{"/region"}, Kind: "Hash", Version: 2}, nil
}

func (c *feedContainer) FeedRanges(context.Context) ([]FeedRange, error) { return feedRanges, nil }

func (c *feedContainer) ItemCount(context.Context) (int64, error) { return int64(c.count()), nil }

func (c *feedContainer) ReadChanges(_ context.Context, req ChangeRequest) (ChangePage, error) {
	c.mu.Lock()
	if err := c.inject("feed", nil, ""); err != nil {
		c.mu.Unlock()
		return ChangePage{}, err
	}
	after, _ := strconv.Atoi(req.Continuation)
	var found []Item
	for addr, it := range c.items {
		if memRangeOf(addr) == req.Range && lsnOf(it.ETag) > after {
			found = append(found, it)
		}
	}
	sort.Slice(found, func(i, j int) bool { return lsnOf(found[i].ETag) < lsnOf(found[j].ETag) })
	if len(found) > req.PageSize {
		found = found[:req.PageSize]
	}
	page := ChangePage{Continuation: strconv.Itoa(after), RU: 2}
	for _, it := range found {
		page.Items = append(page.Items, c.stamp(it))
		page.Continuation = strconv.Itoa(lsnOf(it.ETag))
	}
	c.mu.Unlock()
	if c.onFeed != nil {
		c.onFeed(req, page)
	}
	return page, nil
}

func (c *feedContainer) ReadItem(ctx context.Context, key Key, id string) (Item, error) {
	if c.onRead != nil {
		c.onRead(id)
	}
	it, err := c.Read(ctx, key, id)
	if err != nil {
		return Item{}, err
	}
	it.Body = c.stamp(it)
	return it, nil
}

// upsert writes an item as an application does: create, or replace the
// current version.
func (c *feedContainer) upsert(t *testing.T, key Key, body string) {
	t.Helper()
	ctx := context.Background()
	_, err := c.Create(ctx, key, []byte(body))
	if errors.Is(err, ErrConflict) {
		var it Item
		if it, err = c.Read(ctx, key, idOf([]byte(body))); err == nil {
			_, err = c.Replace(ctx, key, it.ID, []byte(body), it.ETag)
		}
	}
	if err != nil {
		t.Fatalf("upsert %s: %v", body, err)
	}
}

// rig is a migration over feed containers: the source keyed on /region,
// the target on /pk={tenant}, a file state and a dead-letter file.
type rig struct {
	src, dst *feedContainer
	tr       *transform.Transformer
	store    *lease.FileStore
	dead     *DeadLetters
	clock    *fakeClock // verify's and cutover's; the runner keeps real time
}

func newRig(t *testing.T) *rig {
	t.Helper()
	spec, err := transform.ParseSpec([]string{"/pk={tenant}"})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := transform.New(spec, []string{"/region"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	store, err := lease.OpenFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if _, err := store.Init(context.Background(), NewMeta("src", "dst", tr, timeZero)); err != nil {
		t.Fatal(err)
	}
	dead, err := OpenDeadLetters(filepath.Join(dir, "deadletter.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dead.Close() })
	return &rig{src: newFeedContainer(), dst: newFeedContainer(), tr: tr, store: store, dead: dead, clock: &fakeClock{}}
}

// doc is a source item of the rig.
func doc(id, region, tenant string, v int) string {
	return fmt.Sprintf(`{"id":%q,"region":%q,"tenant":%q,"v":%d}`, id, region, tenant, v)
}

// copyOf is the target copy the spec makes of a source item.
func (r *rig) copyOf(t *testing.T, body string) (Key, string) {
	t.Helper()
	res, err := r.tr.Apply([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return Key(res.Key), string(res.Item)
}

// runner copies on real time: its heartbeats and polls would spin on a
// fake clock. Tests give it PollInterval 1ms.
func (r *rig) runner() *Runner {
	return &Runner{Source: r.src, Target: r.dst, Transformer: r.tr, Store: r.store, DeadLetters: r.dead}
}

func (r *rig) verifier() *Verifier {
	return &Verifier{Source: r.src, Target: r.dst, Writer: r.dst, Transformer: r.tr, DeadLetters: r.dead, State: r.store, Clock: r.clock}
}

// copyAll runs the migration until every range caught up.
func (r *rig) copyAll(t *testing.T) {
	t.Helper()
	if _, err := r.runner().Run(context.Background(), RunConfig{UntilCaughtUp: true, PollInterval: time.Millisecond}); err != nil {
		t.Fatalf("run: %v", err)
	}
}

func (r *rig) target(t *testing.T, body string) (Item, bool) {
	t.Helper()
	key, _ := r.copyOf(t, body)
	return r.dst.get(key, idOf([]byte(body)))
}
