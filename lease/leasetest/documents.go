package leasetest

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rekey-dev/rekey/lease"
)

// MemDocuments is an in-memory lease container with the service's rules:
// ids are unique, Create fails on a taken id, Replace and Delete compare
// the ETag, every write gets a new ETag that is never reused, and documents
// come back with the system properties "_rid", "_etag" and "_ts" added to
// their body. A body must be a JSON object whose "id" is the document id.
// Safe for concurrent use.
type MemDocuments struct {
	// Fail, when set, is called before every operation with its name
	// ("read", "create", "replace", "delete", "list", "scan") and the id
	// (the prefix for list and scan); a non-nil error is returned instead, as a fault.
	Fail func(op, id string) error

	mu   sync.Mutex
	docs map[string]memDoc
	seq  uint64
}

type memDoc struct {
	body   []byte // as written
	served []byte // as reads return it (see out)
	etag   string
	rid    uint64
}

var _ lease.Documents = (*MemDocuments)(nil)

// NewMemDocuments returns an empty container.
func NewMemDocuments() *MemDocuments {
	return &MemDocuments{docs: make(map[string]memDoc)}
}

func (m *MemDocuments) fail(op, id string) error {
	if m.Fail != nil {
		return m.Fail(op, id)
	}
	return nil
}

// Read returns the document; lease.ErrDocNotFound when absent.
func (m *MemDocuments) Read(ctx context.Context, id string) (lease.Doc, error) {
	if err := m.begin(ctx, "read", id); err != nil {
		return lease.Doc{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.docs[id]
	if !ok {
		return lease.Doc{}, fmt.Errorf("read %s: 404: %w", id, lease.ErrDocNotFound)
	}
	return m.out(id, d), nil
}

// Create stores a new document; lease.ErrDocExists when the id is taken.
func (m *MemDocuments) Create(ctx context.Context, id string, body []byte) (string, error) {
	if err := m.begin(ctx, "create", id); err != nil {
		return "", err
	}
	if err := checkBody(id, body); err != nil {
		return "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.docs[id]; ok {
		return "", fmt.Errorf("create %s: 409: %w", id, lease.ErrDocExists)
	}
	return m.put(id, body), nil
}

// Replace overwrites the document if its ETag equals ifMatch.
func (m *MemDocuments) Replace(ctx context.Context, id string, body []byte, ifMatch string) (string, error) {
	if err := m.begin(ctx, "replace", id); err != nil {
		return "", err
	}
	if err := checkBody(id, body); err != nil {
		return "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.docs[id]
	switch {
	case !ok:
		return "", fmt.Errorf("replace %s: 404: %w", id, lease.ErrDocNotFound)
	case d.etag != ifMatch:
		return "", fmt.Errorf("replace %s: 412: %w", id, lease.ErrDocChanged)
	}
	return m.put(id, body), nil
}

// Delete removes the document if its ETag equals ifMatch.
func (m *MemDocuments) Delete(ctx context.Context, id string, ifMatch string) error {
	if err := m.begin(ctx, "delete", id); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.docs[id]
	switch {
	case !ok:
		return fmt.Errorf("delete %s: 404: %w", id, lease.ErrDocNotFound)
	case d.etag != ifMatch:
		return fmt.Errorf("delete %s: 412: %w", id, lease.ErrDocChanged)
	}
	delete(m.docs, id)
	return nil
}

// List returns the documents whose id starts with prefix, ordered by id.
func (m *MemDocuments) List(ctx context.Context, prefix string) ([]lease.Doc, error) {
	if err := m.begin(ctx, "list", prefix); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []lease.Doc
	for id, d := range m.docs {
		if strings.HasPrefix(id, prefix) {
			out = append(out, m.out(id, d))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Scan calls fn with each document whose id starts with prefix, ordered by
// id, outside the lock (fn may write to the container); a document deleted
// before its turn is skipped, as a paged query would.
func (m *MemDocuments) Scan(ctx context.Context, prefix string, fn func(lease.Doc) error) error {
	return m.scan(ctx, "scan", prefix, func(id string) error {
		m.mu.Lock()
		d, ok := m.docs[id]
		m.mu.Unlock()
		if !ok {
			return nil
		}
		return fn(m.out(id, d))
	})
}

// ScanIDs calls fn with the id of each document whose id starts with
// prefix, ordered by id.
func (m *MemDocuments) ScanIDs(ctx context.Context, prefix string, fn func(id string) error) error {
	return m.scan(ctx, "scan", prefix, fn)
}

func (m *MemDocuments) scan(ctx context.Context, op, prefix string, fn func(id string) error) error {
	if err := m.begin(ctx, op, prefix); err != nil {
		return err
	}
	m.mu.Lock()
	var ids []string
	for id := range m.docs {
		if strings.HasPrefix(id, prefix) {
			ids = append(ids, id)
		}
	}
	m.mu.Unlock()
	sort.Strings(ids)
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(id); err != nil {
			return err
		}
	}
	return nil
}

// Put stores body under id unconditionally, as another tool writing the
// container would; it returns the new ETag. The body is not checked.
func (m *MemDocuments) Put(id string, body []byte) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.put(id, body)
}

// Raw returns the body as it was written, without system properties, and
// whether the document exists.
func (m *MemDocuments) Raw(id string) ([]byte, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.docs[id]
	return append([]byte(nil), d.body...), ok
}

func (m *MemDocuments) begin(ctx context.Context, op, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return m.fail(op, id)
}

// put stores a document under a fresh ETag; m.mu is held.
func (m *MemDocuments) put(id string, body []byte) string {
	m.seq++
	etag := `"` + strconv.FormatUint(m.seq, 16) + `-mem"`
	rid := m.docs[id].rid
	if rid == 0 {
		rid = m.seq
	}
	d := memDoc{body: append([]byte(nil), body...), etag: etag, rid: rid}
	d.served = served(d)
	m.docs[id] = d
	return etag
}

// out returns a stored document as the service would (see served).
func (m *MemDocuments) out(id string, d memDoc) lease.Doc {
	return lease.Doc{ID: id, Body: append([]byte(nil), d.served...), ETag: d.etag}
}

// served is a document's body as the service returns it: with "_rid",
// "_etag" and "_ts" (the time of the write) added.
func served(d memDoc) []byte {
	var obj map[string]json.RawMessage
	if json.Unmarshal(d.body, &obj) != nil || obj == nil {
		return d.body
	}
	obj["_rid"], _ = json.Marshal(strconv.FormatUint(d.rid, 36))
	obj["_etag"], _ = json.Marshal(d.etag)
	obj["_ts"], _ = json.Marshal(time.Now().Unix())
	b, err := json.Marshal(obj)
	if err != nil {
		return d.body
	}
	return b
}

// checkBody refuses what the service refuses with a 400.
// maxDocBytes is the service's bound on a document (an item): 2 MB.
const maxDocBytes = 2 * 1024 * 1024

func checkBody(id string, body []byte) error {
	if len(body) > maxDocBytes {
		return fmt.Errorf("write %s: 413: a document of %d bytes is over the service's %d", id, len(body), maxDocBytes)
	}
	var obj struct {
		ID *string `json:"id"`
	}
	if err := json.Unmarshal(body, &obj); err != nil {
		return fmt.Errorf("write %s: 400: body is not a JSON object: %w", id, err)
	}
	if obj.ID == nil || *obj.ID != id {
		return fmt.Errorf("write %s: 400: body id does not match", id)
	}
	return nil
}
