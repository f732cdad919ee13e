package migrate

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// The errors Source and Target implementations return, classified so the
// pipeline can decide with errors.Is: wait and retry, retry a few times, move
// the item to the dead-letter file, or stop.
var (
	// ErrThrottled: the request was rate-limited (429); retry after the
	// RequestError's RetryAfter.
	ErrThrottled = errors.New("throttled (429)")
	// ErrTransient: a timeout, a retry-with, an unavailable service or a
	// dropped connection (408, 449, 500, 503, network errors); retry with
	// backoff, a bounded number of times.
	ErrTransient = errors.New("transient failure")
	// ErrConflict: an item with this id and partition key exists (409).
	ErrConflict = errors.New("conflict (409)")
	// ErrNotFound: the item, container or database does not exist (404).
	ErrNotFound = errors.New("not found (404)")
	// ErrPreconditionFailed: the item's ETag no longer matches (412).
	ErrPreconditionFailed = errors.New("precondition failed (412)")
	// ErrTooLarge: the item or request is over the 2 MB limit (413).
	ErrTooLarge = errors.New("request too large (413)")
	// ErrBadRequest: the service refused the item itself (400).
	ErrBadRequest = errors.New("bad request (400)")
	// ErrGone: the partition key range was split or merged (410).
	ErrGone = errors.New("partition key range gone (410)")
	// ErrUnauthorized: the key or credential was refused (401, 403).
	ErrUnauthorized = errors.New("not authorized (401/403)")

	// ErrAllVersionsNotEnabled: the source cannot serve the
	// all-versions-and-deletes change feed: the container has no change
	// feed policy and the account no continuous backup. Read the
	// latest-version feed instead.
	ErrAllVersionsNotEnabled = errors.New("the all-versions-and-deletes change feed is not enabled on the container (no change feed policy, no continuous backup)")
	// ErrOutOfRetention: an all-versions position is older than the
	// container's retention window; the changes since are gone from that
	// feed (the latest-version feed still has every item's latest version).
	ErrOutOfRetention = errors.New("the position is older than the all-versions-and-deletes retention window")
)

// RequestError is a failed request to the service: its status, substatus
// and, for 429, how long to wait. errors.Is matches it against the sentinels
// above by status.
type RequestError struct {
	Op         string // "create item", "read change feed", ...
	Endpoint   string // the account endpoint the request went to (no secret)
	Status     int
	SubStatus  int
	RetryAfter time.Duration
	ActivityID string
	Message    string
	RU         float64 // the request charge the failed request still cost
	Err        error   // the underlying error, such as a network error
}

func (e *RequestError) Error() string {
	msg := e.Message
	if msg == "" && e.Err != nil {
		msg = e.Err.Error()
	}
	if e.Status == 0 {
		return fmt.Sprintf("%s: %s", e.Op, msg)
	}
	return fmt.Sprintf("%s: %d %s (substatus %d, activity %s): %s", e.Op, e.Status, http.StatusText(e.Status), e.SubStatus, e.ActivityID, msg)
}

func (e *RequestError) Unwrap() error { return e.Err }

// Is reports whether the error's status falls into target's class.
func (e *RequestError) Is(target error) bool {
	switch target {
	case ErrThrottled:
		return e.Status == http.StatusTooManyRequests
	case ErrTransient:
		switch e.Status {
		case 0, http.StatusRequestTimeout, 449, http.StatusInternalServerError, http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusGatewayTimeout:
			return true
		}
	case ErrConflict:
		return e.Status == http.StatusConflict
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrPreconditionFailed:
		return e.Status == http.StatusPreconditionFailed
	case ErrTooLarge:
		return e.Status == http.StatusRequestEntityTooLarge
	case ErrBadRequest:
		return e.Status == http.StatusBadRequest
	case ErrGone:
		return e.Status == http.StatusGone
	case ErrUnauthorized:
		return e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden
	}
	return false
}

// MissingContainerError is a request to a container that does not exist,
// or whose database does not exist: a 404 from an operation on the
// container itself (reading its definition, feed ranges or change feed, or
// querying it), never from an item's read. errors.Is(err, ErrNotFound)
// holds through the RequestError it wraps.
type MissingContainerError struct {
	Container string // DATABASE/CONTAINER
	Err       error  // the RequestError of the 404
}

func (e *MissingContainerError) Error() string {
	return fmt.Sprintf("container %s does not exist", e.Container)
}

func (e *MissingContainerError) Unwrap() error { return e.Err }

// RetryAfter returns how long a throttled error asks to wait (0 when it
// does not say).
func RetryAfter(err error) time.Duration {
	var re *RequestError
	if errors.As(err, &re) {
		return re.RetryAfter
	}
	return 0
}

// ErrorRU returns what a failed request cost.
func ErrorRU(err error) float64 {
	var re *RequestError
	if errors.As(err, &re) {
		return re.RU
	}
	return 0
}

// ServiceMessage is a failed request's message from the service, or the
// error's text when it has none: what a dead letter's reason quotes.
func ServiceMessage(err error) string {
	var re *RequestError
	if errors.As(err, &re) && re.Message != "" {
		return re.Message
	}
	return err.Error()
}
