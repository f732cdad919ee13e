package migratetest

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/rekey-dev/rekey/internal/epk"
	"github.com/rekey-dev/rekey/migrate"
)

// Container is an in-memory Cosmos DB container with the service's
// semantics as the internal/cosmos adapter presents them: it is both a
// migrate.Source and a migrate.Target (verify reads a target through its
// change feed), and WithAllVersions a migrate.VersionSource. The contract
// suites (RunTarget, RunSource, RunVersions) pin what it shares with the
// adapter on the emulator. Safe for concurrent use.
//
// Items are addressed by (partition key, id) and carry the system
// properties "_rid", "_self", "_etag", "_attachments" and "_ts". Every write
// takes the next container-wide log sequence number (LSN), which orders the
// change feed. Physical partitions divide the effective partition key (EPK)
// space; Split divides one, as the service does when it grows.
type Container struct {
	def  migrate.Definition
	edef epk.Definition
	now  func() time.Time
	ttl  time.Duration // the container's default time to live; 0: none

	mu       sync.Mutex
	parts    []partition // live physical partitions, ordered by Min
	nextPart int
	items    map[string]*item // by address (key and id)
	lsn      uint64           // the last LSN given out
	rid      uint64           // the last item _rid given out

	hooks hooks // Calls, Intercept, AfterFeed (hooks.go)

	versions *versionLog // the all-versions log (versions.go); nil: none
}

// partition is a physical partition: a range of EPKs.
type partition struct {
	id       int
	min, max string
}

// item is one stored version of an item.
type item struct {
	id      string
	key     migrate.Key
	epk     string
	doc     []byte // as stored, system properties included
	etag    string
	lsn     uint64
	mtime   time.Time // when it was last written
	expires time.Time // zero: never
	rid     uint64    // the _rid ordinal, kept across versions
}

// Option adjusts a new Container.
type Option func(*Container)

// WithPartitions starts the container with n physical partitions dividing
// the EPK space evenly, as a container provisioned for n partitions' worth
// of throughput starts.
func WithPartitions(n int) Option {
	return func(c *Container) { c.nextPart = max(n, 1) }
}

// WithClock makes the container read the time (for "_ts", StartFrom and
// time to live) from now instead of time.Now.
func WithClock(now func() time.Time) Option {
	return func(c *Container) {
		if now != nil {
			c.now = now
		}
	}
}

// WithDefaultTTL makes items expire d after their last write unless they
// carry their own "ttl" (seconds; -1: never), as a container's defaultTtl
// does. An expired item is gone: reads answer 404 and the change feed no
// longer carries it.
func WithDefaultTTL(d time.Duration) Option {
	return func(c *Container) { c.ttl = d }
}

// New returns an empty container with the partition key definition def.
func New(def migrate.Definition, opts ...Option) (*Container, error) {
	c := &Container{def: def, now: time.Now, items: map[string]*item{}, nextPart: 1}
	c.edef = epk.Definition{Paths: def.Paths, Kind: epk.Kind(def.Kind), Version: epk.Version(def.Version)}
	if err := c.edef.Validate(); err != nil {
		return nil, fmt.Errorf("container definition: %w", err)
	}
	for _, o := range opts {
		o(c)
	}
	n := c.nextPart
	c.nextPart = 0
	bounds, err := epk.SplitPoints(c.edef.EffectiveVersion(), epk.MinEPK, epk.MaxEPK, n)
	if err != nil {
		return nil, fmt.Errorf("container partitions: %w", err)
	}
	edges := append(append([]string{epk.MinEPK}, bounds...), epk.MaxEPK)
	for i := 0; i < n; i++ {
		c.parts = append(c.parts, partition{id: c.newPartID(), min: edges[i], max: edges[i+1]})
	}
	return c, nil
}

func (c *Container) newPartID() int {
	id := c.nextPart
	c.nextPart++
	return id
}

// Split divides the live physical partition holding the EPK at its
// midpoint, as the service splits a partition that grew. Readers holding
// a continuation go on from it on the two children; a feed range that
// covered the parent now spans both.
func (c *Container) Split(at string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	i, ok := c.partitionIndex(at)
	if !ok {
		return fmt.Errorf("split: no partition holds EPK %q", at)
	}
	p := c.parts[i]
	mids, err := epk.SplitPoints(c.edef.EffectiveVersion(), p.min, p.max, 2)
	if err != nil {
		return fmt.Errorf("split partition %d [%s, %s): %w", p.id, p.min, p.max, err)
	}
	left := partition{id: c.newPartID(), min: p.min, max: mids[0]}
	right := partition{id: c.newPartID(), min: mids[0], max: p.max}
	c.parts = slices.Replace(c.parts, i, i+1, left, right)
	return nil
}

// Partitions returns the live physical partitions, ordered.
func (c *Container) Partitions() []migrate.FeedRange {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]migrate.FeedRange, len(c.parts))
	for i, p := range c.parts {
		out[i] = migrate.FeedRange{Min: p.min, Max: p.max}
	}
	return out
}

// EPK returns the effective partition key of a key of this container.
func (c *Container) EPK(k migrate.Key) (string, error) { return epkOf(c.edef, k) }

// Items returns every live item as it is stored, in no particular order.
func (c *Container) Items() []migrate.Item {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	out := make([]migrate.Item, 0, len(c.items))
	for _, it := range c.items {
		if it.live(now) {
			out = append(out, migrate.Item{ID: it.id, Key: it.key, Body: it.doc, ETag: it.etag})
		}
	}
	return out
}

