package migrate

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// memTarget is an in-memory Target with the service's item semantics:
// (id, key) identity, ETags, conflicts, atomic batches. fail, when set, may
// inject an error into any call.
type memTarget struct {
	mu    sync.Mutex
	items map[string]Item // by keyJSON + "|" + id
	etag  int
	calls map[string]int
	fail  func(op string, key Key, id string) error
}

func newMemTarget() *memTarget {
	return &memTarget{items: map[string]Item{}, calls: map[string]int{}}
}

func itemAddr(key Key, id string) string { return key.String() + "|" + id }

func (m *memTarget) inject(op string, key Key, id string) error {
	m.calls[op]++
	if m.fail != nil {
		return m.fail(op, key, id)
	}
	return nil
}

func (m *memTarget) put(key Key, id string, body []byte) string {
	m.etag++
	etag := fmt.Sprintf(`"e%d"`, m.etag)
	m.items[itemAddr(key, id)] = Item{ID: id, Key: key, Body: append([]byte(nil), body...), ETag: etag}
	return etag
}

func (m *memTarget) Create(ctx context.Context, key Key, body []byte) (WriteResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	id := idOf(body)
	if err := m.inject("create", key, id); err != nil {
		return WriteResult{}, err
	}
	if _, ok := m.items[itemAddr(key, id)]; ok {
		return WriteResult{}, &RequestError{Op: "create", Status: http.StatusConflict, RU: 1.2}
	}
	return WriteResult{RU: 5.5, ETag: m.put(key, id, body)}, nil
}

func (m *memTarget) Read(ctx context.Context, key Key, id string) (Item, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.inject("read", key, id); err != nil {
		return Item{}, err
	}
	it, ok := m.items[itemAddr(key, id)]
	if !ok {
		return Item{}, &RequestError{Op: "read", Status: http.StatusNotFound}
	}
	it.RU = 1
	return it, nil
}

func (m *memTarget) Replace(ctx context.Context, key Key, id string, body []byte, ifMatch string) (WriteResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.inject("replace", key, id); err != nil {
		return WriteResult{}, err
	}
	it, ok := m.items[itemAddr(key, id)]
	switch {
	case !ok:
		return WriteResult{}, &RequestError{Op: "replace", Status: http.StatusNotFound}
	case ifMatch != "" && it.ETag != ifMatch:
		return WriteResult{}, &RequestError{Op: "replace", Status: http.StatusPreconditionFailed}
	}
	return WriteResult{RU: 11, ETag: m.put(key, id, body)}, nil
}

func (m *memTarget) Delete(ctx context.Context, key Key, id string, ifMatch string) (WriteResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.inject("delete", key, id); err != nil {
		return WriteResult{}, err
	}
	it, ok := m.items[itemAddr(key, id)]
	switch {
	case !ok:
		return WriteResult{}, &RequestError{Op: "delete", Status: http.StatusNotFound}
	case ifMatch != "" && it.ETag != ifMatch:
		return WriteResult{}, &RequestError{Op: "delete", Status: http.StatusPreconditionFailed}
	}
	delete(m.items, itemAddr(key, id))
	return WriteResult{RU: 5}, nil
}

func (m *memTarget) CreateBatch(ctx context.Context, key Key, bodies [][]byte) (BatchResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.inject("batch", key, ""); err != nil {
		return BatchResult{}, err
	}
	statuses := make([]int, len(bodies))
	seen := map[string]bool{}
	for i, b := range bodies {
		id := idOf(b)
		if _, ok := m.items[itemAddr(key, id)]; ok || seen[id] {
			for j := range statuses {
				statuses[j] = http.StatusFailedDependency
			}
			statuses[i] = http.StatusConflict
			return BatchResult{Statuses: statuses, RU: 2}, nil
		}
		seen[id] = true
		statuses[i] = http.StatusCreated
	}
	for _, b := range bodies {
		m.put(key, idOf(b), b)
	}
	return BatchResult{Committed: true, Statuses: statuses, RU: 5.5 * float64(len(bodies))}, nil
}

func (m *memTarget) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.items)
}

func (m *memTarget) get(key Key, id string) (Item, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	it, ok := m.items[itemAddr(key, id)]
	return it, ok
}

// idOf reads a test body's id.
func idOf(body []byte) string {
	var d struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(body, &d)
	return d.ID
}

// fakeClock sleeps instantly, recording the waits.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	slept []time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.now.IsZero() {
		c.now = time.Unix(1_700_000_000, 0)
	}
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.slept = append(c.slept, d)
	c.now = c.now.Add(d)
	c.mu.Unlock()
	return ctx.Err()
}
