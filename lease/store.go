package lease

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rekey-dev/rekey/internal/epk"
)

// Errors the stores return besides those in lease.go, decided with errors.Is.
var (
	// ErrCorrupt: a state file or lease document does not decode. The
	// error names the file or document; nothing was changed.
	ErrCorrupt = errors.New("lease state is corrupt")
	// ErrNoMeta: the store holds no migration (Init was never called).
	ErrNoMeta = errors.New("no migration recorded in this state")
	// ErrReadOnly: a write to a store opened with ReadOnly.
	ErrReadOnly = errors.New("lease store is read-only")
)

// errClosed is returned by a store used after Close.
var errClosed = errors.New("lease store is closed")

// DefaultPrefix is the prefix of rekey's documents in a lease container when
// the caller has no better one, and the prefix of the document ids the file
// store writes (so a file store's leases can be loaded into a container).
const DefaultPrefix = "rekey"

// Option configures a store.
type Option func(*options)

type options struct {
	now      func() time.Time
	readOnly bool
}

func buildOptions(opts []Option) options {
	o := options{now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// WithClock makes the store stamp leases with now() instead of time.Now.
// Tests pass a fake clock, the same one they give a Leaser.
func WithClock(now func() time.Time) Option {
	return func(o *options) {
		if now != nil {
			o.now = now
		}
	}
}

// ReadOnly opens a file store without taking its lock, for `rekey status`
// while a run holds it: every file is replaced atomically, so reads see
// whole files. Writes fail with ErrReadOnly.
func ReadOnly() Option {
	return func(o *options) { o.readOnly = true }
}

// TokenFor returns the lease id the change feed processor gives an EPK
// range's lease, "<min>-<max>" (so the full range is "-FF"). Callers that
// use it as Lease.ID get ids the processor's tooling recognises.
func TokenFor(r Range) string {
	return r.Min + "-" + r.Max
}

// maxIDLen keeps "<prefix>..<id>" within Cosmos DB's 255-character id.
const maxIDLen = 200

// validateID accepts ids that are valid both as a Cosmos DB document id
// suffix and as a file name on every platform.
func validateID(id string) error {
	switch {
	case id == "":
		return errors.New("lease id is empty")
	case len(id) > maxIDLen:
		return fmt.Errorf("lease id %.20q...: longer than %d bytes", id, maxIDLen)
	case !utf8.ValidString(id):
		return fmt.Errorf("lease id %q: not UTF-8", id)
	case id[0] == '.':
		// Temp files start with '.', and "<prefix>..<id>" must not
		// be read as a longer prefix.
		return fmt.Errorf("lease id %q: starts with '.'", id)
	case id[len(id)-1] == '.' || id[len(id)-1] == ' ':
		return fmt.Errorf("lease id %q: ends with '.' or ' '", id)
	}
	for _, c := range id {
		if c < 0x20 || c == 0x7f || strings.ContainsRune(`/\?#:*"<>|`, c) {
			return fmt.Errorf("lease id %q: contains %q", id, c)
		}
	}
	return nil
}

// validatePrefix accepts a lease-container prefix.
func validatePrefix(p string) error {
	switch {
	case p == "":
		return errors.New("lease prefix is empty")
	case len(p) > 40:
		return fmt.Errorf("lease prefix %q: longer than 40 bytes", p)
	case strings.HasSuffix(p, "."):
		// "a." + ".." + id would be listed under prefix "a".
		return fmt.Errorf("lease prefix %q: ends with '.'", p)
	}
	for _, c := range p {
		if c < 0x20 || c == 0x7f || strings.ContainsRune(`/\?#`, c) {
			return fmt.Errorf("lease prefix %q: contains %q", p, c)
		}
	}
	return nil
}

// normalize returns l as a store returns it after a round trip through a
// lease document: instants in UTC at the document's precision.
func normalize(l Lease) Lease {
	l.Timestamp = normTime(l.Timestamp)
	l.CheckpointedAt = normTime(l.CheckpointedAt)
	l.CaughtUpAt = normTime(l.CaughtUpAt)
	return l
}

func normTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	t = t.UTC().Truncate(timePrecision)
	if t.IsZero() {
		return time.Time{}
	}
	return t
}

// sortLeases orders leases by Range.Min as the service orders EPKs, then by
// id.
func sortLeases(ls []Lease) {
	slices.SortFunc(ls, func(a, b Lease) int {
		if c := epk.Compare(a.Range.Min, b.Range.Min); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}

// MergeDefaultUses returns the uses of a and b, each once, ordered by key,
// placeholder and default.
func MergeDefaultUses(a, b []DefaultUse) []DefaultUse {
	out := slices.Concat(a, b)
	slices.SortFunc(out, func(x, y DefaultUse) int {
		if c := x.Key - y.Key; c != 0 {
			return c
		}
		if c := x.Placeholder - y.Placeholder; c != 0 {
			return c
		}
		if c := strings.Compare(x.Default, y.Default); c != 0 {
			return c
		}
		return strings.Compare(x.Field, y.Field)
	})
	return slices.Compact(out)
}

// corrupt wraps a decoding error of the named file or document.
func corrupt(what string, err error) error {
	return fmt.Errorf("%s: %w: %w", what, ErrCorrupt, err)
}
