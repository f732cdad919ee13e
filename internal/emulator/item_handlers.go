package emulator

import (
	"net/http"
	"strconv"
)

// maxRequestBytes is the request size limit for one item write.
const maxRequestBytes = maxDocumentBytes

// requestPK returns the partition key the request names in
// x-ms-documentdb-partitionkey. When members is not nil (a write carrying the
// item) the item's own key values must equal it, as the service requires.
func requestPK(rc *requestContext, c *container, members []member) ([]any, *svcError) {
	h := rc.header("x-ms-documentdb-partitionkey")
	if h == "" {
		return nil, badRequest("PartitionKey value must be supplied for this operation.")
	}
	pk, err := parsePKHeader(h)
	if err != nil {
		return nil, err
	}
	if len(pk) != len(c.pk.paths) {
		return nil, badRequest("Partition key provided either doesn't correspond to definition in the collection or doesn't match partition key field values specified in the document. The container's key has %d path(s) %v; the request gave %s.", len(c.pk.paths), c.pk.rawPaths, pkJSON(pk))
	}
	if members == nil {
		return pk, nil
	}
	fromBody, err := c.pk.extractPK(members)
	if err != nil {
		return nil, err
	}
	if pkKeyOf(fromBody) != pkKeyOf(pk) {
		e := badRequest("PartitionKey extracted from document doesn't match the one specified in the header: the item has %s, the header %s. Learn more: https://aka.ms/CosmosDB/sql/errors/wrong-pk-value", pkJSON(fromBody), pkJSON(pk))
		e.subStatus = subStatusPartitionKeyMismatch
		return nil, e
	}
	return pk, nil
}

// parseItemBody reads and validates a write's item.
func parseItemBody(rc *requestContext) ([]member, string, *svcError) {
	body, err := rc.readBody()
	if err != nil {
		return nil, "", err
	}
	if len(body) > maxRequestBytes {
		return nil, "", tooLarge()
	}
	members, perr := parseObject(body)
	if perr != nil {
		return nil, "", badRequest("The input content is invalid: %v", perr)
	}
	id, idErr := documentID(members)
	if idErr != nil {
		return nil, "", idErr
	}
	return members, id, nil
}

// pointOp runs fn under the container's lock on the partition that holds pk,
// after that partition admitted the request under its RU budget, and charges
// what fn reports (failed operations still cost a little, as with the service).
func (e *Emulator) pointOp(rc *requestContext, c *container, pk []any, fn func(ops *itemOps) (float64, *svcError)) (p *partition, lsn uint64, err *svcError) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sweepExpired()
	ops := &itemOps{c: c}
	p, _ = ops.locate(pk)
	if err := e.admitRequest(rc, c, p); err != nil {
		return p, c.lsn, err
	}
	ru, err := fn(ops)
	if err != nil {
		ru = 1
	}
	c.charge(p, ru)
	rc.charge += ru
	return p, c.lsn, err
}

func (e *Emulator) createItem(w http.ResponseWriter, rc *requestContext, c *container, upsert bool) error {
	members, id, err := parseItemBody(rc)
	if err != nil {
		return err
	}
	pk, err := requestPK(rc, c, members)
	if err != nil {
		return err
	}
	mode := modeCreate
	if upsert {
		mode = modeUpsert
	}
	var it *item
	var created bool
	p, lsn, err := e.pointOp(rc, c, pk, func(ops *itemOps) (float64, *svcError) {
		var werr *svcError
		it, created, werr = ops.write(mode, pk, id, members, rc.header("If-Match"))
		if werr != nil {
			return 0, werr
		}
		if created {
			return insertCost(len(it.doc), c.indexed), nil
		}
		return replaceCost(len(it.doc), c.indexed), nil
	})
	if err != nil {
		return err
	}
	writeItem(w, rc, p, lsn, it, statusFor(mode, created), rc.contentResponse())
	return nil
}

func (e *Emulator) replaceItem(w http.ResponseWriter, rc *requestContext, c *container, id string) error {
	members, bodyID, err := parseItemBody(rc)
	if err != nil {
		return err
	}
	if bodyID != id {
		return badRequest("The id %q in the item does not match the id %q in the request path.", truncate(bodyID, 64), truncate(id, 64))
	}
	pk, err := requestPK(rc, c, members)
	if err != nil {
		return err
	}
	var it *item
	p, lsn, err := e.pointOp(rc, c, pk, func(ops *itemOps) (float64, *svcError) {
		var werr *svcError
		it, _, werr = ops.write(modeReplace, pk, id, members, rc.header("If-Match"))
		if werr != nil {
			return 0, werr
		}
		return replaceCost(len(it.doc), c.indexed), nil
	})
	if err != nil {
		return err
	}
	writeItem(w, rc, p, lsn, it, http.StatusOK, rc.contentResponse())
	return nil
}

func (e *Emulator) readItem(w http.ResponseWriter, rc *requestContext, c *container, id string) error {
	pk, err := requestPK(rc, c, nil)
	if err != nil {
		return err
	}
	var it *item
	p, lsn, err := e.pointOp(rc, c, pk, func(ops *itemOps) (float64, *svcError) {
		var rerr *svcError
		it, _, rerr = ops.read(pk, id)
		if rerr != nil {
			return 0, rerr
		}
		return readCost(len(it.doc)), nil
	})
	if err != nil {
		return err
	}
	if inm := rc.header("If-None-Match"); inm != "" && inm == it.etag {
		setCommon(w, rc, p.id, lsn)
		w.Header().Set("etag", it.etag)
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	writeItem(w, rc, p, lsn, it, http.StatusOK, true)
	return nil
}

func (e *Emulator) deleteItem(w http.ResponseWriter, rc *requestContext, c *container, id string) error {
	pk, err := requestPK(rc, c, nil)
	if err != nil {
		return err
	}
	p, lsn, err := e.pointOp(rc, c, pk, func(ops *itemOps) (float64, *svcError) {
		it, derr := ops.remove(pk, id, rc.header("If-Match"))
		if derr != nil {
			return 0, derr
		}
		return deleteCost(len(it.doc), c.indexed), nil
	})
	if err != nil {
		return err
	}
	setCommon(w, rc, p.id, lsn)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// writeItem answers a point operation on it.
func writeItem(w http.ResponseWriter, rc *requestContext, p *partition, lsn uint64, it *item, status int, withBody bool) {
	setCommon(w, rc, p.id, lsn)
	h := w.Header()
	h.Set("etag", it.etag)
	h.Set("x-ms-item-lsn", strconv.FormatUint(it.lsn, 10))
	h.Set("x-ms-documentdb-partitionkeyrangeid", p.id)
	if !withBody {
		h.Set("Content-Length", "0")
		w.WriteHeader(status)
		return
	}
	writeRaw(w, status, it.doc)
}
