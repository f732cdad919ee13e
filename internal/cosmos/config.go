package cosmos

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
)

// Defaults of Config.
const (
	// DefaultPriority is the priority of a migration's requests: low, so
	// the service throttles them before the application's.
	DefaultPriority = PriorityLow
	// DefaultMaxIdleConnsPerHost keeps enough connections open for a
	// parallel load on one account endpoint.
	DefaultMaxIdleConnsPerHost = 256
	// DefaultAttemptTimeout caps one HTTP attempt, body included. It
	// exceeds the gateway's own 60-second budget so the service can answer
	// with a structured error first (the SDK's default transport uses the
	// same figure).
	DefaultAttemptTimeout = 65 * time.Second
	// ApplicationID is appended to the User-Agent of every request.
	ApplicationID = "rekey"
)

// Priorities of Config.Priority (x-ms-cosmos-priority-level).
const (
	PriorityLow  = "low"
	PriorityHigh = "high"
)

// Config is how a Client reaches one Cosmos DB account. Give either
// ConnectionString, or Endpoint with AccountKey, or Endpoint alone to
// authenticate with Entra ID (DefaultAzureCredential: environment, workload
// identity, managed identity, Azure CLI, ...).
//
// Config holds secrets: String, GoString and LogValue redact them, and
// Validate never echoes them.
type Config struct {
	// Endpoint is the account endpoint, https://ACCOUNT.documents.azure.com:443/.
	// Plain http is accepted only for loopback endpoints.
	Endpoint string
	// AccountKey is the base64 master key (primary or secondary).
	AccountKey string
	// ConnectionString is "AccountEndpoint=...;AccountKey=...;"; other
	// settings in it are ignored.
	ConnectionString string
	// Insecure trusts any server certificate. It exists for the local
	// emulator's self-signed certificate and is refused unless the endpoint
	// is a loopback address (127.0.0.0/8, ::1, localhost).
	Insecure bool
	// Priority is "low" (the default) or "high": the priority-based
	// execution level of every request. Low makes the service throttle the
	// migration before the application.
	Priority string
	// Credential overrides DefaultAzureCredential for Entra ID
	// authentication; ignored when a key is given.
	Credential azcore.TokenCredential
	// HTTPClient replaces the tuned transport this package builds (tests
	// use it to trust the emulator's certificate). Insecure and
	// MaxIdleConnsPerHost do not apply to it.
	HTTPClient *http.Client
	// MaxIdleConnsPerHost bounds the idle connections kept per host;
	// DefaultMaxIdleConnsPerHost when zero.
	MaxIdleConnsPerHost int
}

// auth is how a validated Config authenticates.
type auth int

const (
	authKey auth = iota
	authEntra
)

// resolved is a validated Config with its connection string taken apart.
type resolved struct {
	endpoint *url.URL
	key      string // base64 master key; empty for Entra ID
	auth     auth
	priority string
}

// Validate reports the first invalid field by name. Its messages never
// contain the account key or the connection string.
func (c Config) Validate() error {
	_, err := c.resolve()
	return err
}

func (c Config) resolve() (resolved, error) {
	var r resolved
	switch p := strings.ToLower(c.Priority); p {
	case "":
		r.priority = DefaultPriority
	case PriorityLow, PriorityHigh:
		r.priority = p
	default:
		return r, fmt.Errorf("priority %q: want low or high", c.Priority)
	}
	if c.MaxIdleConnsPerHost < 0 {
		return r, fmt.Errorf("max idle connections per host %d: must not be negative", c.MaxIdleConnsPerHost)
	}
	endpoint, key := c.Endpoint, c.AccountKey
	if c.ConnectionString != "" {
		if c.Endpoint != "" || c.AccountKey != "" {
			return r, errors.New("connection string: give either a connection string or an endpoint and account key, not both")
		}
		var err error
		if endpoint, key, err = parseConnectionString(c.ConnectionString); err != nil {
			return r, err
		}
	}
	u, err := parseEndpoint(endpoint)
	if err != nil {
		return r, err
	}
	r.endpoint = u
	loopback := isLoopback(u.Hostname())
	if u.Scheme == "http" && !loopback {
		return r, fmt.Errorf("endpoint %s: plain http is allowed only for loopback endpoints (127.0.0.0/8, ::1, localhost); use https", u.Redacted())
	}
	if c.Insecure && !loopback {
		return r, fmt.Errorf("insecure: trusting any TLS certificate is allowed only for loopback endpoints (127.0.0.0/8, ::1, localhost), not %s", u.Host)
	}
	if key == "" {
		r.auth = authEntra
		return r, nil
	}
	if b, err := base64.StdEncoding.DecodeString(key); err != nil || len(b) == 0 {
		return r, errors.New("account key: not a base64 master key")
	}
	r.auth, r.key = authKey, key
	return r, nil
}

