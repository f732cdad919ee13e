package emulator

import (
	"encoding/json"
	"net/http"
	"strconv"
)

func (e *Emulator) routeDatabaseFeed(w http.ResponseWriter, rc *requestContext) error {
	switch {
	case rc.r.Method == http.MethodPost && isQuery(rc):
		return e.queryResources(w, rc, "Databases", "", e.databaseBodies())
	case rc.r.Method == http.MethodPost:
		return e.createDatabase(w, rc)
	case rc.r.Method == http.MethodGet:
		return e.writeFeed(w, rc, "Databases", "", e.databaseBodies())
	default:
		return methodNotAllowed(rc.r.Method)
	}
}

func (e *Emulator) routeDatabase(w http.ResponseWriter, rc *requestContext, db *database) error {
	if db == nil {
		return notFound()
	}
	switch rc.r.Method {
	case http.MethodGet:
		return e.writeDatabase(w, rc, http.StatusOK, db)
	case http.MethodDelete:
		return e.deleteDatabase(w, rc, db)
	default:
		return methodNotAllowed(rc.r.Method)
	}
}

func (e *Emulator) createDatabase(w http.ResponseWriter, rc *requestContext) error {
	body, err := rc.readBody()
	if err != nil {
		return err
	}
	p, perr := parseProps(body)
	if perr != nil {
		return badRequest("The database definition is invalid: %v", perr)
	}
	id, idErr := resourceID(p)
	if idErr != nil {
		return idErr
	}
	manual, autoscale, hasOffer, offErr := parseOfferHeaders(rc)
	if offErr != nil {
		return offErr
	}

	s := e.store
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, exists := s.dbs[id]; exists {
		return conflict()
	}
	s.nextDB++
	rid, _ := databaseRID(s.nextDB)
	db := &database{id: id, rid: rid, ts: s.unixNow(), etag: s.newETag(), colls: map[string]*container{}}
	db.body = p.clone()
	if hasOffer {
		db.offer = s.newOffer(rid, db.self(), manual, autoscale)
	}
	s.dbs[id] = db
	rc.charge = metadataWriteRU
	return e.writeDatabaseLocked(w, rc, http.StatusCreated, db)
}

func (e *Emulator) deleteDatabase(w http.ResponseWriter, rc *requestContext, db *database) error {
	s := e.store
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dbs[db.id] != db {
		return notFound()
	}
	delete(s.dbs, db.id)
	if db.offer != nil {
		delete(s.offers, db.offer.id)
	}
	for _, c := range db.colls {
		if c.offer != nil {
			delete(s.offers, c.offer.id)
		}
	}
	rc.charge = metadataWriteRU
	setCommon(w, rc, "", 0)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (e *Emulator) writeDatabase(w http.ResponseWriter, rc *requestContext, status int, db *database) error {
	e.store.mu.RLock()
	defer e.store.mu.RUnlock()
	rc.charge = metadataReadRU
	return e.writeDatabaseLocked(w, rc, status, db)
}

func (e *Emulator) writeDatabaseLocked(w http.ResponseWriter, rc *requestContext, status int, db *database) error {
	setCommon(w, rc, "", 0)
	w.Header().Set("etag", db.etag)
	writeRaw(w, status, db.document())
	return nil
}

// document renders the database as the service returns it.
func (db *database) document() []byte {
	p := db.body.clone()
	p.setJSON("id", db.id)
	p.setJSON("_rid", db.rid)
	p.setJSON("_self", db.self())
	p.setJSON("_etag", db.etag)
	p.setJSON("_colls", "colls/")
	p.setJSON("_users", "users/")
	p.set("_ts", []byte(strconv.FormatInt(db.ts, 10)))
	return p.marshal()
}

func (e *Emulator) databaseBodies() [][]byte {
	e.store.mu.RLock()
	defer e.store.mu.RUnlock()
	out := make([][]byte, 0, len(e.store.dbs))
	for _, d := range e.store.dbs {
		out = append(out, d.document())
	}
	return out
}

// resourceID returns the "id" of a database or container definition.
func resourceID(p props) (string, *svcError) {
	raw := p.get("id")
	var id string
	if raw == nil || json.Unmarshal(raw, &id) != nil || id == "" {
		return "", badRequest("The input content is invalid because the required properties - 'id; ' - are missing")
	}
	if len(id) > 255 {
		return "", badRequest("The resource id %q is longer than 255 characters.", truncate(id, 64))
	}
	for _, r := range id {
		switch r {
		case '/', '\\', '?', '#':
			return "", badRequest("The resource id %q contains the invalid character %q.", id, r)
		}
	}
	return id, nil
}
