package emulator

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// serveAdmin answers the admin API, enabled by Options.Admin (`rekey emulator
// --admin`). It is unauthenticated and meant for loopback tests and demos:
//
//	GET    /admin/metrics           per container and partition: items, bytes, RU, requests, 429s
//	GET    /admin/faults            the injected faults, with how often each fired
//	POST   /admin/faults            inject a fault: {"container":"c","status":429,"count":10,
//	                                 "probability":0.5,"retryAfterMs":100,"latencyMs":50,
//	                                 "closeConnection":false,"rangeId":"0","operations":["write"]}
//	                                 or per bulk operation: {"container":"c","bulkOperationStatus":429,"count":5}
//	DELETE /admin/faults[/{id}]     remove one fault, or all
//	POST   /admin/split             split a partition key range now: {"database","container","rangeId"}
func (e *Emulator) serveAdmin(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/admin/"), "/")
	switch {
	case path == "metrics" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, e.Metrics())
	case path == "faults" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, e.Faults())
	case path == "faults" && r.Method == http.MethodPost:
		var f adminFault
		if err := json.NewDecoder(r.Body).Decode(&f); err != nil {
			adminError(w, http.StatusBadRequest, "fault body: %v", err)
			return
		}
		id, err := e.InjectFault(f.fault())
		if err != nil {
			adminError(w, http.StatusBadRequest, "%v", err)
			return
		}
		writeJSON(w, http.StatusCreated, map[string]string{"id": id})
	case path == "faults" && r.Method == http.MethodDelete:
		e.ClearFaults()
		w.WriteHeader(http.StatusNoContent)
	case strings.HasPrefix(path, "faults/") && r.Method == http.MethodDelete:
		if !e.RemoveFault(strings.TrimPrefix(path, "faults/")) {
			adminError(w, http.StatusNotFound, "no fault %q", strings.TrimPrefix(path, "faults/"))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case path == "split" && r.Method == http.MethodPost:
		var req struct {
			Database  string `json:"database"`
			Container string `json:"container"`
			RangeID   string `json:"rangeId"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			adminError(w, http.StatusBadRequest, "split body: %v", err)
			return
		}
		if err := e.SplitRange(req.Database, req.Container, req.RangeID); err != nil {
			adminError(w, http.StatusBadRequest, "%v", err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		adminError(w, http.StatusNotFound, "unknown admin request %s %s", r.Method, r.URL.Path)
	}
}

// adminFault is a Fault with durations in milliseconds, for JSON clients.
type adminFault struct {
	Fault
	RetryAfterMs int `json:"retryAfterMs"`
	LatencyMs    int `json:"latencyMs"`
}

func (a adminFault) fault() Fault {
	f := a.Fault
	if a.RetryAfterMs > 0 {
		f.RetryAfter = time.Duration(a.RetryAfterMs) * time.Millisecond
	}
	if a.LatencyMs > 0 {
		f.Latency = time.Duration(a.LatencyMs) * time.Millisecond
	}
	return f
}

func adminError(w http.ResponseWriter, status int, format string, args ...any) {
	writeJSON(w, status, map[string]string{"code": codeForStatus(status), "message": strings.TrimSpace(fmt.Sprintf(format, args...))})
}
