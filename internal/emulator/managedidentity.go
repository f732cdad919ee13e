package emulator

import (
	"crypto/subtle"
	"net/http"
	"strconv"
)

// The issuer's tokens for clients outside the test process. Azure's
// identity libraries (azidentity's ManagedIdentityCredential and so
// DefaultAzureCredential, and their counterparts in the other languages)
// fetch a managed identity's tokens on App Service from a loopback HTTP
// endpoint named by two environment variables
// (https://learn.microsoft.com/azure/app-service/overview-managed-identity#rest-endpoint-reference):
//
//	IDENTITY_ENDPOINT  the endpoint's URL
//	IDENTITY_HEADER    a secret the client sends back as X-IDENTITY-HEADER
//
// and ask GET IDENTITY_ENDPOINT?api-version=2019-08-01&resource=<audience>.
// The Server serves that protocol on a plain-HTTP loopback listener, as App
// Service does, so that a child process, `rekey run` included, finds the
// emulator's tokens through DefaultAzureCredential with no code of its own.

// Environment variables of the App Service managed identity protocol, and
// azidentity's AZURE_TOKEN_CREDENTIALS, which makes DefaultAzureCredential
// use its managed identity credential alone.
const (
	envIdentityEndpoint = "IDENTITY_ENDPOINT"
	envIdentityHeader   = "IDENTITY_HEADER"
	envTokenCredentials = "AZURE_TOKEN_CREDENTIALS"
)

// managedIdentityPath is where the identity listener answers.
const managedIdentityPath = "/msi/token"

// IdentityHeader is the secret managed-identity clients must send as
// X-IDENTITY-HEADER (the value of IDENTITY_HEADER).
func (i *EntraIssuer) IdentityHeader() string { return i.secret }

// ManagedIdentityHandler answers the App Service managed identity protocol
// with the issuer's tokens: for GET ?resource=<audience> with the issuer's
// X-IDENTITY-HEADER, a token for that audience, valid EntraTokenLifetime,
// for the principal the request names (object_id, principal_id or
// client_id, in that order; EntraPrincipal when none), as
// {"access_token","expires_on","not_before","resource","token_type"}.
// A wrong or missing header is answered 401, a missing resource 400.
func (i *EntraIssuer) ManagedIdentityHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			adminError(w, http.StatusMethodNotAllowed, "method %s: want GET", r.Method)
			return
		}
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("X-IDENTITY-HEADER")), []byte(i.secret)) != 1 {
			adminError(w, http.StatusUnauthorized, "the X-IDENTITY-HEADER header is missing or not this emulator's IDENTITY_HEADER")
			return
		}
		q := r.URL.Query()
		resource := q.Get("resource")
		if resource == "" {
			adminError(w, http.StatusBadRequest, "the resource query parameter is required")
			return
		}
		principal := q.Get("object_id")
		for _, name := range []string{"principal_id", "client_id"} {
			if principal == "" {
				principal = q.Get(name)
			}
		}
		now := i.now()
		exp := now.Add(EntraTokenLifetime)
		tok, err := i.Mint(EntraToken{Audience: resource, Principal: principal, NotBefore: now, ExpiresOn: exp})
		if err != nil {
			adminError(w, http.StatusInternalServerError, "%v", err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{
			"access_token": tok,
			"expires_on":   strconv.FormatInt(exp.Unix(), 10),
			"not_before":   strconv.FormatInt(now.Unix(), 10),
			"resource":     resource,
			"token_type":   "Bearer",
		})
	})
}