// Get returns the live item at (key, id) as stored, without a charge.
func (c *Container) Get(key migrate.Key, id string) (migrate.Item, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	it, ok := c.lookup(key, id)
	if !ok {
		return migrate.Item{}, false
	}
	return migrate.Item{ID: it.id, Key: it.key, Body: it.doc, ETag: it.etag}, true
}

// Upsert creates an item or replaces it whatever its ETag, as an
// application's upsert does; the key is read from the body.
func (c *Container) Upsert(ctx context.Context, body []byte) (migrate.WriteResult, error) {
	members, id, err := parseObject(body)
	if err != nil {
		return migrate.WriteResult{}, badRequest("upsert item", err.Error())
	}
	key, err := keyOf(members, c.def.Paths)
	if err != nil {
		return migrate.WriteResult{}, badRequest("upsert item "+strconv.Quote(id), err.Error())
	}
	return c.write(ctx, "upsert", key, members, id, modeUpsert, "")
}

// partitionIndex finds the live partition holding an EPK; c.mu is held.
func (c *Container) partitionIndex(e string) (int, bool) {
	ranges := make([]epk.Range, len(c.parts))
	for i, p := range c.parts {
		ranges[i] = epk.Range{Min: p.min, Max: p.max}
	}
	return epk.Find(ranges, e)
}

// overlapping returns the live partitions sharing an EPK with [min, max);
// c.mu is held.
func (c *Container) overlapping(min, max string) []partition {
	var out []partition
	for _, p := range c.parts {
		if (p.max == epk.MaxEPK || epk.Compare(p.max, min) > 0) && (max == epk.MaxEPK || epk.Compare(p.min, max) < 0) {
			out = append(out, p)
		}
	}
	return out
}

// live reports whether an item has not expired by now.
func (it *item) live(now time.Time) bool {
	return it.expires.IsZero() || now.Before(it.expires)
}

// lookup returns the live item at (key, id); c.mu is held.
func (c *Container) lookup(key migrate.Key, id string) (*item, bool) {
	it, ok := c.items[addr(key, id)]
	if !ok || !it.live(c.now()) {
		return nil, false
	}
	return it, true
}

func addr(key migrate.Key, id string) string { return keyAddr(key) + "\x00" + id }

// put stores a new version of an item; c.mu is held.
func (c *Container) put(key migrate.Key, id, itemEPK string, members []member) (*item, error) {
	c.sweepExpired()
	now := c.now()
	old, existed := c.lookup(key, id)
	c.lsn++
	it := &item{id: id, key: key, epk: itemEPK, lsn: c.lsn, mtime: now}
	it.etag = fmt.Sprintf(`"%016x-0000-0000-0000-%012x"`, itemEPKPrefix(itemEPK), c.lsn)
	it.rid = c.rid + 1
	if existed {
		it.rid = old.rid
	}
	ridText := "mem" + strconv.FormatUint(it.rid, 36)
	it.doc = stored(members, ridText, "docs/"+ridText+"/", it.etag, now.Unix())
	if len(it.doc) > maxItemBytes {
		c.lsn--
		return nil, errTooLarge
	}
	if !existed {
		c.rid = it.rid
		old = nil
	}
	if ttl := c.itemTTL(members); ttl > 0 {
		it.expires = now.Add(ttl)
	}
	c.items[addr(key, id)] = it
	c.logWrite(it, old)
	return it, nil
}

// itemEPKPrefix is a number from an EPK for readable, unique-per-item ETags.
func itemEPKPrefix(e string) uint64 {
	if len(e) > 16 {
		e = e[:16]
	}
	n, _ := strconv.ParseUint(e, 16, 64)
	return n
}

// itemTTL is how long an item written with members lives: its own "ttl"
// in seconds (-1: forever) when the container has a default, else the
// default; 0 means forever.
func (c *Container) itemTTL(members []member) time.Duration {
	if c.ttl == 0 {
		return 0
	}
	for _, m := range members {
		if m.name == "ttl" {
			if n, err := strconv.ParseInt(string(m.raw), 10, 64); err == nil {
				if n < 0 {
					return 0
				}
				return time.Duration(n) * time.Second
			}
		}
	}
	return c.ttl
}

// The service's limits and the request charges of the cost model, which
// follows the emulator's (internal/emulator/cost.go): a 1 KB point read
// costs 1 RU, a create 5.5, a replace twice that, a delete as a create, a
// change-feed page 2 plus 1 per item KB, an empty one 1, a failed request 1.
const (
	maxItemBytes  = 2 * 1024 * 1024
	failedRU      = 1.0
	notModifiedRU = 1.0
	feedPageRU    = 2.0
)

func sizeFactor(n int) float64 {
	kb := float64(n) / 1024
	if kb <= 1 {
		return 1
	}
	return 1 + (kb-1)*9/99
}

func readRU(n int) float64    { return sizeFactor(n) }
func createRU(n int) float64  { return 5.5 * sizeFactor(n) }
func replaceRU(n int) float64 { return 2 * createRU(n) }
func deleteRU(n int) float64  { return createRU(n) }

// errTooLarge is returned by put for an item over the 2 MB limit.
var errTooLarge = fmt.Errorf("the item is larger than the %d bytes an item may have", maxItemBytes)

// requestError is a failed request, classified as the adapter classifies
// the service's answers.
func requestError(op string, status int, ru float64, msg string) *migrate.RequestError {
	return &migrate.RequestError{Op: op, Status: status, RU: ru, Message: msg, ActivityID: "migratetest"}
}

func badRequest(op, msg string) *migrate.RequestError {
	return requestError(op, http.StatusBadRequest, 0, msg)
}
