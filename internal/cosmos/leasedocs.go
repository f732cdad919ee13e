package cosmos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"

	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/migrate/deadletter"
	"github.com/rekey-dev/rekey/transform"
)

// LeaseKeyPath is the partition key of a lease container: each lease
// document is its own logical partition, as with the change feed processor.
const LeaseKeyPath = "/id"

// LeaseDocuments is a lease container as lease.Documents: JSON documents
// addressed by id in a container partitioned on /id, written with ETag
// compare-and-swap. It is safe for concurrent use.
//
// Errors: lease.ErrDocNotFound (404), lease.ErrDocExists (409) and
// lease.ErrDocChanged (412) wrap the *migrate.RequestError they come from,
// so throttling and transient failures keep their migrate classification.
type LeaseDocuments struct {
	c  *Container
	ru *ruCounter // the client's: LeaseRU
}

// ruCounter sums request charges, safe for concurrent use.
type ruCounter struct{ bits atomic.Uint64 }

func (c *ruCounter) add(ru float64) {
	for {
		old := c.bits.Load()
		if c.bits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+ru)) {
			return
		}
	}
}

func (c *ruCounter) load() float64 { return math.Float64frombits(c.bits.Load()) }

// LeaseRU is the request units spent so far by the lease documents of this
// client (LeaseDocuments): the state's leases, its dead letters and the
// migration's metadata, every attempt counted.
func (c *Client) LeaseRU() float64 { return c.leaseRU.load() }

// charged counts the charge of one attempt: its result's on success, its
// error's otherwise.
func (d *LeaseDocuments) charged(ru float64, err error) {
	if err != nil {
		ru = migrate.ErrorRU(err)
	}
	d.ru.add(ru)
}

var _ deadletter.Documents = (*LeaseDocuments)(nil) // lease.Documents and its page-by-page listings

// LeaseDocuments returns the lease documents of container db/container,
// which must be partitioned on /id (see EnsureLeaseContainer). Every request
// runs under migrate.Retry: a throttled one waits its retry-after, a
// transient failure is retried a few times (a lease container throttles
// like any other, and a failed renewal must not cost a lease).
//
// Its requests go out at high priority whatever the client's: they are few
// and small, and a renewal throttled before the application's writes would
// cost a worker its leases (its writes stop at the lease's fence), which is
// worse for the application than the few RU the state spends.
func (c *Client) LeaseDocuments(db, container string) *LeaseDocuments {
	cont := c.Container(db, container)
	high := azcosmos.PriorityLevelHigh
	cont.priority = &high
	return &LeaseDocuments{c: cont, ru: &c.leaseRU}
}

// EnsureLeaseContainer creates the lease container db/container, partitioned
// on /id, when it is absent (its database too), without throughput of its
// own: it shares the database's, or the service's default for a dedicated
// container applies. A container that exists with another partition key is
// an error.
func (c *Client) EnsureLeaseContainer(ctx context.Context, db, container string) error {
	err := c.CreateContainer(ctx, db, container, migrate.Definition{Paths: []string{LeaseKeyPath}}, 0, 0)
	if !errors.Is(err, migrate.ErrConflict) {
		return err
	}
	def, err := c.ContainerDefinition(ctx, db, container)
	if err != nil {
		return err
	}
	if !slices.Equal(def.Paths, []string{LeaseKeyPath}) {
		return fmt.Errorf("lease container %s/%s is partitioned on %s, not %s; use another container for the state",
			db, container, strings.Join(def.Paths, ","), LeaseKeyPath)
	}
	return nil
}

// String names the lease container.
func (d *LeaseDocuments) String() string { return d.c.String() }

// leaseKey is the partition key of the document id.
func leaseKey(id string) migrate.Key { return migrate.Key{transform.StringValue(id)} }

// Read returns the document and its ETag; ErrDocNotFound when absent. The
// body holds the document's system properties (_rid, _etag, _ts, ...).
func (d *LeaseDocuments) Read(ctx context.Context, id string) (lease.Doc, error) {
	var it migrate.Item
	err := migrate.Retry(ctx, func() (err error) {
		it, err = d.c.Read(ctx, leaseKey(id), id)
		d.charged(it.RU, err)
		return err
	})
	if err != nil {
		return lease.Doc{}, docError(err)
	}
	return lease.Doc{ID: id, Body: it.Body, ETag: it.ETag}, nil
}

// Create stores a new document; ErrDocExists when the id is taken. The
// body's "id" is set to id when absent; a different "id" is an error.
func (d *LeaseDocuments) Create(ctx context.Context, id string, body []byte) (string, error) {
	body, err := withID(body, id)
	if err != nil {
		return "", fmt.Errorf("create lease document %q: %w", id, err)
	}
	var res migrate.WriteResult
	err = migrate.Retry(ctx, func() (err error) {
		res, err = d.c.Create(ctx, leaseKey(id), body)
		d.charged(res.RU, err)
		return err
	})
	if err != nil {
		return "", docError(err)
	}
	return res.ETag, nil
}

