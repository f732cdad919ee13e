package rollback

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/migrate"
)

// Ledger remembers, for each source item the rollback wrote, the version
// (ETag) its last write left: the rollback may replace or delete a source
// item changed after the cutover only while it still holds that version,
// since any other version was written by someone else. A record must be
// durable when Record returns (the page that wrote it is checkpointed
// after). Implementations are safe for concurrent use.
type Ledger interface {
	// Written returns the ETag the rollback's last write of the item left;
	// ok is false when the rollback never wrote it.
	Written(ctx context.Context, id string, key migrate.Key) (etag string, ok bool, err error)
	// Record remembers etag as the item's version the rollback wrote.
	Record(ctx context.Context, id string, key migrate.Key, etag string) error
}

// ledgerEntry is one record of a ledger.
type ledgerEntry struct {
	ID     string          `json:"id"`
	ItemID string          `json:"itemId"`
	Key    json.RawMessage `json:"key"`
	ETag   string          `json:"etag"`
}

// entryName names an item's record: a hash of its id and key, so that any
// id fits a document id or a file name.
func entryName(id string, key migrate.Key) string {
	sum := sha256.Sum256([]byte(id + "\x00" + key.String()))
	return hex.EncodeToString(sum[:16])
}

// DocLedger keeps the ledger as documents of a lease container, one per
// item ("<prefix>.written..<hash>"), for a rollback whose state is a lease
// container: its workers share it. Each record costs a read and a create
// or a replace.
type DocLedger struct {
	docs   lease.Documents
	prefix string
}

// NewDocLedger returns the ledger under prefix (the rollback's lease
// prefix) in docs.
func NewDocLedger(docs lease.Documents, prefix string) *DocLedger {
	return &DocLedger{docs: docs, prefix: prefix + ".written.."}
}

// Written reads the item's record.
func (l *DocLedger) Written(ctx context.Context, id string, key migrate.Key) (string, bool, error) {
	doc, err := l.docs.Read(ctx, l.prefix+entryName(id, key))
	if errors.Is(err, lease.ErrDocNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("read the rollback's record of item %q: %w", id, err)
	}
	var e ledgerEntry
	if err := json.Unmarshal(doc.Body, &e); err != nil {
		return "", false, fmt.Errorf("the rollback's record of item %q does not parse: %w", id, err)
	}
	return e.ETag, true, nil
}

// Record creates or replaces the item's record; a record another worker
// wrote in between is read again and replaced.
func (l *DocLedger) Record(ctx context.Context, id string, key migrate.Key, etag string) error {
	docID := l.prefix + entryName(id, key)
	body, err := json.Marshal(ledgerEntry{ID: docID, ItemID: id, Key: key.AppendJSON(nil), ETag: etag})
	if err != nil {
		return err
	}
	for range ledgerRetries {
		doc, err := l.docs.Read(ctx, docID)
		switch {
		case errors.Is(err, lease.ErrDocNotFound):
			_, err = l.docs.Create(ctx, docID, body)
		case err == nil:
			_, err = l.docs.Replace(ctx, docID, body, doc.ETag)
		}
		if err == nil {
			return nil
		}
		if !errors.Is(err, lease.ErrDocExists) && !errors.Is(err, lease.ErrDocChanged) && !errors.Is(err, lease.ErrDocNotFound) {
			return fmt.Errorf("record the rollback's write of item %q: %w", id, err)
		}
	}
	return fmt.Errorf("record the rollback's write of item %q: its record keeps changing", id)
}

// ledgerRetries bounds Record's re-reads under concurrent writers.
const ledgerRetries = 8

// FileLedger keeps the ledger as one file per item in a directory of the
// rollback's state directory, each written as the file store writes its
// files (lease.WriteFileAtomic: temp file, fsync, rename, directory fsync).
type FileLedger struct {
	dir string
}

// OpenFileLedger opens (creating) the ledger directory dir.
func OpenFileLedger(dir string) (*FileLedger, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create the rollback's ledger %s: %w", dir, err)
	}
	return &FileLedger{dir: dir}, nil
}

// Written reads the item's record.
func (l *FileLedger) Written(_ context.Context, id string, key migrate.Key) (string, bool, error) {
	path := filepath.Join(l.dir, entryName(id, key)+".json")
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("read the rollback's record of item %q: %w", id, err)
	}
	var e ledgerEntry
	if err := json.Unmarshal(b, &e); err != nil {
		return "", false, fmt.Errorf("the rollback's record %s does not parse: %w", path, err)
	}
	return e.ETag, true, nil
}

// Record writes the item's record durably.
func (l *FileLedger) Record(_ context.Context, id string, key migrate.Key, etag string) error {
	name := entryName(id, key)
	body, err := json.Marshal(ledgerEntry{ID: name, ItemID: id, Key: key.AppendJSON(nil), ETag: etag})
	if err != nil {
		return err
	}
	if err := lease.WriteFileAtomic(l.dir, name+".json", body); err != nil {
		return fmt.Errorf("record the rollback's write of item %q in %s: %w", id, l.dir, err)
	}
	return nil
}
