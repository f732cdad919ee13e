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

// authorize checks the master-key signature of a request: HMAC-SHA256 over
// verb, resource type, resource link and date, keyed with the account key
// (https://learn.microsoft.com/rest/api/cosmos-db/access-control-on-cosmosdb-resources).
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
	if !strings.EqualFold(fields["type"], "master") {
		return newError(http.StatusUnauthorized, "The authorization token type %q is not supported by this emulator; use the master key.", fields["type"])
	}
	sig, err := base64.StdEncoding.DecodeString(fields["sig"])
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
