package migratetest

import (
	"maps"
	"sync"

	"github.com/rekey-dev/rekey/migrate"
)

// The requests of the ports a Container serves, as Calls counts them and
// Intercept sees them. Upsert, Get and Items are the test's and the
// application's own access: neither counted nor intercepted.
const (
	OpCreate  = "create"
	OpRead    = "read" // Read and ReadItem
	OpReplace = "replace"
	OpDelete  = "delete"
	OpBatch   = "batch"
	OpFeed    = "feed"
)

// hooks are a test's view into the requests a Container serves.
type hooks struct {
	mu        sync.Mutex
	calls     map[string]int
	intercept func(op string, key migrate.Key, id string) error
	afterFeed func(migrate.ChangeRequest, migrate.ChangePage)
	serial    sync.Mutex // one hook call at a time
}

// Intercept makes fn see every request before the container serves it:
// op (OpCreate...), the item's key and id (the batch's key and no id for
// OpBatch; neither for OpFeed). An error fn returns is the request's
// answer and the container does nothing else: a failure the test injects,
// which should be a *migrate.RequestError as the adapter's are. Calls of fn
// are serialized and made outside the container's lock, so fn may write
// the container through Upsert (a newer version that lands just before
// the request) but must not make requests of the ports. nil removes it.
func (c *Container) Intercept(fn func(op string, key migrate.Key, id string) error) {
	c.hooks.mu.Lock()
	defer c.hooks.mu.Unlock()
	c.hooks.intercept = fn
}

// AfterFeed makes fn see every change-feed page the container served, with
// its request, after it was read and outside the container's lock (with
// the same rules as Intercept). nil removes it.
func (c *Container) AfterFeed(fn func(migrate.ChangeRequest, migrate.ChangePage)) {
	c.hooks.mu.Lock()
	defer c.hooks.mu.Unlock()
	c.hooks.afterFeed = fn
}

// Calls returns how many requests of each op the container received,
// intercepted and failed ones included.
func (c *Container) Calls() map[string]int {
	c.hooks.mu.Lock()
	defer c.hooks.mu.Unlock()
	return maps.Clone(c.hooks.calls)
}

// before counts a request and runs the interceptor; its error is the
// request's answer.
func (c *Container) before(op string, key migrate.Key, id string) error {
	c.hooks.mu.Lock()
	if c.hooks.calls == nil {
		c.hooks.calls = map[string]int{}
	}
	c.hooks.calls[op]++
	fn := c.hooks.intercept
	c.hooks.mu.Unlock()
	if fn == nil {
		return nil
	}
	c.hooks.serial.Lock()
	defer c.hooks.serial.Unlock()
	return fn(op, key, id)
}

// fed tells the AfterFeed hook of a page served.
func (c *Container) fed(req migrate.ChangeRequest, page migrate.ChangePage) {
	c.hooks.mu.Lock()
	fn := c.hooks.afterFeed
	c.hooks.mu.Unlock()
	if fn == nil {
		return
	}
	c.hooks.serial.Lock()
	defer c.hooks.serial.Unlock()
	fn(req, page)
}
