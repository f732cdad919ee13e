package sim

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/rekey-dev/rekey/internal/epk"
	"github.com/rekey-dev/rekey/migrate"
)

// The target's bulk requests as the adapter sends them (internal/cosmos
// bulk_port.go, docs/cosmos-bulk.md): PartitionsOf routes keys by the
// process's routing map of the target's physical partitions, read when
// first needed and again after a 410, as the SDK's is; Bulk is one request
// to one partition, with one latency, whose operations take effect one
// after another, in order, each with its own answer.

var _ migrate.BulkTarget = containerView{}

// routing is what a process knows of the target's physical partitions:
// the routing map the adapter keeps per client. A 410, to a request or to
// one of its operations, marks it stale; the next PartitionsOf reads the
// partitions again. No lock is held across the read: a simulation cannot
// wait on a mutex whose holder sleeps.
type routing struct {
	mu    sync.Mutex
	parts []migrate.FeedRange // nil: never read
	gen   int                 // counts the 410s seen; a read started before one is stale
}

// known returns the partitions, when they are known and not stale, and the
// generation a read started now is current for.
func (r *routing) known() ([]migrate.FeedRange, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.parts, r.gen
}

// learn keeps parts, read at generation gen, unless a 410 came since.
func (r *routing) learn(parts []migrate.FeedRange, gen int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gen == gen {
		r.parts = parts
	}
}

// gone marks the partitions stale after a 410.
func (r *routing) gone() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.parts = nil
	r.gen++
}

// partitionID names a physical partition as the routing map does. A split
// partition's children have other ranges, so an id never comes back.
func partitionID(r migrate.FeedRange) string { return r.Min + "-" + r.Max }

// partitionName is a partition id, short, for the trace.
func partitionName(id string) string {
	lo, hi, _ := strings.Cut(id, "-")
	return fmt.Sprintf("[%.6s,%.6s)", lo, hi)
}

