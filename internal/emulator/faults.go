package emulator

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Fault is an injected failure. A fault matches a request when its scope
// matches (empty fields match everything) and, when Operations is set, the
// request's operation is listed. A matching fault fires with Probability
// (1 when zero) until it has fired Count times (forever when zero).
type Fault struct {
	// Scope.
	Database   string   `json:"database,omitempty"`
	Container  string   `json:"container,omitempty"`
	RangeID    string   `json:"rangeId,omitempty"`    // a physical partition key range id
	Operations []string `json:"operations,omitempty"` // read, write, query, changefeed, batch, bulk, metadata

	// When.
	Probability float64 `json:"probability,omitempty"`
	Count       int     `json:"count,omitempty"`

	// What. Status answers with that status instead of serving the request:
	// 429 (with RetryAfter, default 100ms, substatus 3200), 408, 449, 500 or
	// 503. Latency delays the request first. CloseConnection sends the start
	// of a response and then drops the connection.
	Status          int           `json:"status,omitempty"`
	RetryAfter      time.Duration `json:"retryAfter,omitempty"`
	Latency         time.Duration `json:"latency,omitempty"`
	CloseConnection bool          `json:"closeConnection,omitempty"`

	// BulkOperationStatus, instead of Status, fails single operations of
	// bulk requests: each firing answers one operation with this status
	// (429 with RetryAfter and substatus 3200, 410 with substatus 1002,
	// 409, 413, 400, 408, 449, 500 or 503) while the request and its other
	// operations are served, so a bulk client's per-operation handling can
	// be tested. Count counts operations.
	BulkOperationStatus int `json:"bulkOperationStatus,omitempty"`
}

// faults holds the injected faults of one emulator.
type faults struct {
	mu     sync.Mutex
	next   int
	active map[string]*activeFault
}

type activeFault struct {
	Fault
	fired int
}

// InjectFault adds a fault and returns its id, for RemoveFault.
func (e *Emulator) InjectFault(f Fault) (string, error) {
	switch f.Status {
	case 0, http.StatusTooManyRequests, http.StatusRequestTimeout, 449, http.StatusInternalServerError, http.StatusServiceUnavailable, http.StatusGone:
	default:
		return "", fmt.Errorf("fault status %d: want 429, 408, 449, 410, 500 or 503", f.Status)
	}
	switch f.BulkOperationStatus {
	case 0, http.StatusTooManyRequests, http.StatusGone, http.StatusConflict, http.StatusRequestEntityTooLarge, http.StatusBadRequest, http.StatusRequestTimeout, 449, http.StatusInternalServerError, http.StatusServiceUnavailable:
	default:
		return "", fmt.Errorf("fault bulkOperationStatus %d: want 429, 410, 409, 413, 400, 408, 449, 500 or 503", f.BulkOperationStatus)
	}
	if f.BulkOperationStatus != 0 && (f.Status != 0 || f.CloseConnection) {
		return "", fmt.Errorf("fault sets bulkOperationStatus with status or closeConnection: a fault fails either whole requests or single bulk operations")
	}
	if f.Probability < 0 || f.Probability > 1 {
		return "", fmt.Errorf("fault probability %v: want 0..1", f.Probability)
	}
	if f.Status == 0 && f.Latency == 0 && !f.CloseConnection && f.BulkOperationStatus == 0 {
		return "", fmt.Errorf("fault does nothing: set status, latency, closeConnection or bulkOperationStatus")
	}
	e.faults.mu.Lock()
	defer e.faults.mu.Unlock()
	if e.faults.active == nil {
		e.faults.active = map[string]*activeFault{}
	}
	e.faults.next++
	id := "f" + strconv.Itoa(e.faults.next)
	e.faults.active[id] = &activeFault{Fault: f}
	return id, nil
}

// RemoveFault deletes one injected fault; it reports whether it existed.
func (e *Emulator) RemoveFault(id string) bool {
	e.faults.mu.Lock()
	defer e.faults.mu.Unlock()
	_, ok := e.faults.active[id]
	delete(e.faults.active, id)
	return ok
}

// ClearFaults deletes every injected fault.
func (e *Emulator) ClearFaults() {
	e.faults.mu.Lock()
	defer e.faults.mu.Unlock()
	e.faults.active = nil
}

// Faults lists the injected faults by id, with how often each has fired.
func (e *Emulator) Faults() map[string]FaultState {
	e.faults.mu.Lock()
	defer e.faults.mu.Unlock()
	out := map[string]FaultState{}
	for id, f := range e.faults.active {
		out[id] = FaultState{Fault: f.Fault, Fired: f.fired}
	}
	return out
}

// FaultState is an injected fault and how many times it has fired.
type FaultState struct {
	Fault
	Fired int `json:"fired"`
}

// pick returns the faults that fire for this request, consuming their counts.
func (fs *faults) pick(rc *requestContext, db, coll, rangeID string) []Fault {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	var out []Fault
	for id, f := range fs.active {
		if f.BulkOperationStatus != 0 || !f.matches(rc, db, coll, rangeID) {
			continue
		}
		if f.Probability > 0 && rand.Float64() >= f.Probability {
			continue
		}
		f.fired++
		out = append(out, f.Fault)
		if f.Count > 0 && f.fired >= f.Count {
			delete(fs.active, id)
		}
	}
	return out
}

