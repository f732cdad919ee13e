package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// defaultIndexingPolicy is what the service stores when a container is
// created without one.
const defaultIndexingPolicy = `{"indexingMode":"consistent","automatic":true,"includedPaths":[{"path":"/*"}],"excludedPaths":[{"path":"/\"_etag\"/?"}]}`

// defaultRU is the throughput of a container created without any in a
// database without shared throughput.
const defaultRU = 400

func (e *Emulator) routeContainerFeed(w http.ResponseWriter, rc *requestContext, db *database) error {
	switch {
	case rc.r.Method == http.MethodPost && isQuery(rc):
		return e.queryResources(w, rc, "DocumentCollections", db.rid, e.containerBodies(db))
	case rc.r.Method == http.MethodPost:
		return e.createContainer(w, rc, db)
	case rc.r.Method == http.MethodGet:
		return e.writeFeed(w, rc, "DocumentCollections", db.rid, e.containerBodies(db))
	default:
		return methodNotAllowed(rc.r.Method)
	}
}

func (e *Emulator) routeContainer(w http.ResponseWriter, rc *requestContext, db *database, c *container) error {
	if c == nil {
		return notFound()
	}
	switch rc.r.Method {
	case http.MethodGet:
		return e.readContainer(w, rc, c)
	case http.MethodPut:
		return e.replaceContainer(w, rc, c)
	case http.MethodDelete:
		return e.deleteContainer(w, rc, db, c)
	default:
		return methodNotAllowed(rc.r.Method)
	}
}

// containerBody reads and validates a container definition: its id, its
// partition key definition and its default TTL.
func containerBody(rc *requestContext) (props, string, pkDefinition, *svcError) {
	body, err := rc.readBody()
	if err != nil {
		return nil, "", pkDefinition{}, err
	}
	p, perr := parseProps(body)
	if perr != nil {
		return nil, "", pkDefinition{}, badRequest("The container definition is invalid: %v", perr)
	}
	id, err := resourceID(p)
	if err != nil {
		return nil, "", pkDefinition{}, err
	}
	def, err := parsePKDefinition(p.get("partitionKey"))
	if err != nil {
		return nil, "", pkDefinition{}, err
	}
	if err := validateTTL(p.get("defaultTtl")); err != nil {
		return nil, "", pkDefinition{}, err
	}
	if _, err := parseChangeFeedPolicy(p.get("changeFeedPolicy")); err != nil {
		return nil, "", pkDefinition{}, err
	}
	return p, id, def, nil
}

func (e *Emulator) createContainer(w http.ResponseWriter, rc *requestContext, db *database) error {
	p, id, def, err := containerBody(rc)
	if err != nil {
		return err
	}
	manual, autoscale, hasOffer, offErr := parseOfferHeaders(rc)
	if offErr != nil {
		return offErr
	}

	c, err := e.addContainer(db, p, id, def, manual, autoscale, hasOffer)
	if err != nil {
		return err
	}
	if c.offer == nil {
		e.rebalanceDatabase(db)
	}
	c.mu.Lock()
	doc, etag := c.document(), c.etag
	c.mu.Unlock()
	rc.charge = metadataWriteRU
	setCommon(w, rc, "", 0)
	w.Header().Set("etag", etag)
	writeRaw(w, http.StatusCreated, doc)
	return nil
}

// addContainer registers a new container in db with its offer and initial
// physical partitions.
func (e *Emulator) addContainer(db *database, p props, id string, def pkDefinition, manual, autoscale int, hasOffer bool) (*container, *svcError) {
	s := e.store
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dbs[db.id] != db {
		return nil, notFound()
	}
	if _, exists := db.colls[id]; exists {
		return nil, conflict()
	}
	db.nextCol++
	rid, ridBytes := containerRID(decodeRID(db.rid), db.nextCol)
	c := &container{db: db, id: id, rid: rid, ridBytes: ridBytes, pk: def, clock: e.now, ts: s.unixNow(), etag: s.newETag()}
	c.body = normalizeContainerProps(p, def)
	ru := 0
	switch {
	case hasOffer:
		c.offer = s.newOffer(rid, c.self(), manual, autoscale)
		ru = c.offer.maxRU()
	case db.offer != nil:
		ru = db.offer.maxRU()
	default:
		c.offer = s.newOffer(rid, c.self(), defaultRU, 0)
		ru = defaultRU
	}
	if c.offer != nil {
		c.autoscale = c.offer.autoscaleMax > 0
	}
	c.budgetRU = float64(ru)
	c.indexed = indexesSomething(c.body.get("indexingPolicy"))
	c.applyDefinition()
	if err := c.initRanges(partitionsForNewContainer(ru)); err != nil {
		return nil, newError(http.StatusInternalServerError, "%v", err)
	}
	db.colls[id] = c
	return c, nil
}

