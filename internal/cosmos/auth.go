package cosmos

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// Authentication of the raw pipeline, the same as azcosmos's
// (shared_key_credential.go, cosmos_policy_bearer_token.go) and as
// documented in https://learn.microsoft.com/rest/api/cosmos-db/access-control-on-cosmosdb-resources.

// tokenRefreshMargin is how long before an Entra ID token expires it is
// renewed, as azcore's temporal resource (and so azcosmos) does.
const tokenRefreshMargin = 5 * time.Minute

// errNoTarget is returned by an authentication policy for a request that
// did not say what it addresses; a bug of this package, never the service's.
var errNoTarget = errors.New("raw request without a resource type and link to sign")

// masterKeyAuthorization is the Authorization header of a request signed
// with a master key: HMAC-SHA256, keyed with the decoded key, over the
// lower-case verb, the lower-case resource type, the resource link as is,
// the lower-case date and an empty line, each ending in "\n"; then
// "type=master&ver=1.0&sig=<base64>" URL-encoded.
func masterKeyAuthorization(key []byte, verb, resourceType, link, date string) string {
	payload := strings.ToLower(verb) + "\n" + strings.ToLower(resourceType) + "\n" + link + "\n" + strings.ToLower(date) + "\n\n"
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(payload))
	return url.QueryEscape("type=master&ver=1.0&sig=" + base64.StdEncoding.EncodeToString(mac.Sum(nil)))
}

// masterKeyPolicy signs every request with the account's master key over
// its x-ms-date, which defaultHeaders sets.
type masterKeyPolicy struct{ key []byte }

func (p masterKeyPolicy) Do(req *policy.Request) (*http.Response, error) {
	var t rawTarget
	if !req.OperationValue(&t) {
		return nil, errNoTarget
	}
	date := req.Raw().Header.Get(headerDate)
	req.Raw().Header.Set(headerAuthorization, masterKeyAuthorization(p.key, req.Raw().Method, t.resourceType, t.link, date))
	return req.Next()
}

// entraPolicy authorizes every request with an Entra ID token for the
// account's scope, "type=aad&ver=1.0&sig=<token>" as azcosmos writes it
// (not URL-encoded). Tokens are cached and renewed tokenRefreshMargin
// before they expire, or from their RefreshOn; while a renewal fails, a
// token that has not expired yet is still used.
type entraPolicy struct {
	cred   azcore.TokenCredential
	scopes []string
	now    func() time.Time

	mu    sync.Mutex
	token azcore.AccessToken
}

// newEntraPolicy asks cred for tokens of endpoint's account scope,
// "<scheme>://<host>/.default", as azcosmos's createScopeFromEndpoint does.
func newEntraPolicy(cred azcore.TokenCredential, endpoint *url.URL) *entraPolicy {
	scope := endpoint.Scheme + "://" + endpoint.Hostname() + "/.default"
	return &entraPolicy{cred: cred, scopes: []string{scope}, now: time.Now}
}

func (p *entraPolicy) Do(req *policy.Request) (*http.Response, error) {
	tok, err := p.get(req.Raw().Context())
	if err != nil {
		return nil, fmt.Errorf("entra id token for scope %s: %w", p.scopes[0], err)
	}
	req.Raw().Header.Set(headerAuthorization, "type=aad&ver=1.0&sig="+tok)
	return req.Next()
}

// get returns a valid token, renewing the cached one when it is due.
func (p *entraPolicy) get(ctx context.Context) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if p.token.Token != "" && !p.due(now) {
		return p.token.Token, nil
	}
	tok, err := p.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: p.scopes})
	if err != nil {
		if p.token.Token != "" && now.Before(p.token.ExpiresOn) {
			return p.token.Token, nil
		}
		return "", err
	}
	p.token = tok
	return tok.Token, nil
}

// due reports whether the cached token should be renewed at now; p.mu is
// held.
func (p *entraPolicy) due(now time.Time) bool {
	if !p.token.RefreshOn.IsZero() && !now.Before(p.token.RefreshOn) {
		return true
	}
	return !now.Before(p.token.ExpiresOn.Add(-tokenRefreshMargin))
}

// current is the cached token, for scrubbing error text; "" when none.
func (p *entraPolicy) current() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.token.Token
}
