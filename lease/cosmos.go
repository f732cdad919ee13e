package lease

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// CosmosStore keeps a migration's state in a Cosmos DB lease container
// (partitioned on /id), for many workers: the pods of a Kubernetes Job
// share the leases, each taking some with a Leaser.
//
// Documents follow the change feed processor's conventions (see
// document.go), so its tooling can read them:
//
//	<prefix>..<lease id>   one EPK lease document per lease
//	<prefix>.meta          the Meta
//
// The processor itself writes "<prefix>.info" and "<prefix>.lock"; rekey
// writes neither, so a processor is never misled into thinking it
// initialised a rekey prefix. Every write is a create-if-absent or a replace
// with If-Match; a 412 or 404 on a lease becomes ErrLeaseLost.
//
// A CosmosStore is safe for concurrent use (as its Documents must be).
type CosmosStore struct {
	docs   Documents
	prefix string
	opts   options
}

var _ Store = (*CosmosStore)(nil)

// metaRetries bounds how often UpdateMeta re-reads the meta document when a
// concurrent writer changed it between its read and its replace.
const metaRetries = 8

// NewCosmos returns the store of the documents under prefix in docs (use
// DefaultPrefix, or one per migration when a lease container is shared).
// The prefix must be non-empty, must not end with '.' and must not contain
// '/', '\', '?' or '#'. ReadOnly does not apply; WithClock does.
func NewCosmos(docs Documents, prefix string, opts ...Option) (*CosmosStore, error) {
	if err := validatePrefix(prefix); err != nil {
		return nil, err
	}
	if docs == nil {
		return nil, errors.New("lease documents are nil")
	}
	return &CosmosStore{docs: docs, prefix: prefix, opts: buildOptions(opts)}, nil
}

// Prefix returns the store's document id prefix.
func (s *CosmosStore) Prefix() string { return s.prefix }

// Close does nothing: the store holds no resources (its Documents belongs
// to the caller).
func (s *CosmosStore) Close() error { return nil }

func (s *CosmosStore) metaID() string              { return s.prefix + ".meta" }
func (s *CosmosStore) leasePrefix() string         { return s.prefix + ".." }
func (s *CosmosStore) docID(leaseID string) string { return s.leasePrefix() + leaseID }

// Init creates the meta document when absent and returns m; otherwise it
// returns the recorded meta. Two workers racing to Init both get the
// winner's meta.
func (s *CosmosStore) Init(ctx context.Context, m Meta) (Meta, error) {
	b, err := encodeMeta(s.metaID(), m)
	if err != nil {
		return Meta{}, fmt.Errorf("init state %s: %w", s.metaID(), err)
	}
	for range metaRetries {
		_, err = s.docs.Create(ctx, s.metaID(), b)
		switch {
		case err == nil:
			return decodeMeta(b)
		case !errors.Is(err, ErrDocExists):
			return Meta{}, fmt.Errorf("init state %s: %w", s.metaID(), err)
		}
		rec, _, err := s.readMeta(ctx)
		if errors.Is(err, ErrNoMeta) {
			continue // deleted between our create and read: create again
		}
		return rec, err
	}
	return Meta{}, fmt.Errorf("init state %s: the meta document keeps changing", s.metaID())
}

// ReadMeta returns the recorded meta; an error wrapping ErrNoMeta when there
// is none.
func (s *CosmosStore) ReadMeta(ctx context.Context) (Meta, error) {
	m, _, err := s.readMeta(ctx)
	return m, err
}

func (s *CosmosStore) readMeta(ctx context.Context) (Meta, string, error) {
	doc, err := s.docs.Read(ctx, s.metaID())
	if errors.Is(err, ErrDocNotFound) {
		return Meta{}, "", fmt.Errorf("read state %s: %w", s.metaID(), ErrNoMeta)
	}
	if err != nil {
		return Meta{}, "", fmt.Errorf("read state %s: %w", s.metaID(), err)
	}
	m, err := decodeMeta(doc.Body)
	if err != nil {
		return Meta{}, "", corrupt("document "+s.metaID(), err)
	}
	return m, doc.ETag, nil
}

