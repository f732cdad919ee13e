package emulator

import (
	"bytes"
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"strings"
)

// maxPatchOperations is the service's limit per patch request.
const maxPatchOperations = 10

type patchRequest struct {
	Condition  string     `json:"condition"`
	Operations []patchOpn `json:"operations"`
}

type patchOpn struct {
	Op    string          `json:"op"`
	Path  string          `json:"path"`
	From  string          `json:"from"`
	Value json.RawMessage `json:"value"`
}

func (e *Emulator) patchItem(w http.ResponseWriter, rc *requestContext, c *container, id string) error {
	body, err := rc.readBody()
	if err != nil {
		return err
	}
	pk, err := requestPK(rc, c, nil)
	if err != nil {
		return err
	}
	var it *item
	p, lsn, err := e.pointOp(rc, c, pk, func(o *itemOps) (float64, *svcError) {
		var perr *svcError
		it, perr = e.patchLocked(o, c, pk, id, body, rc.header("If-Match"))
		if perr != nil {
			return 0, perr
		}
		return replaceCost(len(it.doc), c.indexed), nil
	})
	if err != nil {
		return err
	}
	writeItem(w, rc, p, lsn, it, http.StatusOK, rc.contentResponse())
	return nil
}

// patchLocked applies a patch request body to item id; the container's lock
// is held. The id and the partition key cannot be patched.
// parsePatchBody reads a patch request: {"operations":[...],"condition":...}
// or a bare array of operations, which the service accepts too (the
// JavaScript SDK's Item.patch sends an array as it is given:
// azure-sdk-for-js sdk/cosmosdb/cosmos/src/client/Item/Item.ts, and its
// functional item tests patch with arrays).
func parsePatchBody(body []byte) (patchRequest, *svcError) {
	var req patchRequest
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) > 0 && trimmed[0] == '[' {
		if err := json.Unmarshal(body, &req.Operations); err != nil {
			return req, badRequest("The patch request body is invalid: %v", err)
		}
		return req, nil
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return req, badRequest("The patch request body is invalid: %v", err)
	}
	return req, nil
}

func (e *Emulator) patchLocked(o *itemOps, c *container, pk []any, id string, body []byte, ifMatch string) (*item, *svcError) {
	req, err := parsePatchBody(body)
	if err != nil {
		return nil, err
	}
	if len(req.Operations) == 0 {
		return nil, badRequest("The patch request has no operations.")
	}
	if len(req.Operations) > maxPatchOperations {
		return nil, badRequest("The patch request has %d operations; the limit is %d.", len(req.Operations), maxPatchOperations)
	}
	cur, _, err := o.read(pk, id)
	if err != nil {
		return nil, err
	}
	if ifMatch != "" && ifMatch != "*" && cur.etag != ifMatch {
		return nil, preconditionFailed()
	}
	if req.Condition != "" {
		ok, cerr := matchesCondition(req.Condition, cur.doc)
		if cerr != nil {
			return nil, cerr
		}
		if !ok {
			return nil, preconditionFailed()
		}
	}
	doc, perr := parseNode(cur.doc)
	if perr != nil {
		return nil, newError(http.StatusInternalServerError, "stored item is not valid JSON: %v", perr)
	}
	for i, op := range req.Operations {
		if err := applyPatchOp(&doc, op); err != nil {
			err.message = "Patch operation " + strconv.Itoa(i) + " (" + op.Op + " " + op.Path + "): " + err.message
			return nil, err
		}
	}
	members := doc.members()
	newID, idErr := documentID(members)
	if idErr != nil || newID != id {
		return nil, badRequest("The id of an item cannot be changed by a patch.")
	}
	newPK, kerr := c.pk.extractPK(members)
	if kerr != nil {
		return nil, kerr
	}
	if pkKeyOf(newPK) != pkKeyOf(pk) {
		return nil, badRequest("The partition key of an item cannot be changed by a patch.")
	}
	it, _, werr := o.write(modeReplace, pk, id, members, "")
	return it, werr
}

// splitPointer parses a JSON pointer ("/a/b/0", with ~1 and ~0 escapes).
func splitPointer(p string) ([]string, *svcError) {
	if !strings.HasPrefix(p, "/") || p == "/" {
		return nil, badRequest("the path %q must start with '/' and name a property", p)
	}
	parts := strings.Split(p[1:], "/")
	for i, s := range parts {
		parts[i] = strings.ReplaceAll(strings.ReplaceAll(s, "~1", "/"), "~0", "~")
	}
	return parts, nil
}

