package cosmos

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/google/uuid"
)

// The raw pipeline sends the requests azcosmos v1.5.0 cannot: bulk, the
// all-versions-and-deletes change feed and the partition key range list.
// It is built from azcore's runtime.NewPipeline with what the SDK's own
// pipeline carries, so the service cannot tell the two apart:
//
//   - the same transport (Client.hc through transport, so TLS and
//     --insecure, connection pooling and network-error marking are shared);
//   - the same credential: the master key's HMAC signature or an Entra ID
//     token, see auth.go;
//   - the same headers: x-ms-version, x-ms-date, x-ms-activity-id,
//     x-ms-cosmos-sdk-supportedcapabilities, x-ms-cosmos-priority-level and
//     the User-Agent of azcosmos (cosmos_client.go addDefaultHeaders,
//     cosmos_headers_policy.go, azcore's telemetry policy);
//   - no generic retries, as in NewClient: package migrate owns them.
//
// Failures are classified exactly as the SDK path's (errors.go).

// Identity of the SDK whose requests these are, for the User-Agent.
const (
	sdkModule  = "azcosmos"
	sdkVersion = "v1.5.0"
	// apiVersion is azcosmos v1.5.0's x-ms-version (cosmos_client.go).
	apiVersion = "2020-11-05"
	// supportedCapabilities is azcosmos v1.5.0's
	// x-ms-cosmos-sdk-supportedcapabilities: partition merge
	// (sdk_capabilities.go). A merged range answers 410 like a split one,
	// which every raw caller handles by re-reading the ranges.
	supportedCapabilities = "1"
)

// Request and response headers of the raw requests.
const (
	headerVersion        = "x-ms-version"
	headerDate           = "x-ms-date"
	headerAuthorization  = "Authorization"
	headerCapabilities   = "x-ms-cosmos-sdk-supportedcapabilities"
	headerPriority       = "x-ms-cosmos-priority-level"
	headerRequestCharge  = "x-ms-request-charge"
	headerMaxItemCount   = "x-ms-max-item-count"
	headerRangeID        = "x-ms-documentdb-partitionkeyrangeid"
	headerAIM            = "A-IM"
	headerIfNoneMatch    = "If-None-Match"
	headerETag           = "etag"
	headerStartEPK       = "x-ms-start-epk"
	headerEndEPK         = "x-ms-end-epk"
	jsonContentType      = "application/json"
	resourceDocs         = "docs"
	resourcePKRanges     = "pkranges"
	priorityHeaderLow    = "Low"
	priorityHeaderHigh   = "High"
	headerValueIncrement = "Incremental Feed"
)

// rawTarget is what a raw request addresses, as the signature covers it:
// the resource type and the resource link, unescaped ("dbs/d/colls/c" for
// the documents or the ranges of container c).
type rawTarget struct {
	resourceType string
	link         string
}

// rawRequest is one request of the raw pipeline.
type rawRequest struct {
	op     string // names the request in errors
	method string
	target rawTarget
	path   string // the URL path under the endpoint, escaped
	header http.Header
	body   []byte
}

// rawResponse is a successful answer (2xx or 304) with its body read.
type rawResponse struct {
	status int
	header http.Header
	body   []byte
	ru     float64
}

// rawPipeline holds what sends raw requests for one Client.
type rawPipeline struct {
	pl       runtime.Pipeline
	endpoint *url.URL
}

// newRawPipeline builds the raw pipeline over hc with the authentication
// policy auth.
func newRawPipeline(endpoint *url.URL, hc *http.Client, auth policy.Policy, priority string) *rawPipeline {
	prio := priorityHeaderLow
	if priority == PriorityHigh {
		prio = priorityHeaderHigh
	}
	opts := &policy.ClientOptions{
		Transport: transport{hc},
		Retry:     policy.RetryOptions{MaxRetries: -1},
		Telemetry: policy.TelemetryOptions{ApplicationID: ApplicationID},
	}
	pl := runtime.NewPipeline(sdkModule, sdkVersion, runtime.PipelineOptions{
		PerCall:  []policy.Policy{defaultHeaders{priority: prio, now: time.Now}},
		PerRetry: []policy.Policy{auth},
	}, opts)
	return &rawPipeline{pl: pl, endpoint: endpoint}
}

// defaultHeaders sets the headers azcosmos sets on every request; the
// date is what a master key signs.
type defaultHeaders struct {
	priority string
	now      func() time.Time
}

func (h defaultHeaders) Do(req *policy.Request) (*http.Response, error) {
	hd := req.Raw().Header
	hd.Set(headerDate, h.now().UTC().Format(http.TimeFormat))
	hd.Set(headerVersion, apiVersion)
	hd.Set(headerCapabilities, supportedCapabilities)
	hd.Set(headerActivityID, uuid.NewString())
	hd.Set(headerPriority, h.priority)
	return req.Next()
}

// send runs r through the raw pipeline. A 2xx or 304 answer is returned
// with its body; any other status, a network failure or a done ctx is an
// error classified as the SDK path's are (see classify).
func (c *Client) send(ctx context.Context, r rawRequest) (*rawResponse, error) {
	req, err := runtime.NewRequest(ctx, r.method, c.raw.endpoint.JoinPath(r.path).String())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.op, err)
	}
	for k, vs := range r.header {
		req.Raw().Header[k] = vs
	}
	req.SetOperationValue(r.target)
	if r.body != nil {
		if err := req.SetBody(streaming.NopCloser(bytes.NewReader(r.body)), jsonContentType); err != nil {
			return nil, fmt.Errorf("%s: %w", r.op, err)
		}
	}
	resp, err := c.raw.pl.Do(req)
	if err != nil {
		return nil, c.classify(ctx, r.op, err)
	}
	if resp.StatusCode >= http.StatusMultipleChoices && resp.StatusCode != http.StatusNotModified {
		return nil, c.responseError(r.op, resp)
	}
	body, err := runtime.Payload(resp)
	if err != nil {
		return nil, c.classify(ctx, r.op, err)
	}
	out := &rawResponse{status: resp.StatusCode, header: resp.Header, body: body}
	out.ru = requestCharge(resp.Header)
	return out, nil
}

// containerPath is the escaped URL path of container db/coll, then of the
// given child resource ("docs", "pkranges"), if any.
func containerPath(db, coll string, child ...string) string {
	parts := []string{"dbs", url.PathEscape(db), "colls", url.PathEscape(coll)}
	return strings.Join(append(parts, child...), "/")
}

// containerLink is the unescaped resource link of container db/coll, as
// the signature covers it.
func containerLink(db, coll string) string {
	return "dbs/" + db + "/colls/" + coll
}

// requestCharge reads x-ms-request-charge; 0 when absent.
func requestCharge(h http.Header) float64 {
	ru, _ := strconv.ParseFloat(h.Get(headerRequestCharge), 64)
	return ru
}
