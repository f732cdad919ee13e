package emulator

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Substatus codes of Entra ID authentication and authorization failures, as
// the service sets them (.NET Microsoft.Azure.Cosmos/src/direct/StatusCodes.cs,
// SubStatusCodes, "Keep in sync with ... AadSubStatusCodes").
const (
	subStatusAadAuthDisabled               = 5002 // 401: the account takes no AAD tokens (here: Options.Entra off)
	subStatusAadTokenInvalidFormat         = 5003 // 401: not a JWT
	subStatusAadTokenInvalidSignature      = 5004 // 401
	subStatusAadTokenNotYetValid           = 5005 // 401: before nbf
	subStatusAadTokenExpired               = 5006 // 401: at or after exp
	subStatusAadTokenInvalidIssuer         = 5007 // 401
	subStatusAadTokenInvalidAudience       = 5008 // 401
	subStatusAadTokenMissingObjectID       = 5011 // 401: no oid claim
	subStatusLocalAuthDisabled             = 5202 // 401: a master key on an account with local auth disabled
	subStatusRbacOperationNotSupported     = 5300 // 403: a management operation
	subStatusRbacUnauthorizedMetadata      = 5301 // 403: no readMetadata
	subStatusRbacUnauthorizedNameBasedData = 5302 // 403: no data action for the request
)

// Parts of the service's Entra ID error messages.
const (
	authBlockedPrefix = "Request blocked by Auth " + accountName + " : "
	entraDateLayout   = "1/2/2006 3:04:05 PM" // .NET's invariant DateTime, as the service's messages print it
	entraLearnMore    = "Learn more: https://aka.ms/cosmos-native-rbac."
)

// entraIdentity is who a valid token speaks for.
type entraIdentity struct {
	principal string // oid
}

// authenticateEntra checks an Entra ID token the way the service does, in
// the order format, signature, issuer, validity window, audience, object
// id, and answers each failure with the service's 401 and substatus. Times
// are the account's clock, which the issuer also mints with.
func (e *Emulator) authenticateEntra(rc *requestContext, token string) (entraIdentity, *svcError) {
	if e.entra == nil {
		return entraIdentity{}, entraError(http.StatusUnauthorized, subStatusAadAuthDisabled,
			"This emulator does not accept AAD tokens; start it with Entra ID enabled (Options.Entra, `rekey emulator --entra`) or sign with the master key.")
	}
	var claims entraClaims
	parser := jwt.NewParser(jwt.WithValidMethods([]string{jwt.SigningMethodRS256.Alg()}), jwt.WithoutClaimsValidation())
	_, err := parser.ParseWithClaims(token, &claims, func(t *jwt.Token) (any, error) {
		if kid, _ := t.Header["kid"].(string); kid != e.entra.keyID {
			return nil, fmt.Errorf("signing key %q is not one of the issuer's", kid)
		}
		return &e.entra.key.PublicKey, nil
	})
	switch {
	case err == nil:
	case errors.Is(err, jwt.ErrTokenMalformed):
		return entraIdentity{}, entraError(http.StatusUnauthorized, subStatusAadTokenInvalidFormat,
			authBlockedPrefix+"The provided AAD token is not a well-formed JWT: %v.", err)
	default: // unknown key, wrong algorithm, signature mismatch
		return entraIdentity{}, entraError(http.StatusUnauthorized, subStatusAadTokenInvalidSignature,
			authBlockedPrefix+"The signature of the provided AAD token could not be validated: %v.", err)
	}
	if claims.Issuer != e.entra.issuer {
		return entraIdentity{}, entraError(http.StatusUnauthorized, subStatusAadTokenInvalidIssuer,
			authBlockedPrefix+"Provided AAD token was issued by [%s]. This database account accepts tokens issued by [%s].", claims.Issuer, e.entra.issuer)
	}
	now := e.now()
	if claims.NotBefore != nil && now.Before(claims.NotBefore.Time) {
		return entraIdentity{}, entraError(http.StatusUnauthorized, subStatusAadTokenNotYetValid,
			authBlockedPrefix+"Provided AAD token is not valid before [%s]. Current server time is [%s].", entraTime(claims.NotBefore.Time), entraTime(now))
	}
	if claims.ExpiresAt == nil || !now.Before(claims.ExpiresAt.Time) {
		since := "the start"
		if claims.ExpiresAt != nil {
			since = entraTime(claims.ExpiresAt.Time)
		}
		return entraIdentity{}, entraError(http.StatusUnauthorized, subStatusAadTokenExpired,
			authBlockedPrefix+"Provided AAD token has been expired since [%s]. Current server time is [%s]. Please refresh the AAD token.", since, entraTime(now))
	}
	accepted := entraAudiences(rc)
	if !audienceAccepted(claims.Audience, accepted) {
		return entraIdentity{}, entraError(http.StatusUnauthorized, subStatusAadTokenInvalidAudience,
			"Provided AAD token is intended for [%s]. This database account accepts tokens intended for [%s].", strings.Join(claims.Audience, ", "), strings.Join(accepted, ", "))
	}
	if claims.ObjectID == "" {
		return entraIdentity{}, entraError(http.StatusUnauthorized, subStatusAadTokenMissingObjectID,
			authBlockedPrefix+"Provided AAD token has no object identifier (oid) claim.")
	}
	return entraIdentity{principal: claims.ObjectID}, nil
}

// entraAudiences lists the audiences the account accepts: its endpoint as
// the client addressed it (scheme and host, no port or path, as azcosmos
// and the other SDKs build the scope) and https://cosmos.azure.com, as the
// service lists them in its 5008 message.
func entraAudiences(rc *requestContext) []string {
	scheme := "http"
	if rc.r.TLS != nil {
		scheme = "https"
	}
	host := rc.r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h // without brackets, as url.URL.Hostname gives an IPv6 literal
	}
	return []string{scheme + "://" + host, entraCosmosAudience}
}

func audienceAccepted(aud jwt.ClaimStrings, accepted []string) bool {
	for _, a := range aud {
		for _, ok := range accepted {
			if strings.EqualFold(a, ok) {
				return true
			}
		}
	}
	return false
}

// entraTime formats t as the service's AAD messages do, in UTC.
func entraTime(t time.Time) string { return t.UTC().Format(entraDateLayout) + " (UTC)" }

func entraError(status, subStatus int, format string, args ...any) *svcError {
	e := newError(status, format, args...)
	e.subStatus = subStatus
	return e
}
