package migratetest

import (
	"context"
	"fmt"
	"slices"

	"github.com/rekey-dev/rekey/migrate"
)

var _ migrate.Source = (*Container)(nil)

// Definition returns the container's partition key definition.
func (c *Container) Definition(ctx context.Context) (migrate.Definition, error) {
	if err := ctx.Err(); err != nil {
		return migrate.Definition{}, fmt.Errorf("read container: %w", err)
	}
	def := c.def
	def.Paths = slices.Clone(def.Paths)
	return def, nil
}

// FeedRanges lists the live physical partitions, ordered by their minimum
// EPK; together they cover the EPK space.
func (c *Container) FeedRanges(ctx context.Context) ([]migrate.FeedRange, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("read feed ranges: %w", err)
	}
	return c.Partitions(), nil
}

// ReadItem reads the current version of an item; ErrNotFound when gone.
func (c *Container) ReadItem(ctx context.Context, key migrate.Key, id string) (migrate.Item, error) {
	return c.Read(ctx, key, id)
}

// ItemCount is the number of live items.
func (c *Container) ItemCount(ctx context.Context) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("read item count: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	n := int64(0)
	for _, it := range c.items {
		if it.live(now) {
			n++
		}
	}
	return n, nil
}
