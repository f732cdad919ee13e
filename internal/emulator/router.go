package emulator

import (
	"net/http"
	"strings"
)

// route dispatches a resolved, authorized request to its handler. Paths:
//
//	/                                   database account
//	/dbs[/{db}]                          databases
//	/dbs/{db}/colls[/{coll}]             containers
//	/dbs/{db}/colls/{coll}/docs[/{id}]   items, queries, batches, change feed
//	/dbs/{db}/colls/{coll}/pkranges      partition key ranges
//	/offers[/{rid}]                      throughput
func (e *Emulator) route(w http.ResponseWriter, rc *requestContext) error {
	s := rc.segs
	method := rc.r.Method
	switch {
	case len(s) == 0:
		if method != http.MethodGet {
			return methodNotAllowed(method)
		}
		return e.readAccount(w, rc)
	case s[0] == typeOffer:
		return e.routeOffers(w, rc)
	case s[0] != typeDatabase:
		return newError(http.StatusNotFound, "The resource path %q is not known to this emulator.", "/"+strings.Join(s, "/"))
	case len(s) == 1:
		return e.routeDatabaseFeed(w, rc)
	}

	e.store.mu.RLock()
	db := e.store.findDatabase(s[1])
	e.store.mu.RUnlock()
	if len(s) == 2 {
		return e.routeDatabase(w, rc, db)
	}
	if db == nil {
		return notFound()
	}
	if s[2] != typeColl {
		return unsupported(s[2])
	}
	if len(s) == 3 {
		return e.routeContainerFeed(w, rc, db)
	}
	e.store.mu.RLock()
	c := db.findContainer(s[3])
	e.store.mu.RUnlock()
	if len(s) == 4 {
		return e.routeContainer(w, rc, db, c)
	}
	if c == nil {
		return notFound()
	}
	switch {
	case s[4] == typeDoc && len(s) == 5:
		return e.routeItemFeed(w, rc, c)
	case s[4] == typeDoc && len(s) == 6:
		return e.routeItem(w, rc, c, s[5])
	case s[4] == typePKRange && len(s) == 5:
		if method != http.MethodGet {
			return methodNotAllowed(method)
		}
		return e.readPKRanges(w, rc, c)
	default:
		// Name the type the request is for (attachments under docs/{id},
		// sprocs, ...), not the container's child segment.
		return unsupported(rc.resType)
	}
}

func (e *Emulator) routeItemFeed(w http.ResponseWriter, rc *requestContext, c *container) error {
	switch rc.r.Method {
	case http.MethodPost:
		switch {
		case isQueryPlanRequest(rc):
			return e.answerQueryPlan(w, rc, c)
		case isBulkRequest(rc):
			return e.executeBulk(w, rc, c)
		case rc.headerBool("x-ms-cosmos-is-batch-request"):
			return e.executeBatch(w, rc, c)
		case isQuery(rc):
			return e.queryItems(w, rc, c)
		default:
			return e.createItem(w, rc, c, rc.headerBool("x-ms-documentdb-is-upsert"))
		}
	case http.MethodGet:
		if strings.EqualFold(rc.header("A-IM"), fullFidelityFeed) {
			return e.readAllVersionsFeed(w, rc, c)
		}
		if strings.EqualFold(rc.header("A-IM"), "Incremental Feed") {
			return e.readChangeFeed(w, rc, c)
		}
		return e.readItemFeed(w, rc, c)
	default:
		return methodNotAllowed(rc.r.Method)
	}
}

func (e *Emulator) routeItem(w http.ResponseWriter, rc *requestContext, c *container, id string) error {
	switch rc.r.Method {
	case http.MethodGet:
		return e.readItem(w, rc, c, id)
	case http.MethodPut:
		return e.replaceItem(w, rc, c, id)
	case http.MethodDelete:
		return e.deleteItem(w, rc, c, id)
	case http.MethodPatch:
		return e.patchItem(w, rc, c, id)
	default:
		return methodNotAllowed(rc.r.Method)
	}
}

// isQuery reports whether a POST to a feed is a SQL query.
func isQuery(rc *requestContext) bool {
	return rc.headerBool("x-ms-documentdb-query") ||
		strings.HasPrefix(strings.ToLower(rc.header("Content-Type")), "application/query+json")
}

func methodNotAllowed(method string) *svcError {
	return newError(http.StatusMethodNotAllowed, "The requested verb %s is not supported for this resource.", method)
}

func unsupported(segment string) *svcError {
	return badRequest("The resource type %q (stored procedures, triggers, user-defined functions, users, permissions, conflicts) is not supported by the rekey emulator.", segment)
}