func (f *activeFault) matches(rc *requestContext, db, coll, rangeID string) bool {
	if (f.Database != "" && f.Database != db) || (f.Container != "" && f.Container != coll) {
		return false
	}
	if f.RangeID != "" && f.RangeID != rangeID {
		return false
	}
	if len(f.Operations) == 0 {
		return true
	}
	op := rc.operation()
	for _, o := range f.Operations {
		if o == op {
			return true
		}
	}
	return false
}

// operation classifies a request for fault scoping.
func (rc *requestContext) operation() string {
	switch {
	case rc.resType != typeDoc:
		return "metadata"
	case rc.r.Method == http.MethodGet && rc.header("A-IM") != "":
		return "changefeed"
	case rc.r.Method == http.MethodGet:
		return "read"
	case rc.r.Method == http.MethodPost && isBulkRequest(rc):
		return "bulk"
	case rc.r.Method == http.MethodPost && rc.headerBool("x-ms-cosmos-is-batch-request"):
		return "batch"
	case rc.r.Method == http.MethodPost && isQuery(rc):
		return "query"
	default:
		return "write"
	}
}

// pickOperation returns the per-operation fault that fires for the next
// operation of a bulk request on range rangeID, consuming its count.
func (fs *faults) pickOperation(db, coll, rangeID string) (Fault, bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for id, f := range fs.active {
		if f.BulkOperationStatus == 0 || (f.Database != "" && f.Database != db) || (f.Container != "" && f.Container != coll) || (f.RangeID != "" && f.RangeID != rangeID) {
			continue
		}
		if f.Probability > 0 && rand.Float64() >= f.Probability {
			continue
		}
		f.fired++
		if f.Count > 0 && f.fired >= f.Count {
			delete(fs.active, id)
		}
		return f.Fault, true
	}
	return Fault{}, false
}

// injectedOperationResult is a bulk operation's result for a fired
// per-operation fault: the status, substatus and retry-after the service
// would put there.
func injectedOperationResult(f Fault) batchResult {
	e := injectedError(Fault{Status: f.BulkOperationStatus, RetryAfter: f.RetryAfter})
	switch f.BulkOperationStatus {
	case http.StatusConflict:
		e = conflict()
	case http.StatusRequestEntityTooLarge:
		e = tooLarge()
	case http.StatusBadRequest:
		e = badRequest("injected fault")
	}
	r := batchResult{StatusCode: e.status, SubStatusCode: e.subStatus, RequestCharge: 1}
	if e.status == http.StatusTooManyRequests {
		r.RetryAfterMs = retryAfterMillis(e.retryAfter)
		r.RequestCharge = 0
	}
	return r
}

// injectedError turns a fired fault into the service's answer.
func injectedError(f Fault) *svcError {
	switch f.Status {
	case http.StatusTooManyRequests:
		ra := f.RetryAfter
		if ra <= 0 {
			ra = 100 * time.Millisecond
		}
		return throttled(ra)
	case http.StatusServiceUnavailable:
		return newError(f.Status, "Service is currently unavailable. (injected fault)")
	case http.StatusRequestTimeout:
		return newError(f.Status, "Request timed out. (injected fault)")
	case 449:
		return newError(f.Status, "Conflicting request to resource has been attempted. Retry to avoid conflicts. (injected fault)")
	case http.StatusGone:
		e := newError(f.Status, "The requested resource is no longer available at the server. (injected fault)")
		e.subStatus = subStatusPartitionKeyRangeGone
		return e
	default:
		return newError(f.Status, "Internal server error. (injected fault)")
	}
}

// applyFaults runs the faults that fire for a request, before it is served
// and without holding any lock: latency first, then a dropped connection or
// an error status. It reports whether the request was answered here.
func (e *Emulator) applyFaults(w http.ResponseWriter, rc *requestContext) bool {
	if e.faults.empty() {
		return false
	}
	db, coll, rangeID := e.faultScope(rc)
	for _, f := range e.faults.pick(rc, db, coll, rangeID) {
		if f.Latency > 0 {
			time.Sleep(f.Latency)
		}
		if f.CloseConnection {
			dropConnection(w)
			return true
		}
		if f.Status != 0 {
			e.writeError(w, rc, injectedError(f))
			return true
		}
	}
	return false
}

func (fs *faults) empty() bool {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return len(fs.active) == 0
}

// faultScope names the database, container and partition key range a
// request addresses, as far as its path and headers tell.
func (e *Emulator) faultScope(rc *requestContext) (db, coll, rangeID string) {
	if len(rc.segs) >= 2 && rc.segs[0] == typeDatabase {
		db = rc.segs[1]
	}
	if len(rc.segs) >= 4 {
		coll = rc.segs[3]
	}
	if rangeID = rc.header("x-ms-documentdb-partitionkeyrangeid"); rangeID != "" || coll == "" {
		return db, coll, rangeID
	}
	h := rc.header("x-ms-documentdb-partitionkey")
	if h == "" {
		return db, coll, ""
	}
	c, err := e.lookupContainer(db, coll)
	if err != nil {
		return db, coll, ""
	}
	pk, perr := parsePKHeader(h)
	if perr != nil || len(pk) != len(c.pk.paths) {
		return db, coll, ""
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return db, coll, c.partitionFor(c.epkOf(pk)).id
}

// dropConnection writes the start of a response and closes the connection,
// as a network failure mid-response looks to a client.
func dropConnection(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		// HTTP/2: send the start of a response, then reset the stream.
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "4096")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"Documents":[{"id":`))
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		panic(http.ErrAbortHandler)
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	bw := bufio.NewWriter(conn)
	_, _ = bw.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n{\"Documents\":[{\"id\":")
	_ = bw.Flush()
	_ = buf
	_ = conn.Close()
}