// PartitionsOf routes each key to the partition that holds it in the
// process's routing map, reading the target's partitions first when the
// map is empty or stale (a request, which may fail as every request does).
func (v containerView) PartitionsOf(ctx context.Context, keys []migrate.Key) ([]string, error) {
	parts, gen := v.p.routes.known()
	if parts == nil {
		err := v.p.do(ctx, v.side+".pkranges", "", func(landing) (string, error) {
			parts = v.c.Partitions()
			return fmt.Sprintf("%d partitions", len(parts)), nil
		})
		if err != nil {
			return nil, err
		}
		v.p.routes.learn(parts, gen)
	}
	out := make([]string, len(keys))
	for i, k := range keys {
		e, err := v.c.EPK(k)
		if err != nil {
			return nil, fmt.Errorf("partition key %s of the target: %w", keyText(k), err)
		}
		found := false
		for _, r := range parts {
			if (epk.Range{Min: r.Min, Max: r.Max}).Contains(e) {
				out[i], found = partitionID(r), true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("partition key %s of the target: no partition holds its EPK %s", keyText(k), e)
		}
	}
	return out, nil
}

// Bulk sends ops to partition as one request. When it lands, a partition
// that no longer exists (it split) answers 410 for the whole request, as
// does an operation whose key the partition does not hold (the client
// routed it wrong); otherwise each operation runs as the container's
// single request of its kind, unless a fault meets it alone (opFaultFor).
// A request that lands after its process stopped waiting applies its
// operations all the same; its answer is lost. Any 410 marks the
// process's routing stale.
func (v containerView) Bulk(ctx context.Context, partition string, ops []migrate.BulkOp) (resp migrate.BulkResponse, err error) {
	obj := fmt.Sprintf("%s x%d", partitionName(partition), len(ops))
	salt := make([]string, len(ops))
	for i, op := range ops {
		salt[i] = bulkOpText(op)
	}
	err = v.p.doSalted(ctx, v.side+".bulk", obj, strings.Join(salt, ","), func(how landing) (string, error) {
		r, outcome, err := v.serveBulk(partition, ops, how == landedLate)
		if how != landedLate {
			resp = r
		}
		return outcome, err
	})
	gone := errors.Is(err, migrate.ErrGone)
	for _, r := range resp.Results {
		gone = gone || errors.Is(r.Err, migrate.ErrGone)
	}
	if gone {
		v.p.routes.gone()
	}
	return resp, err
}

// serveBulk is the service serving a bulk request at its instant (the
// world's lock is held); late: its process no longer waits for it. An
// operation throttled means the partition's budget ran out: the
// operations after it are throttled too, as the service answers. It
// returns the answer and the trace's outcome: each operation's kind, item
// and status, in order.
func (v containerView) serveBulk(partition string, ops []migrate.BulkOp, late bool) (migrate.BulkResponse, string, error) {
	op := fmt.Sprintf("bulk request of %d operations to %s", len(ops), partitionName(partition))
	var part *migrate.FeedRange
	for _, r := range v.c.Partitions() {
		if partitionID(r) == partition {
			part = &r
			break
		}
	}
	if part == nil {
		e := requestError(op, http.StatusGone, 1, "the partition key range is gone (it split)")
		e.SubStatus = 1002
		return migrate.BulkResponse{}, "", e
	}
	switch size := bulkBytes(ops); {
	case len(ops) == 0 || len(ops) > migrate.MaxBulkOperations:
		return migrate.BulkResponse{}, "", requestError(op, http.StatusBadRequest, 1, fmt.Sprintf("a bulk request takes 1 to %d operations", migrate.MaxBulkOperations))
	case len(ops) > 1 && size > maxRequestBytes:
		return migrate.BulkResponse{}, "", requestError(op, http.StatusRequestEntityTooLarge, 1, fmt.Sprintf("request size is too large (%d bytes)", size))
	}
	for i, o := range ops {
		e, err := v.c.EPK(o.Key)
		if err != nil {
			return migrate.BulkResponse{}, "", requestError(op, http.StatusBadRequest, 1, fmt.Sprintf("operation %d: %v", i, err))
		}
		if !(epk.Range{Min: part.Min, Max: part.Max}).Contains(e) {
			ge := requestError(op, http.StatusGone, 1, fmt.Sprintf("the partition key %s of operation %d does not belong to the partition", keyText(o.Key), i))
			ge.SubStatus = 1001
			return migrate.BulkResponse{}, "", ge
		}
	}
	resp := migrate.BulkResponse{Results: make([]migrate.BulkOpResult, len(ops))}
	outcomes := make([]string, len(ops))
	var spent error // the partition's budget ran out part-way: every later operation is throttled too
	for i, o := range ops {
		var r migrate.BulkOpResult
		if spent != nil {
			r = migrate.BulkOpResult{Err: spent, Resend: true}
		} else {
			r = v.serveOp(o, late)
		}
		if errors.Is(r.Err, migrate.ErrThrottled) {
			spent = r.Err
		}
		if r.Err != nil {
			r.RU = migrate.ErrorRU(r.Err)
		}
		resp.Results[i] = r
		resp.RU += r.RU
		outcomes[i] = bulkOpText(o) + " " + opStatus(r.Err)
	}
	return resp, strings.Join(outcomes, " "), nil
}

// serveOp runs one operation of a bulk request, or fails it with a fault
// that meets it alone.
func (v containerView) serveOp(o migrate.BulkOp, late bool) (r migrate.BulkOpResult) {
	verb := map[migrate.BulkOpType]string{migrate.BulkCreate: "create", migrate.BulkRead: "read", migrate.BulkReplace: "replace"}[o.Type]
	id := o.ID
	if o.Type == migrate.BulkCreate {
		id = idOf(o.Body)
	}
	kind := v.side + ".op." + verb
	if err := v.p.w.opFaultFor(v.p, kind, v.p.w.dice.roll(v.p.name, kind, itemAddr(o.Key, id), identityOf(o.Body)+versionOf(o.Body))); err != nil {
		return migrate.BulkOpResult{Err: err, Resend: resendOp(err)}
	}
	switch o.Type {
	case migrate.BulkCreate:
		if v.side == "tgt" && v.p.w.loseCreate != nil && v.p.w.loseCreate(itemAddr(o.Key, id)) {
			return migrate.BulkOpResult{RU: 5, ETag: `"lost"`}
		}
		wr, err := v.c.Create(background, o.Key, o.Body)
		if err == nil {
			v.written("create", o.Key, id, migrate.Item{}, false, o.Body, late)
		}
		return migrate.BulkOpResult{RU: wr.RU, ETag: wr.ETag, Err: err}
	case migrate.BulkRead:
		it, err := v.c.Read(background, o.Key, id)
		return migrate.BulkOpResult{RU: it.RU, ETag: it.ETag, Body: it.Body, Err: err}
	case migrate.BulkReplace:
		old, had := v.c.Get(o.Key, id)
		wr, err := v.c.Replace(background, o.Key, id, o.Body, o.IfMatch)
		if err == nil {
			v.written("replace", o.Key, id, old, had, o.Body, late)
		}
		return migrate.BulkOpResult{RU: wr.RU, ETag: wr.ETag, Err: err}
	}
	return migrate.BulkOpResult{Err: requestError("bulk operation", http.StatusBadRequest, 1, fmt.Sprintf("unknown operation type %d", o.Type))}
}

// maxRequestBytes is the service's limit on a request's body.
const maxRequestBytes = 2 * 1024 * 1024

// bulkBytes is about the size of a bulk request's body.
func bulkBytes(ops []migrate.BulkOp) int {
	n := 2
	for _, o := range ops {
		n += len(o.Body) + len(o.ID) + len(o.IfMatch) + 96
	}
	return n
}

// resendOp is the SDKs' rule for the operations of a bulk request to send
// again (cosmos.BulkResult.Resend): 429, 410, a response too large (413
// with substatus 3402) and transient failures.
func resendOp(err error) bool {
	var re *migrate.RequestError
	if errors.As(err, &re) && re.Status == http.StatusRequestEntityTooLarge {
		return re.SubStatus == subStatusResponseTooLarge
	}
	return errors.Is(err, migrate.ErrThrottled) || errors.Is(err, migrate.ErrGone) || errors.Is(err, migrate.ErrTransient)
}

// subStatusResponseTooLarge on a 413 says the response, not the item, was
// too large (docs/cosmos-bulk.md).
const subStatusResponseTooLarge = 3402

// bulkOpText names an operation for the trace and the draws: its kind, the
// item and the version it carries.
func bulkOpText(o migrate.BulkOp) string {
	switch o.Type {
	case migrate.BulkCreate:
		return "C:" + idOf(o.Body) + "@" + versionOf(o.Body)
	case migrate.BulkReplace:
		return "U:" + o.ID + "@" + versionOf(o.Body)
	}
	return "R:" + o.ID
}

// opStatus is an operation's status for the trace.
func opStatus(err error) string {
	var re *migrate.RequestError
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &re) && re.SubStatus != 0:
		return fmt.Sprintf("%d/%d", re.Status, re.SubStatus)
	case errors.As(err, &re):
		return fmt.Sprint(re.Status)
	}
	return "error"
}