// partitionsForNewContainer is the service's rule: one physical partition per
// 6,000 RU/s provisioned at creation, at least one.
func partitionsForNewContainer(ru int) int {
	n := (ru + ruPerNewPartition - 1) / ruPerNewPartition
	if n < 1 {
		n = 1
	}
	return n
}

// normalizeContainerProps fills in the defaults the service stores.
func normalizeContainerProps(p props, def pkDefinition) props {
	out := p.clone()
	for k := range systemProperties {
		out.remove(k)
	}
	if out.get("indexingPolicy") == nil {
		out.set("indexingPolicy", []byte(defaultIndexingPolicy))
	}
	pk := map[string]any{"paths": def.rawPaths, "kind": def.kind}
	if bytes.Contains(p.get("partitionKey"), []byte(`"version"`)) {
		pk["version"] = def.version
	}
	out.setJSON("partitionKey", pk)
	if out.get("conflictResolutionPolicy") == nil {
		out.set("conflictResolutionPolicy", []byte(`{"mode":"LastWriterWins","conflictResolutionPath":"/_ts","conflictResolutionProcedure":""}`))
	}
	if out.get("geospatialConfig") == nil {
		out.set("geospatialConfig", []byte(`{"type":"Geography"}`))
	}
	return out
}

// validateTTL checks defaultTtl: absent, -1 (on, no default) or a positive number of seconds.
func validateTTL(raw []byte) *svcError {
	if raw == nil {
		return nil
	}
	n, err := strconv.Atoi(string(raw))
	if err != nil || n == 0 || n < -1 {
		return badRequest("The defaultTtl %s is invalid: use -1 or a positive number of seconds.", raw)
	}
	return nil
}

// document renders the container as the service returns it; c.mu or the
// store's lock must keep it stable.
func (c *container) document() []byte {
	p := c.body.clone()
	p.setJSON("_rid", c.rid)
	p.set("_ts", []byte(strconv.FormatInt(c.ts, 10)))
	p.setJSON("_self", c.self())
	p.setJSON("_etag", c.etag)
	p.setJSON("_docs", "docs/")
	p.setJSON("_sprocs", "sprocs/")
	p.setJSON("_triggers", "triggers/")
	p.setJSON("_udfs", "udfs/")
	p.setJSON("_conflicts", "conflicts/")
	return p.marshal()
}

func (e *Emulator) readContainer(w http.ResponseWriter, rc *requestContext, c *container) error {
	c.mu.Lock()
	doc := c.document()
	count, size := 0, int64(0)
	for _, p := range c.ranges {
		count += p.count()
		size += p.bytes
	}
	etag := c.etag
	c.mu.Unlock()
	rc.charge = metadataReadRU
	setCommon(w, rc, "", 0)
	h := w.Header()
	h.Set("etag", etag)
	if rc.headerBool("x-ms-documentdb-populatequotainfo") {
		kb := (size + 1023) / 1024
		h.Set("x-ms-resource-quota", "documentSize=51200;documentsSize=52428800;documentsCount=-1;collectionSize=52428800;")
		h.Set("x-ms-resource-usage", fmt.Sprintf("documentSize=%d;documentsSize=%d;documentsCount=%d;collectionSize=%d;", kb/1024, kb, count, kb))
	}
	writeRaw(w, http.StatusOK, doc)
	return nil
}

