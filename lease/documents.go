package lease

import (
	"context"
	"errors"
)

// Errors a Documents implementation returns, decided with errors.Is.
var (
	// ErrDocNotFound: no document has the id (404).
	ErrDocNotFound = errors.New("lease document not found")
	// ErrDocExists: Create found a document with the id (409).
	ErrDocExists = errors.New("lease document already exists")
	// ErrDocChanged: the document's ETag no longer equals ifMatch (412).
	ErrDocChanged = errors.New("lease document changed")
)

// Doc is one stored document with its ETag.
type Doc struct {
	ID   string
	Body []byte
	ETag string
}

// Documents is a lease container as the Cosmos store needs it: JSON
// documents addressed by id in a container partitioned on /id, with
// ETag-conditional writes. internal/cosmos implements it against a real
// container; implementations are safe for concurrent use.
type Documents interface {
	// Read returns the document and its ETag; ErrDocNotFound when absent.
	Read(ctx context.Context, id string) (Doc, error)
	// Create stores a new document; ErrDocExists when the id is taken.
	Create(ctx context.Context, id string, body []byte) (etag string, err error)
	// Replace overwrites the document if its ETag equals ifMatch;
	// ErrDocChanged when it differs, ErrDocNotFound when it is gone.
	Replace(ctx context.Context, id string, body []byte, ifMatch string) (etag string, err error)
	// Delete removes the document if its ETag equals ifMatch;
	// ErrDocChanged when it differs, ErrDocNotFound when it is gone.
	Delete(ctx context.Context, id string, ifMatch string) error
	// List returns every document whose id starts with prefix.
	List(ctx context.Context, prefix string) ([]Doc, error)
}