// UpdateMeta replaces the recorded meta (creating it when absent). The last
// writer wins, except for DefaultsUsed, whose recorded uses are merged in,
// and the phase (CutoverRequest, Cutover, RolledBack), which is kept as
// recorded: the replace is conditional on the document read, so no use
// recorded and no phase set by another worker is lost.
func (s *CosmosStore) UpdateMeta(ctx context.Context, m Meta) error {
	for range metaRetries {
		doc, err := s.docs.Read(ctx, s.metaID())
		var b []byte
		switch {
		case errors.Is(err, ErrDocNotFound):
			if b, err = encodeMeta(s.metaID(), m); err == nil {
				_, err = s.docs.Create(ctx, s.metaID(), b)
			}
		case err == nil:
			rec, derr := decodeMeta(doc.Body)
			if derr != nil {
				return corrupt("document "+s.metaID(), derr)
			}
			merged := keepPhase(m, rec)
			merged.DefaultsUsed = MergeDefaultUses(rec.DefaultsUsed, m.DefaultsUsed)
			if b, err = encodeMeta(s.metaID(), merged); err == nil {
				_, err = s.docs.Replace(ctx, s.metaID(), b, doc.ETag)
			}
		}
		if err == nil {
			return nil
		}
		if !errors.Is(err, ErrDocChanged) && !errors.Is(err, ErrDocExists) && !errors.Is(err, ErrDocNotFound) {
			return fmt.Errorf("update state %s: %w", s.metaID(), err)
		}
	}
	return fmt.Errorf("update state %s: the meta document keeps changing", s.metaID())
}

// SwapMeta reads the meta document, lets change edit it, and replaces it
// with If-Match on the ETag read; when another writer was first (412) it
// reads again and calls change again.
func (s *CosmosStore) SwapMeta(ctx context.Context, change func(*Meta) error) (Meta, error) {
	for range metaSwaps {
		m, etag, err := s.readMeta(ctx)
		if err != nil {
			return Meta{}, err
		}
		if err := change(&m); err != nil {
			return Meta{}, err
		}
		b, err := encodeMeta(s.metaID(), m)
		if err != nil {
			return Meta{}, fmt.Errorf("update state %s: %w", s.metaID(), err)
		}
		_, err = s.docs.Replace(ctx, s.metaID(), b, etag)
		switch {
		case err == nil:
			return decodeMeta(b)
		case errors.Is(err, ErrDocNotFound):
			return Meta{}, fmt.Errorf("update state %s: %w", s.metaID(), ErrNoMeta)
		case !errors.Is(err, ErrDocChanged):
			return Meta{}, fmt.Errorf("update state %s: %w", s.metaID(), err)
		}
	}
	return Meta{}, fmt.Errorf("update state %s: the meta document keeps changing", s.metaID())
}