func (e *Emulator) replaceContainer(w http.ResponseWriter, rc *requestContext, c *container) error {
	p, id, def, err := containerBody(rc)
	if err != nil {
		return err
	}
	if id != c.id {
		return badRequest("The container id %q in the body does not match %q in the path.", id, c.id)
	}
	if !samePKDefinition(def, c.pk) {
		return badRequest("The partition key definition of a container cannot be changed: it is %v, the request has %v. Create a new container (rekey migrates the data).", c.pk.rawPaths, def.rawPaths)
	}
	e.store.mu.Lock()
	etag := e.store.newETag()
	e.store.mu.Unlock()
	c.mu.Lock()
	if m := rc.header("If-Match"); m != "" && m != c.etag {
		c.mu.Unlock()
		return preconditionFailed()
	}
	c.body = normalizeContainerProps(p, c.pk)
	c.indexed = indexesSomething(c.body.get("indexingPolicy"))
	c.applyDefinition()
	c.touch(etag)
	doc := c.document()
	c.mu.Unlock()
	rc.charge = metadataWriteRU
	setCommon(w, rc, "", 0)
	w.Header().Set("etag", etag)
	writeRaw(w, http.StatusOK, doc)
	return nil
}

// applyDefinition applies the parts of the definition the data path
// follows: the default time to live and the change feed policy's
// retention. The body was validated by containerBody; c.mu or the store's
// lock is held.
func (c *container) applyDefinition() {
	c.defaultTTL = parseDefaultTTL(c.body.get("defaultTtl"))
	c.nextExpiry = 0 // expiries follow the new default: look again
	retention, _ := parseChangeFeedPolicy(c.body.get("changeFeedPolicy"))
	c.setPolicy(retention)
}

func samePKDefinition(a, b pkDefinition) bool {
	if a.kind != b.kind || a.version != b.version || len(a.rawPaths) != len(b.rawPaths) {
		return false
	}
	for i := range a.rawPaths {
		if a.rawPaths[i] != b.rawPaths[i] {
			return false
		}
	}
	return true
}

func (e *Emulator) deleteContainer(w http.ResponseWriter, rc *requestContext, db *database, c *container) error {
	s := e.store
	s.mu.Lock()
	if db.colls[c.id] != c {
		s.mu.Unlock()
		return notFound()
	}
	delete(db.colls, c.id)
	if c.offer != nil {
		delete(s.offers, c.offer.id)
	}
	s.mu.Unlock()
	if c.offer == nil {
		e.rebalanceDatabase(db)
	}
	rc.charge = metadataWriteRU
	setCommon(w, rc, "", 0)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (e *Emulator) containerBodies(db *database) [][]byte {
	e.store.mu.RLock()
	colls := make([]*container, 0, len(db.colls))
	for _, c := range db.colls {
		colls = append(colls, c)
	}
	e.store.mu.RUnlock()
	out := make([][]byte, 0, len(colls))
	for _, c := range colls {
		c.mu.Lock()
		out = append(out, c.document())
		c.mu.Unlock()
	}
	return out
}

// pkDefinitionJSON is used by tests and the metrics API.
func (d pkDefinition) String() string {
	b, _ := json.Marshal(map[string]any{"paths": d.rawPaths, "kind": d.kind, "version": d.version})
	return string(b)
}

// indexesSomething reports whether an indexing policy indexes any path: not
// when its mode is "none" or when it excludes /* and includes nothing. Writes
// to such a container cost less.
func indexesSomething(raw []byte) bool {
	var p struct {
		IndexingMode  string `json:"indexingMode"`
		IncludedPaths []struct {
			Path string `json:"path"`
		} `json:"includedPaths"`
		ExcludedPaths []struct {
			Path string `json:"path"`
		} `json:"excludedPaths"`
	}
	if json.Unmarshal(raw, &p) != nil {
		return true
	}
	if strings.EqualFold(p.IndexingMode, "none") {
		return false
	}
	if len(p.IncludedPaths) > 0 {
		return true
	}
	for _, e := range p.ExcludedPaths {
		if e.Path == "/*" {
			return false
		}
	}
	return true
}
