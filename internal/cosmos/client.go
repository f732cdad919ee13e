package cosmos

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"
)

// Client is a connection to one Cosmos DB account. It is safe for concurrent
// use; Close it when done.
type Client struct {
	az       *azcosmos.Client
	endpoint string // for display; holds no secret
	hc       *http.Client
	ownsHC   bool
	secrets  []string     // scrubbed from error text
	entra    *entraPolicy // its current token is scrubbed too; nil with a key
	raw      *rawPipeline // requests the SDK cannot send (raw.go)
	routing  routingCache // partition key ranges per container (pkranges.go)
	leaseRU  ruCounter    // spent by every LeaseDocuments of this client
}

// NewClient validates cfg and builds a client. It does not contact the
// service (Entra ID tokens, too, are fetched on the first request); call
// Ping to check the endpoint and the credentials up front.
func NewClient(ctx context.Context, cfg Config) (*Client, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	c := &Client{endpoint: r.endpoint.Redacted(), hc: cfg.HTTPClient}
	if c.hc == nil {
		c.hc, c.ownsHC = NewHTTPClient(cfg.Insecure, cfg.MaxIdleConnsPerHost), true
	}
	prio := azcosmos.PriorityLevelLow
	if r.priority == PriorityHigh {
		prio = azcosmos.PriorityLevelHigh
	}
	opts := &azcosmos.ClientOptions{
		ClientOptions: azcore.ClientOptions{
			Transport: transport{c.hc},
			// No generic retries: package migrate owns the retry policy
			// that honours x-ms-retry-after-ms. The SDK's Cosmos retry
			// policy (splits, sessions, regions) is separate and stays.
			Retry:     policy.RetryOptions{MaxRetries: -1},
			Telemetry: policy.TelemetryOptions{ApplicationID: ApplicationID},
		},
		PriorityLevel: &prio,
	}
	endpoint := r.endpoint.String()
	switch r.auth {
	case authKey:
		c.secrets = append(c.secrets, r.key, cfg.ConnectionString)
		cred, err := azcosmos.NewKeyCredential(r.key)
		if err != nil {
			return nil, errors.New("account key: not a base64 master key")
		}
		c.az, err = azcosmos.NewClientWithKey(endpoint, cred, opts)
		if err != nil {
			return nil, fmt.Errorf("cosmos client for %s: %w", c.endpoint, c.scrub(err))
		}
		key, _ := base64.StdEncoding.DecodeString(r.key) // resolve checked it
		c.raw = newRawPipeline(r.endpoint, c.hc, masterKeyPolicy{key: key}, r.priority)
	default:
		cred := cfg.Credential
		if cred == nil {
			cred, err = azidentity.NewDefaultAzureCredential(nil)
			if err != nil {
				return nil, fmt.Errorf("entra id credential for %s: %w", c.endpoint, err)
			}
		}
		c.az, err = azcosmos.NewClient(endpoint, cred, opts)
		if err != nil {
			return nil, fmt.Errorf("cosmos client for %s: %w", c.endpoint, err)
		}
		c.entra = newEntraPolicy(cred, r.endpoint)
		c.raw = newRawPipeline(r.endpoint, c.hc, c.entra, r.priority)
	}
	return c, nil
}

// Endpoint is the account endpoint the client talks to.
func (c *Client) Endpoint() string { return c.endpoint }

// String names the account; it holds no secret.
func (c *Client) String() string { return "cosmos.Client{" + c.endpoint + "}" }

// Close releases the SDK's caches for this account and the idle connections
// of the transport the client built. The client must not be used after.
func (c *Client) Close() {
	c.az.Close()
	if c.ownsHC {
		c.hc.CloseIdleConnections()
	}
}

// Ping checks that the endpoint answers and accepts the credentials, by
// reading the first page of the account's database list.
func (c *Client) Ping(ctx context.Context) error {
	pager := c.az.NewQueryDatabasesPager("SELECT d.id FROM d", &azcosmos.QueryDatabasesOptions{})
	_, err := pager.NextPage(ctx)
	return c.classify(ctx, "ping", err)
}

// Container returns the container db/container of this account. It does not
// contact the service; a container that does not exist answers ErrNotFound.
func (c *Client) Container(db, container string) *Container {
	cc, err := c.az.NewContainer(db, container)
	if err != nil {
		err = fmt.Errorf("container %q/%q: %w", db, container, err)
	}
	return &Container{client: c, db: db, id: container, cc: cc, err: err}
}

// newHTTPClient builds the transport for a parallel load on one account:
// many idle connections per host, HTTP/2 with health pings, bounded connect
// and handshake times, and TLS verified unless insecure (which Validate
// allows only for loopback endpoints). A Client builds its own; the
// benchmark's naive copier uses one too, to be measured on the same
// connections.
func NewHTTPClient(insecure bool, maxIdlePerHost int) *http.Client {
	if maxIdlePerHost == 0 {
		maxIdlePerHost = DefaultMaxIdleConnsPerHost
	}
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          4 * maxIdlePerHost,
		MaxIdleConnsPerHost:   maxIdlePerHost,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		TLSClientConfig: &tls.Config{
			MinVersion: tls.VersionTLS12,
			// Only for the loopback emulator's self-signed certificate;
			// Config.Validate refuses Insecure for any other endpoint.
			InsecureSkipVerify: insecure, //nolint:gosec // loopback only, see above
		},
		// Ping an idle HTTP/2 connection so a dead one is noticed within
		// seconds instead of at the next attempt's timeout.
		HTTP2: &http.HTTP2Config{SendPingTimeout: 15 * time.Second, PingTimeout: 5 * time.Second},
	}
	return &http.Client{Transport: tr, Timeout: DefaultAttemptTimeout}
}

// transport is the SDK's policy.Transporter over an http.Client. It marks
// every error of the network (sending the request or reading the response
// body) as a transportError, so classify tells them from the SDK's own
// client-side errors without matching text.
type transport struct{ hc *http.Client }

func (t transport) Do(req *http.Request) (*http.Response, error) {
	resp, err := t.hc.Do(req)
	if err != nil {
		return nil, &transportError{err}
	}
	resp.Body = &markedBody{resp.Body}
	return resp, nil
}

// transportError is a failure of the network under one request.
type transportError struct{ err error }

func (e *transportError) Error() string { return e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

// markedBody marks read errors of a response body, except the io.EOF that
// ends it.
type markedBody struct{ io.ReadCloser }

func (b *markedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	// io.EOF is compared, not matched: readers return it unwrapped, and
	// io.ReadAll must see it so.
	if err != nil && err != io.EOF {
		err = &transportError{err}
	}
	return n, err
}