// List returns every lease under the prefix, ordered by Range.Min. A
// document under the prefix that does not decode is an error naming it;
// documents of a longer prefix ("<prefix>...x", which no rekey lease id
// makes) are not rekey's and are skipped.
func (s *CosmosStore) List(ctx context.Context) ([]Lease, error) {
	docs, err := s.docs.List(ctx, s.leasePrefix())
	if err != nil {
		return nil, fmt.Errorf("list leases %s*: %w", s.leasePrefix(), err)
	}
	out := make([]Lease, 0, len(docs))
	for _, d := range docs {
		suffix, ok := strings.CutPrefix(d.ID, s.leasePrefix())
		if !ok || strings.HasPrefix(suffix, ".") {
			continue
		}
		l, err := s.decode(d)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	sortLeases(out)
	return out, nil
}

// Read returns the lease with the given id; ErrLeaseNotFound when its
// document does not exist.
func (s *CosmosStore) Read(ctx context.Context, id string) (Lease, error) {
	if err := validateID(id); err != nil {
		return Lease{}, fmt.Errorf("read lease: %w", err)
	}
	d, err := s.docs.Read(ctx, s.docID(id))
	if errors.Is(err, ErrDocNotFound) {
		return Lease{}, fmt.Errorf("read lease %s: %w: %w", id, ErrLeaseNotFound, err)
	}
	if err != nil {
		return Lease{}, fmt.Errorf("read lease %s: %w", id, err)
	}
	return s.decode(d)
}

// Create writes a new lease document stamped with the store's clock;
// ErrLeaseExists when its id is taken.
func (s *CosmosStore) Create(ctx context.Context, l Lease) (Lease, error) {
	l, b, err := s.encode("create", l)
	if err != nil {
		return Lease{}, err
	}
	etag, err := s.docs.Create(ctx, s.docID(l.ID), b)
	if errors.Is(err, ErrDocExists) {
		return Lease{}, fmt.Errorf("create lease %s: %w: %w", l.ID, ErrLeaseExists, err)
	}
	if err != nil {
		return Lease{}, fmt.Errorf("create lease %s: %w", l.ID, err)
	}
	l.ETag = etag
	return l, nil
}

// Update replaces the lease document if its ETag is still l.ETag, stamping
// it with the store's clock; ErrLeaseLost when it changed or was deleted.
func (s *CosmosStore) Update(ctx context.Context, l Lease) (Lease, error) {
	if l.ETag == "" {
		// An empty If-Match would make the replace unconditional.
		return Lease{}, fmt.Errorf("update lease %s: %w (no ETag: read the lease first)", l.ID, ErrLeaseLost)
	}
	l, b, err := s.encode("update", l)
	if err != nil {
		return Lease{}, err
	}
	etag, err := s.docs.Replace(ctx, s.docID(l.ID), b, l.ETag)
	if errors.Is(err, ErrDocChanged) || errors.Is(err, ErrDocNotFound) {
		return Lease{}, fmt.Errorf("update lease %s: %w: %w", l.ID, ErrLeaseLost, err)
	}
	if err != nil {
		return Lease{}, fmt.Errorf("update lease %s: %w", l.ID, err)
	}
	l.ETag = etag
	return l, nil
}

// Delete removes the lease document if its ETag is still l.ETag;
// ErrLeaseLost when it changed or was deleted.
func (s *CosmosStore) Delete(ctx context.Context, l Lease) error {
	if err := validateID(l.ID); err != nil {
		return fmt.Errorf("delete lease: %w", err)
	}
	if l.ETag == "" {
		return fmt.Errorf("delete lease %s: %w (no ETag: read the lease first)", l.ID, ErrLeaseLost)
	}
	err := s.docs.Delete(ctx, s.docID(l.ID), l.ETag)
	if errors.Is(err, ErrDocChanged) || errors.Is(err, ErrDocNotFound) {
		return fmt.Errorf("delete lease %s: %w: %w", l.ID, ErrLeaseLost, err)
	}
	if err != nil {
		return fmt.Errorf("delete lease %s: %w", l.ID, err)
	}
	return nil
}

// encode stamps l with the store's clock and returns it as it will read
// back, with its document. The document carries no "_etag": the service
// sets it.
func (s *CosmosStore) encode(op string, l Lease) (Lease, []byte, error) {
	if err := validateID(l.ID); err != nil {
		return Lease{}, nil, fmt.Errorf("%s lease: %w", op, err)
	}
	etag := l.ETag
	l.Timestamp = s.opts.now()
	l = normalize(l)
	b, err := encodeLease(s.docID(l.ID), l, "")
	if err != nil {
		return Lease{}, nil, fmt.Errorf("%s lease %s: %w", op, l.ID, err)
	}
	l.ETag = etag
	return l, b, nil
}

// decode reads a listed document; the ETag is the service's, not the body's.
func (s *CosmosStore) decode(d Doc) (Lease, error) {
	l, id, err := decodeLease(d.Body)
	switch {
	case err != nil:
		return Lease{}, corrupt("lease document "+d.ID, err)
	case id != d.ID:
		return Lease{}, corrupt("lease document "+d.ID, fmt.Errorf("its body says id %q", id))
	case d.ID != s.docID(l.ID):
		return Lease{}, corrupt("lease document "+d.ID, fmt.Errorf("LeaseToken %q does not match the id", l.ID))
	case d.ETag == "":
		return Lease{}, corrupt("lease document "+d.ID, errors.New("no ETag"))
	}
	l.ETag = d.ETag
	return l, nil
}
