package cosmos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"

	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/transform"
)

// The adapter of the all-versions-and-deletes feed (allversions.go) to the
// pipeline's port, migrate.VersionSource.

var _ migrate.VersionSource = (*Container)(nil)

// VersionsBookmark is AllVersionsBookmark, for migrate.VersionSource.
func (c *Container) VersionsBookmark(ctx context.Context, fr migrate.FeedRange) (string, error) {
	return c.AllVersionsBookmark(ctx, fr)
}

// ReadVersions reads one page of a feed range's all-versions feed
// (ReadAllVersions) as the pipeline takes it: each change with its
// operation, LSN and timestamp, the current and previous images, and for a
// delete the item's id and source key from the change's metadata, in the
// container's key paths' order. Errors are ReadAllVersions's.
func (c *Container) ReadVersions(ctx context.Context, req migrate.VersionRequest) (migrate.VersionPage, error) {
	page, err := c.ReadAllVersions(ctx, AllVersionsRequest{Range: req.Range, Continuation: req.Continuation, PageSize: req.PageSize})
	if err != nil {
		return migrate.VersionPage{}, err
	}
	out := migrate.VersionPage{Continuation: page.Continuation, RU: page.RU, Changes: make([]migrate.VersionChange, len(page.Changes))}
	var paths []string
	for i, e := range page.Changes {
		m := e.Metadata
		ch := migrate.VersionChange{
			Op: m.OperationType, LSN: m.LSN, TS: int64(math.Round(m.CRTS)),
			Current: e.Current, Previous: e.Previous, ID: m.ID, TTLExpired: m.TimeToLiveExpired,
		}
		if m.OperationType == ChangeDelete {
			if ch.ID == "" {
				return migrate.VersionPage{}, fmt.Errorf("read the all-versions change feed of %s: delete at LSN %d has no id in its metadata", c, m.LSN)
			}
			if paths == nil {
				def, err := c.cachedDefinition(ctx)
				if err != nil {
					return migrate.VersionPage{}, err
				}
				paths = def.Paths
			}
			if ch.SourceKey, err = metadataKey(paths, m.PartitionKey); err != nil {
				return migrate.VersionPage{}, fmt.Errorf("read the all-versions change feed of %s: delete of item %q at LSN %d: %w", c, m.ID, m.LSN, err)
			}
		}
		out.Changes[i] = ch
	}
	return out, nil
}

// metadataKey reads a delete's metadata partitionKey into a key with one
// component per path. The service writes an object of each path's last
// property name and its value (.NET ChangeFeedMetadata.PartitionKey: "All
// levels of hierarchy will be present"); an array of the values, which the
// Rust SDK reads, is taken too. An undefined component is {}.
func metadataKey(paths []string, raw json.RawMessage) (migrate.Key, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, fmt.Errorf("the metadata has no partitionKey")
	}
	if raw[0] == '[' {
		key, err := migrate.ParseKey(raw)
		if err == nil && len(key) != len(paths) {
			err = fmt.Errorf("partitionKey %s has %d components, the container's key %d", raw, len(key), len(paths))
		}
		return key, err
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, fmt.Errorf("partitionKey %s: %w", raw, err)
	}
	arr := []byte{'['}
	for i, path := range paths {
		p, err := transform.ParsePath(path)
		if err != nil {
			return nil, fmt.Errorf("partition key path %q: %w", path, err)
		}
		segs := p.Segments()
		v, ok := obj[segs[len(segs)-1]]
		if !ok {
			return nil, fmt.Errorf("partitionKey %s has no value for the key path %s", raw, path)
		}
		if i > 0 {
			arr = append(arr, ',')
		}
		arr = append(arr, v...)
	}
	return migrate.ParseKey(append(arr, ']'))
}
