package emulator

import (
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Resource type segments, as the signature and the path name them.
const (
	typeAccount  = ""
	typeDatabase = "dbs"
	typeColl     = "colls"
	typeDoc      = "docs"
	typeOffer    = "offers"
	typePKRange  = "pkranges"
)

// requestContext is what the emulator knows about one request.
type requestContext struct {
	r          *http.Request
	activityID string
	start      time.Time
	segs       []string // decoded path segments
	resType    string   // resource type the signature covers
	link       string   // resource link the signature covers
	isFeed     bool     // the path names a feed (dbs, .../docs) rather than one resource
	charge     float64  // request units charged so far
	body       []byte
	gateway    Gateway // how the path is decoded
}

func newRequestContext(r *http.Request) *requestContext {
	return &requestContext{r: r, activityID: newActivityID(), start: time.Now()}
}

func newActivityID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// resolve derives the resource type and link from the request path the way
// the request's gateway does. The compute gateway decodes each escaped
// segment once. The routing gateway has quirks: it percent-decodes the path twice, treats
// a backslash as a slash, cuts the path at '#' and drops trailing whitespace
// from a segment. An id holding those characters can therefore be created (its
// id travels in the body) but not addressed: the link the client signed no
// longer matches, so the request fails authorization, as with the service.
// Control characters in the path are rejected outright.
func (rc *requestContext) resolve() *svcError {
	// The REST API has no query parameters, and the JavaScript SDK builds
	// paths with encodeURI, which leaves '?' as it is: an id holding '?'
	// arrives as ".../docs/a?b". Both gateways answer it as that id
	// (azure-sdk-for-js test/public/functional/item/itemIdEncoding.spec.ts,
	// "idWithDisallowedCharQuestionMark": 200 on both), so the query
	// string is part of the path.
	raw := rc.r.RequestURI
	if u, err := url.Parse(raw); err == nil && u.IsAbs() {
		raw = u.EscapedPath()
		if u.RawQuery != "" || u.ForceQuery {
			raw += "?" + u.RawQuery
		}
	}
	if rc.gateway == ComputeGateway {
		if err := rc.resolveSegments(raw); err != nil {
			return err
		}
		rc.deriveLink()
		return nil
	}
	once, err := url.PathUnescape(raw)
	if err != nil {
		return badRequest("The request path %q is not valid.", truncate(raw, 200))
	}
	for _, r := range once {
		if r < 0x20 || r == 0x7f {
			return badRequest("The request path contains a control character, which is not allowed in a resource id.")
		}
	}
	p := strings.ReplaceAll(once, `\`, "/")
	if i := strings.IndexByte(p, '#'); i >= 0 {
		p = p[:i]
	}
	if twice, err := url.PathUnescape(p); err == nil {
		p = twice
	}
	p = strings.Trim(p, "/")
	if p != "" {
		rc.segs = strings.Split(p, "/")
		for i, s := range rc.segs {
			rc.segs[i] = strings.TrimRight(s, " \t")
		}
	}
	rc.deriveLink()
	return nil
}

// resolveSegments splits an escaped path on '/' and decodes each segment
// once: an id escaped by the SDK (url.PathEscape in azcosmos,
// encodeURIComponent in @azure/cosmos) comes back exactly, '/', '?', '#',
// '%', trailing spaces and control characters included.
func (rc *requestContext) resolveSegments(raw string) *svcError {
	raw = strings.Trim(raw, "/")
	if raw == "" {
		return nil
	}
	parts := strings.Split(raw, "/")
	rc.segs = make([]string, len(parts))
	for i, p := range parts {
		seg, err := url.PathUnescape(p)
		if err != nil {
			return badRequest("The request path segment %q is not valid.", truncate(p, 200))
		}
		rc.segs[i] = seg
	}
	return nil
}

// deriveLink sets the resource type and the link the signature covers from
// the decoded segments.
func (rc *requestContext) deriveLink() {
	n := len(rc.segs)
	switch {
	case n == 0:
		rc.resType, rc.link = typeAccount, ""
	case n%2 == 1:
		rc.isFeed = true
		rc.resType = rc.segs[n-1]
		rc.link = strings.Join(rc.segs[:n-1], "/")
	default:
		rc.resType = rc.segs[n-2]
		rc.link = strings.Join(rc.segs, "/")
	}
	if rc.resType == typeOffer && !rc.isFeed {
		// Offers are addressed by _rid; a rid-based link is signed as the
		// resource's rid alone, lower-cased.
		rc.link = strings.ToLower(rc.segs[n-1])
	}
}

// readBody reads the request body once, refusing bodies over the service's
// request size limit.
func (rc *requestContext) readBody() ([]byte, *svcError) {
	if rc.body != nil {
		return rc.body, nil
	}
	b, err := io.ReadAll(io.LimitReader(rc.r.Body, maxDocumentBytes+64*1024+1))
	if err != nil {
		return nil, newError(http.StatusRequestTimeout, "reading the request body failed: %v", err)
	}
	if len(b) > maxDocumentBytes+64*1024 {
		return nil, tooLarge()
	}
	rc.body = b
	return b, nil
}

func (rc *requestContext) header(name string) string { return rc.r.Header.Get(name) }

// headerBool reads a "true"/"false" header, case-insensitively.
func (rc *requestContext) headerBool(name string) bool {
	return strings.EqualFold(rc.r.Header.Get(name), "true")
}

// priority is the request's x-ms-cosmos-priority-level: low requests are
// throttled first under contention.
func (rc *requestContext) lowPriority() bool {
	return strings.EqualFold(rc.r.Header.Get("x-ms-cosmos-priority-level"), "low")
}

// contentResponse reports whether a write should return the item (the SDK
// sends Prefer: return=minimal unless asked for content).
func (rc *requestContext) contentResponse() bool {
	return !strings.Contains(strings.ToLower(rc.r.Header.Get("Prefer")), "return=minimal")
}
