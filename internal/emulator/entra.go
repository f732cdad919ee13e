package emulator

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/golang-jwt/jwt/v5"
)

// Microsoft Entra ID tokens. With Options.Entra the account accepts
// "type=aad&ver=1.0&sig=<JWT>" besides master-key signatures, as the
// service does (https://learn.microsoft.com/azure/cosmos-db/how-to-setup-rbac),
// but from one issuer only: the emulator's own, which stands in for Entra.
// It signs RS256 tokens with an RSA key made when the emulator starts; the
// claims the account checks are those of an Entra access token
// (https://learn.microsoft.com/entra/identity-platform/access-token-claims-reference):
// aud, iss, nbf, exp, oid and tid. entra_auth.go checks them, rbac.go
// authorizes the principal, managedidentity.go hands tokens to clients
// outside the test process.

const (
	// EntraTenant is the tenant (tid) of the emulator's test issuer.
	EntraTenant = "0000000e-e317-4a7e-8000-7265b3e70000"
	// EntraPrincipal is the object id (oid) of the test issuer's default
	// principal, which holds the Cosmos DB Built-in Data Contributor role
	// on every Entra-enabled emulator until AssignEntraRole says otherwise.
	EntraPrincipal = "0000000e-e317-4a7e-8000-000000000001"
	// EntraTokenLifetime is how long a token is valid unless the request
	// for it says otherwise: an hour, within the 60-90 minutes of Entra's
	// access tokens.
	EntraTokenLifetime = time.Hour
	// entraCosmosAudience is the audience every account accepts besides
	// its own endpoint's (azcosmos ClientOptions.Cloud lets a client ask
	// for it).
	entraCosmosAudience = "https://cosmos.azure.com"
)

// EntraIssuer is an Entra-enabled emulator's token issuer: what Entra is
// to the service. Emulator.Entra returns it; it is safe for concurrent use.
type EntraIssuer struct {
	key    *rsa.PrivateKey
	keyID  string // the "kid" of its tokens: a thumbprint of the public key
	issuer string // the "iss" of its tokens
	now    func() time.Time
	secret string // the X-IDENTITY-HEADER managed-identity clients send
}

// newEntraIssuer makes an issuer with a fresh RSA-2048 key, minting on the
// account's clock now.
func newEntraIssuer(now func() time.Time) (*EntraIssuer, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("entra test issuer key: %w", err)
	}
	thumb := sha256.Sum256(key.PublicKey.N.Bytes())
	var secret [16]byte
	_, _ = rand.Read(secret[:])
	return &EntraIssuer{
		key:    key,
		keyID:  base64.RawURLEncoding.EncodeToString(thumb[:16]),
		issuer: "https://sts.windows.net/" + EntraTenant + "/",
		now:    now,
		secret: base64.RawURLEncoding.EncodeToString(secret[:]),
	}, nil
}

// Issuer is the "iss" of the issuer's tokens, the one the account trusts.
func (i *EntraIssuer) Issuer() string { return i.issuer }

// EntraToken describes a token for EntraIssuer.Mint. Zero fields take the
// values Entra would give a token issued now to the default principal.
type EntraToken struct {
	// Audience is the resource the token is for: the account endpoint's
	// scheme and host ("https://127.0.0.1", the SDK's scope without
	// "/.default") or https://cosmos.azure.com. Required.
	Audience string
	// Principal is the "oid" claim; EntraPrincipal when empty.
	Principal string
	// Issuer is the "iss" claim; the issuer's own when empty. Set it to
	// test a token from an issuer the account does not trust.
	Issuer string
	// NotBefore is the "nbf" claim; the account clock's now when zero.
	NotBefore time.Time
	// ExpiresOn is the "exp" claim; NotBefore + EntraTokenLifetime when zero.
	ExpiresOn time.Time
}

// entraClaims are the claims of the issuer's tokens.
type entraClaims struct {
	jwt.RegisteredClaims
	ObjectID string `json:"oid,omitempty"`
	TenantID string `json:"tid,omitempty"`
}

// Mint signs a token as t describes, with the issuer's key. It fails only
// when t has no audience or the signing fails.
func (i *EntraIssuer) Mint(t EntraToken) (string, error) {
	if t.Audience == "" {
		return "", errors.New("entra token: an audience is required")
	}
	if t.Principal == "" {
		t.Principal = EntraPrincipal
	}
	if t.Issuer == "" {
		t.Issuer = i.issuer
	}
	if t.NotBefore.IsZero() {
		t.NotBefore = i.now()
	}
	if t.ExpiresOn.IsZero() {
		t.ExpiresOn = t.NotBefore.Add(EntraTokenLifetime)
	}
	return i.sign(entraClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    t.Issuer,
			Audience:  jwt.ClaimStrings{t.Audience},
			IssuedAt:  jwt.NewNumericDate(t.NotBefore),
			NotBefore: jwt.NewNumericDate(t.NotBefore),
			ExpiresAt: jwt.NewNumericDate(t.ExpiresOn),
		},
		ObjectID: t.Principal,
		TenantID: EntraTenant,
	})
}

// sign signs claims with the issuer's key, naming it in the "kid" header.
func (i *EntraIssuer) sign(claims entraClaims) (string, error) {
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = i.keyID
	s, err := tok.SignedString(i.key)
	if err != nil {
		return "", fmt.Errorf("entra token: sign: %w", err)
	}
	return s, nil
}

// Credential returns an azcore.TokenCredential that answers each GetToken
// as Entra answers a service principal: a token for principal
// (EntraPrincipal when empty) whose audience is the requested scope
// without "/.default", valid EntraTokenLifetime from the account clock's
// now. Give it to azcosmos.NewClient or to rekey's cosmos.Config. The
// token's ExpiresOn is on the account clock too: with a manual clock behind
// the wall clock, azcore finds every token expired and asks for a new one
// per request, which the credential mints at once.
func (i *EntraIssuer) Credential(principal string) *EntraCredential {
	return &EntraCredential{issuer: i, principal: principal}
}

// EntraCredential is the azcore.TokenCredential of EntraIssuer.Credential.
type EntraCredential struct {
	issuer    *EntraIssuer
	principal string
	requests  atomic.Int64
}

var _ azcore.TokenCredential = (*EntraCredential)(nil)

// GetToken mints a token for the one scope of opts, which must end in
// "/.default" as Entra requires of a client-credentials request.
func (c *EntraCredential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	if err := ctx.Err(); err != nil {
		return azcore.AccessToken{}, err
	}
	if len(opts.Scopes) != 1 || !strings.HasSuffix(opts.Scopes[0], "/.default") {
		return azcore.AccessToken{}, fmt.Errorf("entra test credential: want one scope ending in /.default, got %q", opts.Scopes)
	}
	c.requests.Add(1)
	now := c.issuer.now()
	exp := now.Add(EntraTokenLifetime)
	tok, err := c.issuer.Mint(EntraToken{
		Audience:  strings.TrimSuffix(opts.Scopes[0], "/.default"),
		Principal: c.principal,
		NotBefore: now,
		ExpiresOn: exp,
	})
	if err != nil {
		return azcore.AccessToken{}, err
	}
	return azcore.AccessToken{Token: tok, ExpiresOn: exp}, nil
}

// Requests is how many tokens the credential has handed out.
func (c *EntraCredential) Requests() int { return int(c.requests.Load()) }
