package migrate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/rekey-dev/rekey/lease"
)

// A lease container can hold the state of many migrations, each under its
// own document id prefix. Database and container names run to 255
// characters and document ids to 1,023 bytes, while a lease document's id
// is "<prefix>..<lease id>" with lease ids up to 200 bytes (lease package),
// so the prefix must be short whatever the names: a readable part and a
// hash of the whole source and target names.

// prefixHashLen is the hex digits of the names' SHA-256 in a prefix: 48
// bits, so two migrations sharing a lease container collide with odds
// around n²/2⁴⁹.
const prefixHashLen = 12

// maxPrefixReadable bounds the readable part, keeping the whole prefix
// within the lease package's 40 bytes: "rekey." + readable + "." + hash.
const maxPrefixReadable = 40 - len("rekey.") - 1 - prefixHashLen

// LeasePrefix names a migration's documents in a lease container:
// "rekey.<target container>.<hash>", where the target container's name is
// cut to 21 bytes of ASCII letters, digits, '-' and '_' (anything else
// becomes '-') and the hash is of both databases and containers. It is
// valid for every pair of container names and at most 40 bytes, and no
// prefix of one migration is a prefix of another's "<prefix>.." (the
// readable part has no '.').
func LeasePrefix(src, dst ContainerRef) string {
	sum := sha256.Sum256([]byte(src.Database + "/" + src.Container + "\x00" + dst.Database + "/" + dst.Container))
	var b strings.Builder
	b.WriteString("rekey.")
	for i := 0; i < len(dst.Container) && i < maxPrefixReadable; i++ {
		c := dst.Container[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' {
			b.WriteByte(c)
		} else {
			b.WriteByte('-')
		}
	}
	b.WriteByte('.')
	b.WriteString(hex.EncodeToString(sum[:])[:prefixHashLen])
	return b.String()
}

// legacyLeasePrefix is the prefix rekey gave a migration's documents before
// LeasePrefix: "rekey.<db>.<ctr>.<db>.<ctr>", usable only while at most 40
// bytes.
func legacyLeasePrefix(src, dst ContainerRef) string {
	return "rekey." + src.Database + "." + src.Container + "." + dst.Database + "." + dst.Container
}

// ResolveLeasePrefix returns the prefix under which the state of the
// migration from src to dst lives in docs: the legacy prefix when a state
// recorded under it belongs to this migration (one created by an older
// rekey), else LeasePrefix. Its only error is a failure to read docs.
func ResolveLeasePrefix(ctx context.Context, docs lease.Documents, src, dst ContainerRef) (string, error) {
	legacy, err := lease.NewCosmos(docs, legacyLeasePrefix(src, dst))
	if err != nil {
		return LeasePrefix(src, dst), nil // names too long for the old layout: no state can use it
	}
	meta, err := legacy.ReadMeta(ctx)
	switch {
	case errors.Is(err, lease.ErrNoMeta):
		return LeasePrefix(src, dst), nil
	case err != nil:
		return "", fmt.Errorf("look for a state under the prefix %s: %w", legacy.Prefix(), err)
	}
	// The old prefix joined names with '.', which names may contain: it is
	// this migration's only when its meta names the same containers.
	if strings.HasSuffix(meta.Source, "/"+src.String()) && strings.HasSuffix(meta.Target, "/"+dst.String()) {
		return legacy.Prefix(), nil
	}
	return LeasePrefix(src, dst), nil
}
