package cosmos

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"

	"github.com/rekey-dev/rekey/migrate"
)

// A container's settings travel as the raw JSON of its definition:
// azcosmos v1.5.0's ContainerProperties has no computed properties and
// knows only part of the indexing policy, so a round trip through it would
// drop what it does not know. See docs/container-settings.md.

// Headers of a container create with throughput (azcosmos
// throughput_properties.go addHeadersToRequest).
const (
	headerOfferThroughput = "x-ms-offer-throughput"
	headerOfferAutoscale  = "x-ms-cosmos-offer-autopilot-settings"
	resourceColls         = "colls"
)

// ContainerSettings reads the definition of container db/id (GET
// dbs/{db}/colls/{id}) and returns its settings: every property but the
// id, the partition key and the system properties. ErrNotFound when the
// container or its database does not exist.
func (c *Client) ContainerSettings(ctx context.Context, db, id string) (migrate.ContainerSettings, error) {
	op := fmt.Sprintf("read the settings of container %s/%s", db, id)
	if db == "" || id == "" {
		return nil, fmt.Errorf("%s: a database and a container name are required", op)
	}
	resp, err := c.send(ctx, rawRequest{
		op: op, method: http.MethodGet,
		target: rawTarget{resourceType: resourceColls, link: containerLink(db, id)},
		path:   containerPath(db, id),
		header: http.Header{},
	})
	if err != nil {
		return nil, err
	}
	var props map[string]json.RawMessage
	if err := json.Unmarshal(resp.body, &props); err != nil {
		return nil, fmt.Errorf("%s: the definition does not parse: %w", op, err)
	}
	out := migrate.ContainerSettings{}
	for name, v := range props {
		if migrate.IsContainerSetting(name) {
			out[name] = v
		}
	}
	return out, nil
}

// CreateContainerWith creates container id in database db, as
// CreateContainer does, with settings in its definition. Without settings
// it is CreateContainer. With them the definition goes out as raw JSON
// (POST dbs/{db}/colls), so that every setting reaches the service as the
// source had it, with the throughput in x-ms-offer-throughput or
// x-ms-cosmos-offer-autopilot-settings as azcosmos sends it.
func (c *Client) CreateContainerWith(ctx context.Context, db, id string, def migrate.Definition, settings migrate.ContainerSettings, manualRU, autoscaleMaxRU int) error {
	if len(settings) == 0 {
		return c.CreateContainer(ctx, db, id, def, manualRU, autoscaleMaxRU)
	}
	op := fmt.Sprintf("create container %s/%s", db, id)
	body, err := containerBody(id, def, settings)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := checkThroughput(manualRU, autoscaleMaxRU); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	header := http.Header{}
	switch {
	case manualRU > 0:
		header.Set(headerOfferThroughput, fmt.Sprint(manualRU))
	case autoscaleMaxRU > 0:
		b, _ := json.Marshal(map[string]int{"maxThroughput": autoscaleMaxRU})
		header.Set(headerOfferAutoscale, string(b))
	}
	req := rawRequest{
		op: op, method: http.MethodPost,
		target: rawTarget{resourceType: resourceColls, link: "dbs/" + db},
		path:   "dbs/" + url.PathEscape(db) + "/" + resourceColls,
		header: header, body: body,
	}
	_, err = c.send(ctx, req)
	if isNotFound(err) {
		// The database is absent: create it, then the container.
		if _, err := c.az.CreateDatabase(ctx, azcosmos.DatabaseProperties{ID: db}, nil); err != nil && !isConflict(err) {
			return c.classify(ctx, "create database "+db, err)
		}
		_, err = c.send(ctx, req)
	}
	return err
}

// containerBody is the definition of a new container: its id and key as
// azcosmos writes them, and the settings.
func containerBody(id string, def migrate.Definition, settings migrate.ContainerSettings) ([]byte, error) {
	props, err := containerProperties(id, def)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(props)
	if err != nil {
		return nil, err
	}
	var body map[string]json.RawMessage
	if err := json.Unmarshal(b, &body); err != nil {
		return nil, err
	}
	for name, v := range settings {
		if !migrate.IsContainerSetting(name) {
			return nil, fmt.Errorf("setting %q is not a container setting", name)
		}
		if !json.Valid(v) {
			return nil, fmt.Errorf("setting %q is not JSON", name)
		}
		body[name] = v
	}
	return json.Marshal(body)
}
