package migrate

import (
	"context"
	"time"
)

// FeedRange is a range of effective partition keys [Min, Max), as the
// service lists them ("" is the start, "FF" the end).
type FeedRange struct {
	Min string `json:"min"`
	Max string `json:"max"`
}

// Definition is a container's partition key definition.
type Definition struct {
	Paths   []string `json:"paths"`
	Kind    string   `json:"kind"`    // "Hash" or "MultiHash"
	Version int      `json:"version"` // 1 or 2
}

// Item is a stored item: its body as the service returns it (system
// properties included) and its ETag.
type Item struct {
	ID   string
	Key  Key
	Body []byte
	ETag string
	RU   float64 // what reading it cost
}

// ChangeRequest asks for one page of a feed range's change feed.
type ChangeRequest struct {
	Range FeedRange
	// Continuation resumes after the page that returned it; empty starts
	// at StartFrom, or at the beginning of the feed when StartFrom is zero.
	Continuation string
	StartFrom    time.Time
	PageSize     int
}

// ChangePage is one page of a change feed: each changed item once, at its
// latest version, in the order of the changes. An empty page means the range
// has reached the end of its feed for now.
type ChangePage struct {
	Items [][]byte
	// Continuation resumes after this page. It stays valid across splits of
	// the range: it carries the children.
	Continuation string
	RU           float64
}

// Source is the container being migrated. Implementations are safe for
// concurrent use; errors follow the contract in errors.go.
type Source interface {
	// Definition returns the container's partition key definition.
	Definition(ctx context.Context) (Definition, error)
	// FeedRanges lists the container's current feed ranges, in order.
	FeedRanges(ctx context.Context) ([]FeedRange, error)
	// ReadChanges reads one page of a range's change feed.
	ReadChanges(ctx context.Context, req ChangeRequest) (ChangePage, error)
	// ReadItem reads the current version of an item; ErrNotFound when gone.
	ReadItem(ctx context.Context, key Key, id string) (Item, error)
	// ItemCount is the number of items the container holds, as its usage
	// statistics report it (approximate while it is written to).
	ItemCount(ctx context.Context) (int64, error)
}

// WriteResult is the outcome of a successful write.
type WriteResult struct {
	RU   float64
	ETag string
}

// BatchResult is the outcome of a transactional batch. A batch commits all
// its operations or none: when Committed is false, Statuses holds each
// operation's status (the failing one's own, 424 for the others) and
// nothing was written.
type BatchResult struct {
	Committed bool
	RU        float64
	Statuses  []int
}

// Target is the container being written. Implementations are safe for
// concurrent use; errors follow the contract in errors.go.
type Target interface {
	// Create writes a new item; ErrConflict when (id, key) exists.
	Create(ctx context.Context, key Key, body []byte) (WriteResult, error)
	// Read returns an item; ErrNotFound when it does not exist.
	Read(ctx context.Context, key Key, id string) (Item, error)
	// Replace overwrites an existing item when its ETag still equals
	// ifMatch; ErrPreconditionFailed when it changed, ErrNotFound when gone.
	Replace(ctx context.Context, key Key, id string, body []byte, ifMatch string) (WriteResult, error)
	// Delete removes an item when its ETag equals ifMatch (any ETag when
	// ifMatch is empty); ErrNotFound when it does not exist.
	Delete(ctx context.Context, key Key, id string, ifMatch string) (WriteResult, error)
	// CreateBatch creates items of one logical partition atomically.
	CreateBatch(ctx context.Context, key Key, bodies [][]byte) (BatchResult, error)
}
