package deadletter

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/migrate"
)

// Documents is a lease container as DocumentStore needs it:
// lease.Documents, plus listings that go page by page so memory holds one
// page whatever the number of documents. internal/cosmos and leasetest
// implement it.
type Documents interface {
	lease.Documents
	// Scan calls fn with every document whose id starts with prefix, one
	// page of the listing in memory at a time; it stops at fn's first
	// error and returns it.
	Scan(ctx context.Context, prefix string, fn func(lease.Doc) error) error
	// ScanIDs is Scan reading the ids only.
	ScanIDs(ctx context.Context, prefix string, fn func(id string) error) error
}

// DocumentStore keeps dead letters as documents in a lease container, one
// per dead source item (id "<prefix>.dead..<hash of its id and key>"), written
// as the item fails (replacing its earlier failure, so only the latest is
// kept) and deleted as it is resolved. Each write is durable once
// acknowledged, so Sync has nothing to do. Memory holds the ids of the dead
// items this process knows of, never their bodies; Each and Count read the
// container page by page.
//
// Resolve only deletes documents this process knows of (those present when
// it opened the store and those it added), so a successful write does not
// cost a request; an item dead-lettered by another worker and written here
// later is cleared by `rekey deadletter replay`.
type DocumentStore struct {
	docs   Documents
	prefix string
	where  string
	// Timeout bounds each request, and each listing (the interface has no
	// context).
	Timeout time.Duration

	mu    sync.Mutex
	known map[string]bool // document ids that may exist
}

// OpenDocuments opens the dead letters of the migration whose lease
// documents use prefix; where names the container for messages.
func OpenDocuments(docs Documents, prefix, where string) (*DocumentStore, error) {
	d := &DocumentStore{docs: docs, prefix: prefix + ".dead..", where: where, Timeout: time.Minute, known: map[string]bool{}}
	ctx, cancel := d.ctx()
	defer cancel()
	err := docs.ScanIDs(ctx, d.prefix, func(id string) error {
		d.known[id] = true
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list dead letters in %s: %w", where, err)
	}
	return d, nil
}

var _ migrate.DeadLetterStore = (*DocumentStore)(nil)

// docID is the document id of a dead item.
func (d *DocumentStore) docID(sourceID string, sourceKey json.RawMessage) (string, error) {
	id, err := itemID(sourceID, sourceKey)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(id))
	return d.prefix + hex.EncodeToString(sum[:16]), nil
}

func (d *DocumentStore) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d.Timeout)
}

// MaxDocumentBytes bounds a dead-letter document as the service bounds an
// item (2 MB, docs/cosmos-service.md#limits): a dead letter whose item
// would make it larger is kept without the item.
const MaxDocumentBytes = 2 * 1024 * 1024

// encodeDocument is dl's document with id. When the source item would make
// it larger than MaxDocumentBytes (an item too large to copy is too large
// to keep here too), the item is left out and the reason says so: replay
// reads the item from the source again, as it always does but for a key
// the client cannot address.
func encodeDocument(id string, dl migrate.DeadLetter) ([]byte, error) {
	doc := struct {
		ID string `json:"id"`
		migrate.DeadLetter
	}{id, dl}
	body, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("dead letter for item %q: %w", dl.SourceID, err)
	}
	if len(body) <= MaxDocumentBytes || len(dl.Item) == 0 {
		return body, nil
	}
	doc.Reason = fmt.Sprintf("%s (the item, %d bytes, is not kept: a dead-letter document holds at most %d bytes)", dl.Reason, len(dl.Item), MaxDocumentBytes)
	doc.Item = nil
	if body, err = json.Marshal(doc); err != nil {
		return nil, fmt.Errorf("dead letter for item %q: %w", dl.SourceID, err)
	}
	return body, nil
}

// Add creates the item's document, or replaces it with the newer failure.
func (d *DocumentStore) Add(dl migrate.DeadLetter) error {
	dl.Resolved = false
	id, err := d.docID(dl.SourceID, dl.SourceKey)
	if err != nil {
		return err
	}
	body, err := encodeDocument(id, dl)
	if err != nil {
		return err
	}
	ctx, cancel := d.ctx()
	defer cancel()
	for attempt := 0; attempt < 5; attempt++ {
		_, err = d.docs.Create(ctx, id, body)
		if !errors.Is(err, lease.ErrDocExists) {
			break
		}
		var cur lease.Doc
		if cur, err = d.docs.Read(ctx, id); errors.Is(err, lease.ErrDocNotFound) {
			continue
		} else if err != nil {
			break
		}
		if _, err = d.docs.Replace(ctx, id, body, cur.ETag); !errors.Is(err, lease.ErrDocChanged) && !errors.Is(err, lease.ErrDocNotFound) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("record dead letter for item %q in %s: %w", dl.SourceID, d.where, err)
	}
	d.mu.Lock()
	d.known[id] = true
	d.mu.Unlock()
	return nil
}

// Resolve deletes the item's document if it has one.
func (d *DocumentStore) Resolve(sourceID string, sourceKey json.RawMessage) error {
	id, err := d.docID(sourceID, sourceKey)
	if err != nil {
		return err
	}
	d.mu.Lock()
	known := d.known[id]
	delete(d.known, id)
	d.mu.Unlock()
	if !known {
		return nil
	}
	ctx, cancel := d.ctx()
	defer cancel()
	cur, err := d.docs.Read(ctx, id)
	if err == nil {
		err = d.docs.Delete(ctx, id, cur.ETag)
	}
	if err != nil && !errors.Is(err, lease.ErrDocNotFound) && !errors.Is(err, lease.ErrDocChanged) {
		return fmt.Errorf("resolve dead letter for item %q in %s: %w", sourceID, d.where, err)
	}
	return nil
}

// Sync does nothing: every write was durable when acknowledged.
func (d *DocumentStore) Sync() error { return nil }

// Each reads the dead items' documents page by page, in the container's
// order. A document that does not decode is a *CorruptError
// naming it.
func (d *DocumentStore) Each(fn func(migrate.DeadLetter) error) error {
	ctx, cancel := d.ctx()
	defer cancel()
	var fnErr error
	err := d.docs.Scan(ctx, d.prefix, func(doc lease.Doc) error {
		var dl migrate.DeadLetter
		if err := json.Unmarshal(doc.Body, &dl); err != nil {
			return &CorruptError{Where: "document " + doc.ID + " in " + d.where, Err: err}
		}
		fnErr = fn(dl)
		return fnErr
	})
	switch {
	case err == nil:
		return nil
	case fnErr != nil && errors.Is(err, fnErr):
		return fnErr
	case errors.Is(err, ErrCorrupt):
		return err
	}
	return fmt.Errorf("list dead letters in %s: %w", d.where, err)
}

// List reads every dead item's document, oldest first, all in memory.
func (d *DocumentStore) List() ([]migrate.DeadLetter, error) { return collect(d) }

// Count counts the dead items' documents, reading their ids page by page.
func (d *DocumentStore) Count() (int, error) {
	ctx, cancel := d.ctx()
	defer cancel()
	n := 0
	err := d.docs.ScanIDs(ctx, d.prefix, func(string) error {
		n++
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("count dead letters in %s: %w", d.where, err)
	}
	return n, nil
}

// Where names the container.
func (d *DocumentStore) Where() string { return d.where }

// Close does nothing.
func (d *DocumentStore) Close() error { return nil }
