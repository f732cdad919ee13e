package cosmos

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"

	"github.com/rekey-dev/rekey/migrate"
)

// Container is one container of an account: the source or the target of a
// migration. It is safe for concurrent use; errors follow the package's
// contract (see the package documentation).
type Container struct {
	client *Client
	db, id string
	cc     *azcosmos.ContainerClient
	err    error // from Client.Container: an empty name
	// priority overrides the client's request priority for this
	// container's point operations and queries; nil keeps the client's.
	priority *azcosmos.PriorityLevel

	mu  sync.Mutex
	def *migrate.Definition // cached once read; a key definition never changes
	rid string              // the container's _rid, once read (allversions.go)
}

var (
	_ migrate.Source = (*Container)(nil)
	_ migrate.Target = (*Container)(nil)
)

// headerResourceUsage carries a container's usage when quota info is asked for.
const headerResourceUsage = "x-ms-resource-usage"

// String is "DATABASE/CONTAINER".
func (c *Container) String() string { return c.db + "/" + c.id }

// Definition reads the container's partition key definition. ErrNotFound
// when the container or its database does not exist.
func (c *Container) Definition(ctx context.Context) (migrate.Definition, error) {
	if c.err != nil {
		return migrate.Definition{}, c.err
	}
	resp, err := c.cc.Read(ctx, nil)
	if err != nil {
		return migrate.Definition{}, c.classify(ctx, "read container "+c.String(), err)
	}
	if resp.ContainerProperties == nil {
		return migrate.Definition{}, fmt.Errorf("read container %s: the response has no properties", c)
	}
	def := definitionOf(resp.ContainerProperties.PartitionKeyDefinition)
	c.mu.Lock()
	c.def = &def
	c.mu.Unlock()
	return def, nil
}

// classify is the client's classify for an operation on the container
// itself: its 404 means the container (or its database) does not exist,
// which it returns as a *migrate.MissingContainerError.
func (c *Container) classify(ctx context.Context, op string, err error) error {
	err = c.client.classify(ctx, op, err)
	if errors.Is(err, migrate.ErrNotFound) {
		return &migrate.MissingContainerError{Container: c.String(), Err: err}
	}
	return err
}

// cachedDefinition returns the definition, reading it the first time.
func (c *Container) cachedDefinition(ctx context.Context) (migrate.Definition, error) {
	c.mu.Lock()
	def := c.def
	c.mu.Unlock()
	if def != nil {
		return *def, nil
	}
	return c.Definition(ctx)
}

// definitionOf converts the SDK's definition; a definition without a
// version is version 1, without a kind Hash (MultiHash with several paths),
// as the service reads them.
func definitionOf(d azcosmos.PartitionKeyDefinition) migrate.Definition {
	def := migrate.Definition{Paths: append([]string(nil), d.Paths...), Kind: string(d.Kind), Version: d.Version}
	if def.Version == 0 {
		def.Version = 1
	}
	if def.Kind == "" {
		def.Kind = string(azcosmos.PartitionKeyKindHash)
		if len(def.Paths) > 1 {
			def.Kind = string(azcosmos.PartitionKeyKindMultiHash)
		}
	}
	return def
}

// FeedRanges lists the container's feed ranges (one per physical
// partition), ordered by their minimum EPK, covering the whole key space.
//
// They come from the SDK's routing map, which is cached per account and
// refreshed when a request meets a split (410/1002), not on a timer: right
// after a split it may still list the parent range. That is harmless, since
// the parent covers the same keys and ReadChanges on it reads its children.
func (c *Container) FeedRanges(ctx context.Context) ([]migrate.FeedRange, error) {
	if c.err != nil {
		return nil, c.err
	}
	frs, err := c.cc.ReadFeedRanges(ctx, nil)
	if err != nil {
		return nil, c.classify(ctx, "read feed ranges of "+c.String(), err)
	}
	out := make([]migrate.FeedRange, len(frs))
	for i, fr := range frs {
		out[i] = migrate.FeedRange{Min: fr.MinInclusive, Max: fr.MaxExclusive}
	}
	// EPKs are upper-case hex of varying length: byte order is string
	// order, "" (the start) first.
	sort.Slice(out, func(i, j int) bool { return out[i].Min < out[j].Min })
	return out, nil
}

// ItemCount is the number of items the container holds, from the
// documentsCount of its x-ms-resource-usage header (approximate while the
// container is written to).
func (c *Container) ItemCount(ctx context.Context) (int64, error) {
	if c.err != nil {
		return 0, c.err
	}
	op := "read item count of " + c.String()
	resp, err := c.cc.Read(ctx, &azcosmos.ReadContainerOptions{PopulateQuotaInfo: true})
	if err != nil {
		return 0, c.classify(ctx, op, err)
	}
	usage := resp.RawResponse.Header.Get(headerResourceUsage)
	n, ok := usageField(usage, "documentsCount")
	if !ok {
		return 0, fmt.Errorf("%s: the response's %s header has no documentsCount (%q)", op, headerResourceUsage, usage)
	}
	return n, nil
}

// usageField reads one field of "name=value;name=value;".
func usageField(h, name string) (int64, bool) {
	for _, part := range strings.Split(h, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if ok && strings.EqualFold(k, name) {
			n, err := strconv.ParseInt(v, 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}
