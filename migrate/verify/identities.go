package verify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"

	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/transform"
)

// Identities is the set of items a scan of one container saw, by identity
// (id and key), whatever their content: how many, and a fingerprint of the
// set that does not depend on the order they were read in. Two scans with
// equal Identities saw the same items; one that lost an item (deleted, or
// expired by its time to live) has another fingerprint.
//
// The latest-version change feed carries no deletes, so cutover compares
// the Identities its final verify saw of the container the application
// wrote with a scan of it after the verify (Verifier.SourceIdentities; a
// rollback's, TargetIdentities): a delete while the verify ran shows as a
// change of the set.
type Identities struct {
	Count  int64  `json:"count"`
	Digest string `json:"digest"`
}

// identitySet adds up Identities; safe for concurrent use.
type identitySet struct {
	mu     sync.Mutex
	count  int64
	digest setDigest
}

func (s *identitySet) add(ident string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.count++
	s.digest.add(ident, migrate.Digest{})
}

func (s *identitySet) result() Identities {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Identities{Count: s.count, Digest: s.digest.String()}
}

// sourceIdentity is the identity of a source item as the records of a
// verify name it: its id and source key, read as the key spec reads them;
// for an item whose id or key cannot be read (verify reports it as
// untransformable), the hash of the item as stored, which stays the same
// while the item does.
func (v *Verifier) sourceIdentity(body []byte) string {
	id, sk, err := v.Transformer.SourceKeyOf(body)
	if err != nil {
		sum := sha256.Sum256(body)
		return "\x00unreadable " + hex.EncodeToString(sum[:])
	}
	return (&record{id: id, srcKey: migrate.Key(sk).String()}).ident()
}

// SourceIdentities scans the source, as Verify does, and returns the
// identities of the items it holds now.
func (v *Verifier) SourceIdentities(ctx context.Context) (Identities, error) {
	clock := v.Clock
	if clock == nil {
		clock = migrate.SystemClock{}
	}
	retry := &migrate.Retrier{Clock: clock, Tries: migrate.DefaultTransientTries}
	var set identitySet
	err := scanContainer(ctx, v.Source, retry, func(body []byte) error {
		set.add(v.sourceIdentity(body))
		return nil
	})
	if err != nil {
		return Identities{}, fmt.Errorf("scan the source's items: %w", err)
	}
	return set.result(), nil
}

// targetIdentity is the identity of a target item: its id and stored key
// as keyReader reads them (the key in the target and the source key kept
// alongside); for an item whose key cannot be read, the hash of the item
// as stored.
func (v *Verifier) targetIdentity(keyReader *transform.Transformer, body []byte) string {
	res, err := keyReader.Apply(body)
	if err != nil {
		sum := sha256.Sum256(body)
		return "\x00unreadable " + hex.EncodeToString(sum[:])
	}
	return res.ID + "\x00" + migrate.Key(res.Key).String() + "\x00" + migrate.Key(res.SourceKey).String()
}

// TargetIdentities scans the target, as Verify does, and returns the
// identities of the items it holds now (Report.TargetIdentities).
func (v *Verifier) TargetIdentities(ctx context.Context) (Identities, error) {
	keyReader, err := naturalKeyReader(v.Transformer)
	if err != nil {
		return Identities{}, err
	}
	clock := v.Clock
	if clock == nil {
		clock = migrate.SystemClock{}
	}
	retry := &migrate.Retrier{Clock: clock, Tries: migrate.DefaultTransientTries}
	var set identitySet
	err = scanContainer(ctx, v.Target, retry, func(body []byte) error {
		set.add(v.targetIdentity(keyReader, body))
		return nil
	})
	if err != nil {
		return Identities{}, fmt.Errorf("scan the target's items: %w", err)
	}
	return set.result(), nil
}
