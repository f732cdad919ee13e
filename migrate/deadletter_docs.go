package migrate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/rekey-dev/rekey/lease"
)

// DeadLetterStore keeps the items a migration could not write. The file
// store (DeadLetters) serves one process; DocDeadLetters keeps them as
// documents in the lease container, so the pods of a Kubernetes Job share
// them and none is lost with a pod. Implementations are safe for concurrent
// use.
type DeadLetterStore interface {
	// Add records a failed item, replacing an earlier record of it.
	Add(DeadLetter) error
	// Resolve records that an item that had failed was written after all;
	// a no-op for items that never failed.
	Resolve(sourceID string, sourceKey json.RawMessage) error
	// Sync makes every record added so far durable.
	Sync() error
	// Count is the number of items currently dead.
	Count() int
	// List returns the items currently dead, oldest first.
	List() ([]DeadLetter, error)
	// Where names the store for messages: a path or a container.
	Where() string
	Close() error
}

// List returns the items of the file that are dead now.
func (d *DeadLetters) List() ([]DeadLetter, error) {
	if err := d.Sync(); err != nil {
		return nil, err
	}
	return ListDeadLetters(d.path)
}

// Where is the file's path.
func (d *DeadLetters) Where() string { return d.path }

var _ DeadLetterStore = (*DeadLetters)(nil)

// DocDeadLetters keeps dead letters as documents in a lease container, one
// per dead source item (id "<prefix>.dead..<hash of its id and key>"), written
// as the item fails and deleted as it is resolved. Each write is durable
// once acknowledged, so Sync has nothing to do.
//
// Resolve only deletes documents this process knows of (those present when
// it opened the store and those it added), so a successful write does not
// cost a request; an item dead-lettered by another worker and written here
// later is cleared by `rekey deadletter replay`.
type DocDeadLetters struct {
	docs   lease.Documents
	prefix string
	where  string
	// Timeout bounds each request (the interface has no context).
	Timeout time.Duration

	mu    sync.Mutex
	known map[string]bool // document ids that may exist
}

// OpenDocDeadLetters opens the dead letters of the migration whose lease
// documents use prefix; where names the container for messages.
func OpenDocDeadLetters(docs lease.Documents, prefix, where string) (*DocDeadLetters, error) {
	d := &DocDeadLetters{docs: docs, prefix: prefix + ".dead..", where: where, Timeout: time.Minute, known: map[string]bool{}}
	l, err := d.List()
	if err != nil {
		return nil, err
	}
	for _, dl := range l {
		d.known[d.docID(dl.SourceID, dl.SourceKey)] = true
	}
	return d, nil
}

var _ DeadLetterStore = (*DocDeadLetters)(nil)

// docID is the document id of a dead item.
func (d *DocDeadLetters) docID(sourceID string, sourceKey json.RawMessage) string {
	sum := sha256.Sum256([]byte(sourceID + "\x00" + string(sourceKey)))
	return d.prefix + hex.EncodeToString(sum[:16])
}

func (d *DocDeadLetters) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d.Timeout)
}

// Add creates the item's document, or replaces it with the newer failure.
func (d *DocDeadLetters) Add(dl DeadLetter) error {
	dl.Resolved = false
	id := d.docID(dl.SourceID, dl.SourceKey)
	body, err := json.Marshal(struct {
		ID string `json:"id"`
		DeadLetter
	}{id, dl})
	if err != nil {
		return fmt.Errorf("dead letter for item %q: %w", dl.SourceID, err)
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
func (d *DocDeadLetters) Resolve(sourceID string, sourceKey json.RawMessage) error {
	id := d.docID(sourceID, sourceKey)
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
func (d *DocDeadLetters) Sync() error { return nil }

// List reads every dead item's document.
func (d *DocDeadLetters) List() ([]DeadLetter, error) {
	ctx, cancel := d.ctx()
	defer cancel()
	docs, err := d.docs.List(ctx, d.prefix)
	if err != nil {
		return nil, fmt.Errorf("list dead letters in %s: %w", d.where, err)
	}
	out := make([]DeadLetter, 0, len(docs))
	for _, doc := range docs {
		var dl DeadLetter
		if err := json.Unmarshal(doc.Body, &dl); err != nil {
			return nil, fmt.Errorf("dead letter document %s in %s: %w", doc.ID, d.where, err)
		}
		out = append(out, dl)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out, nil
}

// Count lists the documents; -1 when they cannot be read.
func (d *DocDeadLetters) Count() int {
	l, err := d.List()
	if err != nil {
		return -1
	}
	return len(l)
}

// Where names the container.
func (d *DocDeadLetters) Where() string { return d.where }

// Close does nothing.
func (d *DocDeadLetters) Close() error { return nil }