// Replace overwrites the document if its ETag equals ifMatch (any ETag when
// ifMatch is empty); ErrDocChanged when it differs, ErrDocNotFound when the
// document is gone.
func (d *LeaseDocuments) Replace(ctx context.Context, id string, body []byte, ifMatch string) (string, error) {
	body, err := withID(body, id)
	if err != nil {
		return "", fmt.Errorf("replace lease document %q: %w", id, err)
	}
	var res migrate.WriteResult
	err = migrate.Retry(ctx, func() (err error) {
		res, err = d.c.Replace(ctx, leaseKey(id), id, body, ifMatch)
		d.charged(res.RU, err)
		return err
	})
	if err != nil {
		return "", docError(err)
	}
	return res.ETag, nil
}

// Delete removes the document if its ETag equals ifMatch (any ETag when
// ifMatch is empty); ErrDocChanged when it differs, ErrDocNotFound when the
// document is gone.
func (d *LeaseDocuments) Delete(ctx context.Context, id string, ifMatch string) error {
	err := migrate.Retry(ctx, func() error {
		res, err := d.c.Delete(ctx, leaseKey(id), id, ifMatch)
		d.charged(res.RU, err)
		return err
	})
	return docError(err)
}

// List returns every document whose id starts with prefix, ordered by id,
// with a cross-partition query.
func (d *LeaseDocuments) List(ctx context.Context, prefix string) ([]lease.Doc, error) {
	var docs []lease.Doc
	err := d.scan(ctx, prefix, 0, func(doc lease.Doc) error {
		docs = append(docs, doc)
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(docs, func(a, b lease.Doc) int { return strings.Compare(a.ID, b.ID) })
	return docs, nil
}

// scanPageSize is the page of a Scan: few documents, since a dead letter
// holds a whole item (up to 2 MB).
const scanPageSize = 16

// Scan calls fn with every document whose id starts with prefix, one page
// of a cross-partition query in memory at a time, in the query's order.
func (d *LeaseDocuments) Scan(ctx context.Context, prefix string, fn func(lease.Doc) error) error {
	return d.scan(ctx, prefix, scanPageSize, fn)
}

// scan queries the documents under prefix in pages of pageSize (0: the
// service's default).
func (d *LeaseDocuments) scan(ctx context.Context, prefix string, pageSize int, fn func(lease.Doc) error) error {
	return d.c.Query(ctx, "SELECT * FROM c WHERE STARTSWITH(c.id, @prefix)", []Param{{Name: "@prefix", Value: prefix}}, nil, pageSize,
		func(items [][]byte, ru float64) error {
			d.ru.add(ru)
			for _, body := range items {
				var head struct {
					ID   string `json:"id"`
					ETag string `json:"_etag"`
				}
				if err := json.Unmarshal(body, &head); err != nil {
					return fmt.Errorf("list lease documents of %s: %w", d, err)
				}
				if err := fn(lease.Doc{ID: head.ID, Body: body, ETag: head.ETag}); err != nil {
					return err
				}
			}
			return nil
		})
}

// ScanIDs calls fn with the id of every document whose id starts with
// prefix, reading only the ids, a page at a time.
func (d *LeaseDocuments) ScanIDs(ctx context.Context, prefix string, fn func(id string) error) error {
	return d.c.Query(ctx, "SELECT VALUE c.id FROM c WHERE STARTSWITH(c.id, @prefix)", []Param{{Name: "@prefix", Value: prefix}}, nil, 1000,
		func(items [][]byte, _ float64) error {
			for _, raw := range items {
				var id string
				if err := json.Unmarshal(raw, &id); err != nil {
					return fmt.Errorf("list lease document ids of %s: %w", d, err)
				}
				if err := fn(id); err != nil {
					return err
				}
			}
			return nil
		})
}

// docError maps a request's status to the lease package's errors, keeping
// the RequestError in the chain.
func docError(err error) error {
	switch statusOf(err) {
	case http.StatusNotFound:
		return fmt.Errorf("%w: %w", lease.ErrDocNotFound, err)
	case http.StatusConflict:
		return fmt.Errorf("%w: %w", lease.ErrDocExists, err)
	case http.StatusPreconditionFailed:
		return fmt.Errorf("%w: %w", lease.ErrDocChanged, err)
	}
	return err
}

// withID returns body with its "id" set to id: unchanged when it has that
// id, with "id" added first when it has none, an error when it has another
// or is not a JSON object.
func withID(body []byte, id string) ([]byte, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(body, &doc); err != nil || doc == nil {
		return nil, errors.New("the document is not a JSON object")
	}
	if raw, ok := doc["id"]; ok {
		var have string
		if err := json.Unmarshal(raw, &have); err != nil || have != id {
			return nil, fmt.Errorf("the document's id %s is not %q", raw, id)
		}
		return body, nil
	}
	quoted, err := json.Marshal(id)
	if err != nil {
		return nil, err
	}
	trimmed := bytes.TrimLeft(body, " \t\r\n")[1:] // after '{'
	out := make([]byte, 0, len(body)+len(quoted)+8)
	out = append(out, `{"id":`...)
	out = append(out, quoted...)
	if len(doc) > 0 {
		out = append(out, ',')
	}
	return append(out, trimmed...), nil
}