// resolveParent walks to the container of the pointer's last step.
func resolveParent(doc *node, steps []string) (*node, *svcError) {
	cur := doc
	for _, s := range steps[:len(steps)-1] {
		switch cur.kind {
		case '{':
			i := cur.field(s)
			if i < 0 {
				return nil, badRequest("the path segment %q does not exist", s)
			}
			cur = &cur.obj[i].val
		case '[':
			i, err := strconv.Atoi(s)
			if err != nil || i < 0 || i >= len(cur.arr) {
				return nil, badRequest("the array index %q is out of range", s)
			}
			cur = &cur.arr[i]
		default:
			return nil, badRequest("the path segment %q is not inside an object or array", s)
		}
	}
	return cur, nil
}

func applyPatchOp(doc *node, op patchOpn) *svcError {
	steps, err := splitPointer(op.Path)
	if err != nil {
		return err
	}
	parent, err := resolveParent(doc, steps)
	if err != nil {
		return err
	}
	last := steps[len(steps)-1]
	var value node
	if kind := strings.ToLower(op.Op); kind != "remove" && kind != "move" {
		if len(op.Value) == 0 {
			return badRequest("a value is required")
		}
		v, perr := parseNode(op.Value)
		if perr != nil {
			return badRequest("the value is not valid JSON")
		}
		value = v
	}
	switch strings.ToLower(op.Op) {
	case "add", "set":
		return setAt(parent, last, value, strings.EqualFold(op.Op, "add"))
	case "replace":
		if !exists(parent, last) {
			return badRequest("the target does not exist, so it cannot be replaced")
		}
		return setAt(parent, last, value, false)
	case "remove":
		return removeAt(parent, last)
	case "incr":
		return increment(parent, last, value)
	case "move":
		from, ferr := splitPointer(op.From)
		if ferr != nil {
			return ferr
		}
		src, serr := resolveParent(doc, from)
		if serr != nil {
			return serr
		}
		v, gerr := valueAt(src, from[len(from)-1])
		if gerr != nil {
			return gerr
		}
		if rerr := removeAt(src, from[len(from)-1]); rerr != nil {
			return rerr
		}
		return setAt(parent, last, v, false)
	default:
		return badRequest("the operation %q is not supported (add, set, replace, remove, incr, move)", op.Op)
	}
}

func exists(parent *node, key string) bool {
	_, err := valueAt(parent, key)
	return err == nil
}

func valueAt(parent *node, key string) (node, *svcError) {
	switch parent.kind {
	case '{':
		if i := parent.field(key); i >= 0 {
			return parent.obj[i].val, nil
		}
	case '[':
		if i, err := strconv.Atoi(key); err == nil && i >= 0 && i < len(parent.arr) {
			return parent.arr[i], nil
		}
	}
	return node{}, badRequest("the target %q does not exist", key)
}

// setAt writes v at key. For arrays, insert (add) places v before index key
// ("-" appends) while a plain set replaces the element.
func setAt(parent *node, key string, v node, insert bool) *svcError {
	switch parent.kind {
	case '{':
		parent.setField(key, v)
		return nil
	case '[':
		if key == "-" {
			parent.arr = append(parent.arr, v)
			return nil
		}
		i, err := strconv.Atoi(key)
		if err != nil || i < 0 || i > len(parent.arr) || (!insert && i == len(parent.arr)) {
			return badRequest("the array index %q is out of range", key)
		}
		if insert {
			parent.arr = append(parent.arr[:i], append([]node{v}, parent.arr[i:]...)...)
		} else {
			parent.arr[i] = v
		}
		return nil
	default:
		return badRequest("the parent of %q is not an object or array", key)
	}
}

func removeAt(parent *node, key string) *svcError {
	switch parent.kind {
	case '{':
		i := parent.field(key)
		if i < 0 {
			return badRequest("the target %q does not exist, so it cannot be removed", key)
		}
		parent.obj = append(parent.obj[:i], parent.obj[i+1:]...)
		return nil
	case '[':
		i, err := strconv.Atoi(key)
		if err != nil || i < 0 || i >= len(parent.arr) {
			return badRequest("the array index %q is out of range", key)
		}
		parent.arr = append(parent.arr[:i], parent.arr[i+1:]...)
		return nil
	default:
		return badRequest("the parent of %q is not an object or array", key)
	}
}

// increment adds a number to the field, creating it when absent.
func increment(parent *node, key string, by node) *svcError {
	delta, ok := by.number()
	if !ok {
		return badRequest("incr needs a numeric value")
	}
	cur, err := valueAt(parent, key)
	if err != nil {
		return setAt(parent, key, by, false)
	}
	n, ok := cur.number()
	if !ok {
		return badRequest("the target %q is not a number, so it cannot be incremented", key)
	}
	sum := n + delta
	var raw []byte
	if cur.isInteger() && by.isInteger() && math.Abs(sum) < 1<<53 {
		raw = strconv.AppendInt(nil, int64(sum), 10)
	} else {
		raw = strconv.AppendFloat(nil, sum, 'g', -1, 64)
	}
	return setAt(parent, key, node{kind: 's', raw: raw}, false)
}
