package cosmos

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"

	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"

	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/transform"
)

var _ migrate.Containers = (*Client)(nil)

// CreateContainer creates container id in database db with the partition
// key definition def, creating the database (without throughput of its
// own) when it is absent. It is what `--create-target` does.
//
// Throughput: manualRU provisions that many RU/s, autoscaleMaxRU autoscale
// up to that maximum; both zero provisions none on the container (it then
// shares its database's throughput, or the account is serverless); both
// set is an error.
//
// A container that exists already is left alone and answers an error
// matching migrate.ErrConflict: the caller compares its definition
// (ContainerDefinition) with the one it wants.
//
// def.Kind defaults to Hash for one path and MultiHash for several;
// def.Version defaults to 2 (the large-key hash new containers use).
func (c *Client) CreateContainer(ctx context.Context, db, id string, def migrate.Definition, manualRU, autoscaleMaxRU int) error {
	op := fmt.Sprintf("create container %s/%s", db, id)
	props, err := containerProperties(id, def)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := checkThroughput(manualRU, autoscaleMaxRU); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	var opts azcosmos.CreateContainerOptions
	switch {
	case manualRU > 0:
		tp := azcosmos.NewManualThroughputProperties(int32(manualRU))
		opts.ThroughputProperties = &tp
	case autoscaleMaxRU > 0:
		tp := azcosmos.NewAutoscaleThroughputProperties(int32(autoscaleMaxRU))
		opts.ThroughputProperties = &tp
	}
	database, err := c.az.NewDatabase(db)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	_, err = database.CreateContainer(ctx, props, &opts)
	if isNotFound(err) {
		// The database is absent: create it, then the container.
		_, err = c.az.CreateDatabase(ctx, azcosmos.DatabaseProperties{ID: db}, nil)
		if err != nil && !isConflict(err) {
			return c.classify(ctx, "create database "+db, err)
		}
		_, err = database.CreateContainer(ctx, props, &opts)
	}
	return c.classify(ctx, op, err)
}

// checkThroughput refuses a new container's throughput that is out of
// range, or both manual and autoscale.
func checkThroughput(manualRU, autoscaleMaxRU int) error {
	switch {
	case manualRU < 0 || autoscaleMaxRU < 0 || manualRU > math.MaxInt32 || autoscaleMaxRU > math.MaxInt32:
		return fmt.Errorf("throughput %d/%d RU/s: out of range", manualRU, autoscaleMaxRU)
	case manualRU > 0 && autoscaleMaxRU > 0:
		return errors.New("give manual or autoscale throughput, not both")
	}
	return nil
}

// containerProperties builds the properties of a new container.
func containerProperties(id string, def migrate.Definition) (azcosmos.ContainerProperties, error) {
	if len(def.Paths) == 0 || len(def.Paths) > 3 {
		return azcosmos.ContainerProperties{}, fmt.Errorf("partition key: want 1 to 3 paths, got %d", len(def.Paths))
	}
	for _, p := range def.Paths {
		if _, err := transform.ParsePath(p); err != nil {
			return azcosmos.ContainerProperties{}, fmt.Errorf("partition key path %q: want /name[/name...]: %w", p, err)
		}
	}
	kind := azcosmos.PartitionKeyKind(def.Kind)
	if kind == "" {
		kind = azcosmos.PartitionKeyKindHash
		if len(def.Paths) > 1 {
			kind = azcosmos.PartitionKeyKindMultiHash
		}
	}
	version := def.Version
	if version == 0 {
		version = 2
	}
	return azcosmos.ContainerProperties{
		ID: id,
		PartitionKeyDefinition: azcosmos.PartitionKeyDefinition{
			Paths:   append([]string(nil), def.Paths...),
			Kind:    kind,
			Version: version,
		},
	}, nil
}

// ContainerDefinition reads the partition key definition of db/id;
// ErrNotFound when the container or its database does not exist.
func (c *Client) ContainerDefinition(ctx context.Context, db, id string) (migrate.Definition, error) {
	return c.Container(db, id).Definition(ctx)
}

// Throughput is the throughput a container runs on.
type Throughput struct {
	// Manual is the provisioned RU/s; zero with autoscale.
	Manual int
	// AutoscaleMax is the autoscale maximum RU/s; zero with manual.
	AutoscaleMax int
	// Shared is set when the throughput is the database's, shared by its
	// containers.
	Shared bool
}

// None reports that neither the container nor its database has throughput
// provisioned: a serverless account.
func (t Throughput) None() bool { return t.Manual == 0 && t.AutoscaleMax == 0 }

// ReadThroughput reads the throughput of container db/id: its own offer,
// else its database's (Shared), else none (serverless). ErrNotFound when
// the container does not exist.
func (c *Client) ReadThroughput(ctx context.Context, db, id string) (Throughput, error) {
	op := fmt.Sprintf("read throughput of %s/%s", db, id)
	cont := c.Container(db, id)
	if cont.err != nil {
		return Throughput{}, cont.err
	}
	// Read the container first: the SDK answers 404 both for a missing
	// container and for a container without an offer of its own.
	if _, err := cont.Definition(ctx); err != nil {
		return Throughput{}, err
	}
	resp, err := cont.cc.ReadThroughput(ctx, nil)
	if err == nil {
		return throughputOf(resp.ThroughputProperties, false), nil
	}
	if !isNotFound(err) {
		return Throughput{}, c.classify(ctx, op, err)
	}
	database, err := c.az.NewDatabase(db)
	if err != nil {
		return Throughput{}, fmt.Errorf("%s: %w", op, err)
	}
	resp, err = database.ReadThroughput(ctx, nil)
	switch {
	case err == nil:
		return throughputOf(resp.ThroughputProperties, true), nil
	case isNotFound(err):
		return Throughput{}, nil
	default:
		return Throughput{}, c.classify(ctx, op, err)
	}
}

func throughputOf(tp *azcosmos.ThroughputProperties, shared bool) Throughput {
	t := Throughput{Shared: shared}
	if tp == nil {
		return t
	}
	if limit, ok := tp.AutoscaleMaxThroughput(); ok {
		t.AutoscaleMax = int(limit)
		return t
	}
	if ru, ok := tp.ManualThroughput(); ok {
		t.Manual = int(ru)
	}
	return t
}

// isNotFound and isConflict test an error, classified or not, for a status.
func isNotFound(err error) bool { return statusOf(err) == http.StatusNotFound }
func isConflict(err error) bool { return statusOf(err) == http.StatusConflict }
