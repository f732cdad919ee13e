package emulator

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// maxClockSkew is how far a request's x-ms-date may be from the emulator's
// clock, as the service allows.
const maxClockSkew = 15 * time.Minute

// authorize authenticates a request by its Authorization header, a
// URL-encoded "type=...&ver=1.0&sig=..." (https://learn.microsoft.com/rest/api/cosmos-db/access-control-on-cosmosdb-resources):
// a master-key signature (type=master), unless SetLocalAuthDisabled
// refuses those, or with Options.Entra an Entra ID token (type=aad), which
// must also be authorized by the principal's role (rbac.go).
func (e *Emulator) authorize(rc *requestContext) *svcError {
	header := rc.header("Authorization")
	if header == "" {
		return newError(http.StatusUnauthorized, "Required Header authorization is missing. Ensure a valid Authorization token is passed.")
	}
	token, err := url.QueryUnescape(header)
	if err != nil {
		return newError(http.StatusUnauthorized, "The authorization token is not a valid URL-encoded value.")
	}
	fields := map[string]string{}
	for _, part := range strings.Split(token, "&") {
		k, v, _ := strings.Cut(part, "=")
		fields[strings.ToLower(k)] = v
	}
	switch strings.ToLower(fields["type"]) {
	case "master":
		if e.localAuthDisabled.Load() {
			return entraError(http.StatusUnauthorized, subStatusLocalAuthDisabled, "Local Authorization is disabled. Use an AAD token to authorize all requests.")
		}
		return e.checkMasterKey(rc, fields["sig"])
	case "aad":
		who, err := e.authenticateEntra(rc, fields["sig"])
		if err != nil {
			return err
		}
		return e.authorizeEntra(rc, who)
	default:
		return newError(http.StatusUnauthorized, "The authorization token type %q is not supported by this emulator; use the master key or, with Entra ID enabled, an AAD token.", fields["type"])
	}
}

// checkMasterKey checks a master-key signature: HMAC-SHA256 over verb,
// resource type, resource link and date, keyed with the account key.
func (e *Emulator) checkMasterKey(rc *requestContext, signature string) *svcError {
	sig, err := base64.StdEncoding.DecodeString(signature)
	if err != nil || len(sig) == 0 {
		return newError(http.StatusUnauthorized, "The authorization signature is missing or not base64.")
	}
	date := rc.header("x-ms-date")
	if date == "" {
		date = rc.header("Date")
	}
	when, err := parseHTTPDate(date)
	if err != nil {
		return newError(http.StatusUnauthorized, "The x-ms-date header %q is missing or invalid.", date)
	}
	if skew := time.Since(when); skew > maxClockSkew || skew < -maxClockSkew {
		return newError(http.StatusForbidden, "The authorization token is not valid at the current time. Please create another token and retry (token start time: %s, current time: %s).", date, time.Now().UTC().Format(http.TimeFormat))
	}
	payload := strings.ToLower(rc.r.Method) + "\n" + strings.ToLower(rc.resType) + "\n" + rc.link + "\n" + strings.ToLower(date) + "\n\n"
	mac := hmac.New(sha256.New, e.key)
	mac.Write([]byte(payload))
	if !hmac.Equal(mac.Sum(nil), sig) {
		return newError(http.StatusUnauthorized, "The input authorization token can't serve the request. The wrong key is being used or the expected payload is not built as per the protocol. For more info: https://aka.ms/cosmosdb-tsg-401. Server used the following payload to sign: '%s'", strings.ReplaceAll(payload, "\n", `\n`))
	}
	return nil
}