// parseConnectionString takes AccountEndpoint and AccountKey out of a
// connection string. Names are case-insensitive and in any order; other
// settings are ignored. Errors never quote the string.
func parseConnectionString(s string) (endpoint, key string, err error) {
	for i, part := range strings.Split(s, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, value, ok := strings.Cut(part, "=")
		if !ok {
			return "", "", fmt.Errorf("connection string: setting %d is not NAME=VALUE", i+1)
		}
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "accountendpoint":
			endpoint = strings.TrimSpace(value)
		case "accountkey":
			key = strings.TrimSpace(value)
		}
	}
	switch {
	case endpoint == "":
		return "", "", errors.New("connection string: no AccountEndpoint")
	case key == "":
		return "", "", errors.New("connection string: no AccountKey")
	}
	return endpoint, key, nil
}

// parseEndpoint checks that s is an absolute http(s) URL of an account.
func parseEndpoint(s string) (*url.URL, error) {
	if s == "" {
		return nil, errors.New("endpoint: required (or a connection string)")
	}
	if looksSecret(s) {
		// Someone pasted a connection string or key into the endpoint.
		return nil, errors.New("endpoint: not a URL (it looks like a connection string or key; pass that as the connection string)")
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("endpoint %q: want https://ACCOUNT.documents.azure.com:443/", s)
	}
	if u.User != nil {
		return nil, fmt.Errorf("endpoint %s: must not hold credentials", u.Redacted())
	}
	if u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/") {
		return nil, fmt.Errorf("endpoint %s: want the account URL alone, without a path or query", u.Redacted())
	}
	return u, nil
}

// looksSecret reports whether an endpoint value holds what looks like a
// connection string or a bare key rather than a URL.
func looksSecret(s string) bool {
	l := strings.ToLower(s)
	return strings.Contains(l, "accountkey") || strings.Contains(s, ";") || (!strings.Contains(s, "://") && strings.HasSuffix(s, "=="))
}

// isLoopback reports whether host names this machine: localhost or an
// address in 127.0.0.0/8 or ::1.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// authName describes how c authenticates, without secrets.
func (c Config) authName() string {
	switch {
	case c.ConnectionString != "":
		return "connection string"
	case c.AccountKey != "":
		return "account key"
	default:
		return "Entra ID"
	}
}

// endpointName is the endpoint for display: from the connection string when
// one is given, "(invalid)" when it does not parse.
func (c Config) endpointName() string {
	r, err := c.resolve()
	if err != nil || r.endpoint == nil {
		if c.Endpoint != "" && !looksSecret(c.Endpoint) {
			return c.Endpoint
		}
		return "(invalid)"
	}
	return r.endpoint.Redacted()
}

// String describes the configuration with its secrets redacted.
func (c Config) String() string {
	return fmt.Sprintf("cosmos.Config{Endpoint: %s, Auth: %s (redacted), Insecure: %t, Priority: %s}",
		c.endpointName(), c.authName(), c.Insecure, c.priorityName())
}

// GoString is String, so %#v does not print the secrets either.
func (c Config) GoString() string { return c.String() }

// LogValue makes slog log the configuration without its secrets.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("endpoint", c.endpointName()),
		slog.String("auth", c.authName()),
		slog.Bool("insecure", c.Insecure),
		slog.String("priority", c.priorityName()),
	)
}

func (c Config) priorityName() string {
	if c.Priority == "" {
		return DefaultPriority
	}
	return strings.ToLower(c.Priority)
}
