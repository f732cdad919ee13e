package fake

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"

	"github.com/rekey-dev/rekey/migrate"
)

// Target is an in-memory migrate.Target with the service's item semantics:
// (id, key) identity, ETags, conflicts, atomic batches. Requests cost what
// the service charges about (a create 5.5 RU, a replace 11, a read 1).
type Target struct {
	mu    sync.Mutex
	items map[string]migrate.Item // by key JSON + "|" + id
	etag  int
	// Calls counts the calls by operation: create, read, replace, delete,
	// batch (and feed, for a Container). Read it once the calls are done.
	Calls map[string]int
	// Fail, when set, may inject an error into any call; it runs under the
	// target's lock, before the operation (Put may be called from it).
	Fail func(op string, key migrate.Key, id string) error
}

// NewTarget returns an empty target.
func NewTarget() *Target {
	return &Target{items: map[string]migrate.Item{}, Calls: map[string]int{}}
}

func itemAddr(key migrate.Key, id string) string { return key.String() + "|" + id }

func (m *Target) inject(op string, key migrate.Key, id string) error {
	m.Calls[op]++
	if m.Fail != nil {
		return m.Fail(op, key, id)
	}
	return nil
}

// Definition is a target keyed on /pk.
func (m *Target) Definition(context.Context) (migrate.Definition, error) {
	return migrate.Definition{Paths: []string{"/pk"}, Kind: "Hash", Version: 2}, nil
}

// FeedRanges is one range over the whole EPK space: one physical partition.
func (m *Target) FeedRanges(context.Context) ([]migrate.FeedRange, error) {
	return []migrate.FeedRange{{Min: "", Max: "FF"}}, nil
}

// Put stores an item as given, with a new ETag, which it returns. It does
// not lock: call it from a Fail hook, which runs under the target's lock.
func (m *Target) Put(key migrate.Key, id string, body []byte) string {
	m.etag++
	etag := fmt.Sprintf(`"e%d"`, m.etag)
	m.items[itemAddr(key, id)] = migrate.Item{ID: id, Key: key, Body: append([]byte(nil), body...), ETag: etag}
	return etag
}

func (m *Target) Create(ctx context.Context, key migrate.Key, body []byte) (migrate.WriteResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	id := IDOf(body)
	if err := m.inject("create", key, id); err != nil {
		return migrate.WriteResult{}, err
	}
	if _, ok := m.items[itemAddr(key, id)]; ok {
		return migrate.WriteResult{}, &migrate.RequestError{Op: "create", Status: http.StatusConflict, RU: 1.2}
	}
	return migrate.WriteResult{RU: 5.5, ETag: m.Put(key, id, body)}, nil
}

func (m *Target) Read(ctx context.Context, key migrate.Key, id string) (migrate.Item, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.inject("read", key, id); err != nil {
		return migrate.Item{}, err
	}
	it, ok := m.items[itemAddr(key, id)]
	if !ok {
		return migrate.Item{}, &migrate.RequestError{Op: "read", Status: http.StatusNotFound}
	}
	it.RU = 1
	return it, nil
}

func (m *Target) Replace(ctx context.Context, key migrate.Key, id string, body []byte, ifMatch string) (migrate.WriteResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.inject("replace", key, id); err != nil {
		return migrate.WriteResult{}, err
	}
	it, ok := m.items[itemAddr(key, id)]
	switch {
	case !ok:
		return migrate.WriteResult{}, &migrate.RequestError{Op: "replace", Status: http.StatusNotFound}
	case ifMatch != "" && it.ETag != ifMatch:
		return migrate.WriteResult{}, &migrate.RequestError{Op: "replace", Status: http.StatusPreconditionFailed}
	}
	return migrate.WriteResult{RU: 11, ETag: m.Put(key, id, body)}, nil
}

func (m *Target) Delete(ctx context.Context, key migrate.Key, id string, ifMatch string) (migrate.WriteResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.inject("delete", key, id); err != nil {
		return migrate.WriteResult{}, err
	}
	it, ok := m.items[itemAddr(key, id)]
	switch {
	case !ok:
		return migrate.WriteResult{}, &migrate.RequestError{Op: "delete", Status: http.StatusNotFound}
	case ifMatch != "" && it.ETag != ifMatch:
		return migrate.WriteResult{}, &migrate.RequestError{Op: "delete", Status: http.StatusPreconditionFailed}
	}
	delete(m.items, itemAddr(key, id))
	return migrate.WriteResult{RU: 5}, nil
}

func (m *Target) CreateBatch(ctx context.Context, key migrate.Key, bodies [][]byte) (migrate.BatchResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.inject("batch", key, ""); err != nil {
		return migrate.BatchResult{}, err
	}
	statuses := make([]int, len(bodies))
	seen := map[string]bool{}
	for i, b := range bodies {
		id := IDOf(b)
		if _, ok := m.items[itemAddr(key, id)]; ok || seen[id] {
			for j := range statuses {
				statuses[j] = http.StatusFailedDependency
			}
			statuses[i] = http.StatusConflict
			return migrate.BatchResult{Statuses: statuses, RU: 2}, nil
		}
		seen[id] = true
		statuses[i] = http.StatusCreated
	}
	for _, b := range bodies {
		m.Put(key, IDOf(b), b)
	}
	return migrate.BatchResult{Committed: true, Statuses: statuses, RU: 5.5 * float64(len(bodies))}, nil
}

// Count is the number of items the target holds.
func (m *Target) Count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.items)
}

// Get returns the item (id, key), if the target holds it.
func (m *Target) Get(key migrate.Key, id string) (migrate.Item, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	it, ok := m.items[itemAddr(key, id)]
	return it, ok
}

// IDOf reads an item body's id.
func IDOf(body []byte) string {
	var d struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(body, &d)
	return d.ID
}
