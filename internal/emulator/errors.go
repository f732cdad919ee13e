package emulator

import (
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Substatus codes the service sets in x-ms-substatus, as the SDKs read them.
const (
	subStatusNone                  = 0
	subStatusPartitionKeyMismatch  = 1001
	subStatusPartitionKeyRangeGone = 1002
	subStatusCrossPartitionQuery   = 1004
	subStatusRUBudgetExceeded      = 3200
)

// svcError is an error answered to the client the way the service answers it:
// a status code, an optional substatus and a {"code","message"} body.
type svcError struct {
	status     int
	subStatus  int
	code       string // the body's "code", e.g. "NotFound"
	message    string
	retryAfter time.Duration // 429 only: x-ms-retry-after-ms
	// additionalInfo, when set, is the body's additionalErrorInfo: the query
	// plan of a 400 / 1004 cross-partition query.
	additionalInfo string
}

func (e *svcError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.status, e.code, e.message)
}

// codeForStatus maps a status to the body code the service uses for it.
func codeForStatus(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "BadRequest"
	case http.StatusUnauthorized:
		return "Unauthorized"
	case http.StatusForbidden:
		return "Forbidden"
	case http.StatusNotFound:
		return "NotFound"
	case http.StatusMethodNotAllowed:
		return "MethodNotAllowed"
	case http.StatusRequestTimeout:
		return "RequestTimeout"
	case http.StatusConflict:
		return "Conflict"
	case http.StatusGone:
		return "Gone"
	case http.StatusPreconditionFailed:
		return "PreconditionFailed"
	case http.StatusRequestEntityTooLarge:
		return "RequestEntityTooLarge"
	case http.StatusTooManyRequests:
		return "TooManyRequests"
	case 449:
		return "RetryWith"
	case http.StatusServiceUnavailable:
		return "ServiceUnavailable"
	default:
		return "InternalServerError"
	}
}

func newError(status int, format string, args ...any) *svcError {
	return &svcError{status: status, code: codeForStatus(status), message: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) *svcError {
	return newError(http.StatusBadRequest, format, args...)
}

func notFound() *svcError {
	return newError(http.StatusNotFound, "Entity with the specified id does not exist in the system. More info: https://aka.ms/cosmosdb-tsg-not-found")
}

func conflict() *svcError {
	return newError(http.StatusConflict, "Entity with the specified id already exists in the system.")
}

func preconditionFailed() *svcError {
	return newError(http.StatusPreconditionFailed, "Operation cannot be performed because one of the specified precondition is not met.")
}

func tooLarge() *svcError {
	return newError(http.StatusRequestEntityTooLarge, "Request size is too large")
}

func pkRangeGone(id string) *svcError {
	e := newError(http.StatusGone, "The requested partition key range %s is gone: it has been split or merged. Refresh the partition key ranges.", id)
	e.subStatus = subStatusPartitionKeyRangeGone
	return e
}

// throttled is the 429 the service answers when a partition's RU budget is spent.
func throttled(retryAfter time.Duration) *svcError {
	e := newError(http.StatusTooManyRequests, "Request rate is large. More Request Units may be needed, so no changes were made. Please retry this request later. Learn more: http://aka.ms/cosmosdb-error-429")
	e.subStatus = subStatusRUBudgetExceeded
	e.retryAfter = retryAfter
	return e
}

// writeError answers err, which is a *svcError or any other error (then a 500).
func (e *Emulator) writeError(w http.ResponseWriter, rc *requestContext, err error) {
	se, ok := err.(*svcError)
	if !ok {
		se = newError(http.StatusInternalServerError, "%v", err)
	}
	h := w.Header()
	if se.subStatus != subStatusNone {
		h.Set("x-ms-substatus", strconv.Itoa(se.subStatus))
	}
	if se.status == http.StatusTooManyRequests {
		ms := se.retryAfter.Milliseconds()
		if ms < 1 {
			ms = 1
		}
		h.Set("x-ms-retry-after-ms", strconv.FormatInt(ms, 10))
	}
	activity := ""
	if rc != nil {
		activity = rc.activityID
		if rc.charge > 0 {
			// A request the service executed and refused (404, 409, 412)
			// still costs what it consumed, and says so.
			h.Set("x-ms-request-charge", strconv.FormatFloat(rc.charge, 'f', 2, 64))
		}
	}
	body := struct {
		Code           string `json:"code"`
		Message        string `json:"message"`
		AdditionalInfo string `json:"additionalErrorInfo,omitempty"`
	}{se.code, se.message + "\r\nActivityId: " + activity + ", Microsoft.Azure.Documents.Common/2.14.0", se.additionalInfo}
	writeJSON(w, se.status, body)
}
