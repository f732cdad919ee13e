package cosmos

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"

	"github.com/rekey-dev/rekey/migrate"
)

// Response headers the errors are classified by.
const (
	headerSubStatus    = "x-ms-substatus"
	headerRetryAfterMS = "x-ms-retry-after-ms"
	headerRetryAfter   = "Retry-After"
	headerActivityID   = "x-ms-activity-id"
)

// maxMessage bounds the service message kept in a RequestError.
const maxMessage = 300

// ErrUntrustedCertificate is wrapped by the error of a request whose server
// certificate did not verify. No retry fixes it, so it is not a
// RequestError; `--insecure` is for the loopback emulator only.
var ErrUntrustedCertificate = errors.New("the server's TLS certificate is not trusted")

// classify turns an SDK error into the package's error contract (see the
// package documentation): nil stays nil, a done ctx gives ctx.Err()
// wrapped, a service answer or a network failure gives a
// *migrate.RequestError, and anything else a plain wrapped error.
func (c *Client) classify(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("%s: %w", op, ctxErr)
	}
	var re *migrate.RequestError
	if errors.As(err, &re) {
		return re
	}
	var resp *azcore.ResponseError
	if errors.As(err, &resp) && resp.RawResponse != nil {
		return c.responseError(op, resp.RawResponse)
	}
	var te *transportError
	if errors.As(err, &te) {
		if isCertificateError(te.err) || isNotTLS(te.err) {
			return &TLSError{Op: op, Endpoint: c.endpoint, Err: c.scrub(te.err)}
		}
		return &migrate.RequestError{Op: op, Endpoint: c.endpoint, Err: c.scrub(te.err)}
	}
	return fmt.Errorf("%s: %w", op, c.scrub(err))
}

// responseError builds the RequestError of a failed response.
func (c *Client) responseError(op string, resp *http.Response) *migrate.RequestError {
	h := resp.Header
	e := &migrate.RequestError{
		Op:         op,
		Endpoint:   c.endpoint,
		Status:     resp.StatusCode,
		ActivityID: h.Get(headerActivityID),
		RetryAfter: retryAfter(h, time.Now()),
	}
	e.SubStatus, _ = strconv.Atoi(h.Get(headerSubStatus))
	e.RU, _ = strconv.ParseFloat(h.Get("x-ms-request-charge"), 64)
	if body, err := runtime.Payload(resp); err == nil {
		e.Message = c.scrubText(serviceMessage(body))
	}
	return e
}

// statusError is the RequestError of a status learned other than from a
// response's HTTP status: an operation inside a transactional batch, or a
// fallback query that found nothing.
func statusError(op string, status, subStatus int, activityID, message string) *migrate.RequestError {
	return &migrate.RequestError{Op: op, Status: status, SubStatus: subStatus, ActivityID: activityID, Message: message}
}

// retryAfter reads how long the service asks to wait: x-ms-retry-after-ms,
// else Retry-After in seconds or as an HTTP date; zero when neither is set.
func retryAfter(h http.Header, now time.Time) time.Duration {
	if v := h.Get(headerRetryAfterMS); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms > 0 {
			return time.Duration(ms * float64(time.Millisecond))
		}
	}
	v := h.Get(headerRetryAfter)
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// serviceMessage is the first line of the error body's "message" (the
// service appends activity and version lines), or of the body itself when
// it is not the service's JSON, at most maxMessage bytes.
func serviceMessage(body []byte) string {
	var doc struct {
		Message string `json:"message"`
	}
	msg := string(body)
	if json.Unmarshal(body, &doc) == nil && doc.Message != "" {
		msg = doc.Message
	}
	if i := strings.IndexAny(msg, "\r\n"); i >= 0 {
		msg = msg[:i]
	}
	msg = strings.TrimSpace(msg)
	if len(msg) > maxMessage {
		msg = strings.ToValidUTF8(msg[:maxMessage], "") + "..."
	}
	return msg
}

// TLSError is a request whose TLS handshake failed: the server's
// certificate did not verify (errors.Is(err, ErrUntrustedCertificate)), or
// the server does not speak TLS at all (an http:// emulator addressed as
// https://). No retry fixes it, so it is not a RequestError.
type TLSError struct {
	Op       string
	Endpoint string // the account endpoint, for the message
	Err      error
}

func (e *TLSError) Error() string { return fmt.Sprintf("%s: TLS with %s: %v", e.Op, e.Endpoint, e.Err) }

func (e *TLSError) Unwrap() error { return e.Err }

// Is matches ErrUntrustedCertificate when the certificate did not verify.
func (e *TLSError) Is(target error) bool {
	return target == ErrUntrustedCertificate && isCertificateError(e.Err)
}

// isNotTLS reports whether the server answered the TLS handshake with
// something that is not TLS.
func isNotTLS(err error) bool {
	var rh tls.RecordHeaderError
	return errors.As(err, &rh)
}

// isCertificateError reports whether err is a failed verification of the
// server's certificate, which no retry fixes.
func isCertificateError(err error) bool {
	var (
		verify   *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
	)
	return errors.As(err, &verify) || errors.As(err, &unknown) || errors.As(err, &hostname) || errors.As(err, &invalid)
}

// scrub hides the client's secrets in err's text, keeping err for
// errors.Is and errors.As.
func (c *Client) scrub(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if clean := c.scrubText(msg); clean != msg {
		return &scrubbedError{msg: clean, err: err}
	}
	return err
}

func (c *Client) scrubText(s string) string {
	for _, secret := range c.secrets {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, "[REDACTED]")
		}
	}
	if c.entra != nil {
		if tok := c.entra.current(); tok != "" {
			s = strings.ReplaceAll(s, tok, "[REDACTED]")
		}
	}
	return s
}

// scrubbedError is an error whose text had a secret removed.
type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

// statusOf is the HTTP status of a failed request's error, classified
// (RequestError) or straight from the SDK (azcore.ResponseError); 0 for
// any other error.
func statusOf(err error) int {
	var re *migrate.RequestError
	if errors.As(err, &re) {
		return re.Status
	}
	var resp *azcore.ResponseError
	if errors.As(err, &resp) {
		return resp.StatusCode
	}
	return 0
}
