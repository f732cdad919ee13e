package emulator

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// writeJSON answers v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"code":"InternalServerError","message":"marshal response"}`)
	}
	writeRaw(w, status, b)
}

// writeRaw answers body, which is already JSON.
func writeRaw(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// setCommon sets the headers every successful response carries: the request
// charge (never 0: the service charges at least a fraction of an RU), the
// session token and the server-side duration.
func setCommon(w http.ResponseWriter, rc *requestContext, rangeID string, lsn uint64) {
	h := w.Header()
	charge := rc.charge
	if charge <= 0 {
		charge = 1
	}
	h.Set("x-ms-request-charge", strconv.FormatFloat(charge, 'f', 2, 64))
	if rangeID == "" {
		rangeID = "0"
	}
	h.Set("x-ms-session-token", rangeID+":-1#"+strconv.FormatUint(lsn, 10))
	h.Set("x-ms-request-duration-ms", strconv.FormatFloat(float64(time.Since(rc.start).Microseconds())/1000, 'f', 3, 64))
	h.Set("x-ms-schemaversion", "1.18")
	h.Set("x-ms-serviceversion", "version=2.14.0.0")
	if lsn > 0 {
		h.Set("lsn", strconv.FormatUint(lsn, 10))
	}
}
