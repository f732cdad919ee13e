package emulator

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestEntraTokenWithoutObjectID: a token that names no principal (no oid
// claim) is refused with 401 substatus 5011. EntraIssuer.Mint always sets
// one, so the test signs the claims itself.
func TestEntraTokenWithoutObjectID(t *testing.T) {
	e, err := New(Options{Entra: true})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tok, err := e.entra.sign(entraClaims{RegisteredClaims: jwt.RegisteredClaims{
		Issuer:    e.entra.issuer,
		Audience:  jwt.ClaimStrings{"http://127.0.0.1"},
		NotBefore: jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)),
	}})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1:8081/", nil)
	req.Header.Set("Authorization", "type=aad&ver=1.0&sig="+tok)
	w := httptest.NewRecorder()
	e.ServeHTTP(w, req)
	if w.Code != http.StatusUnauthorized || w.Header().Get("x-ms-substatus") != "5011" || !strings.Contains(w.Body.String(), "no object identifier (oid) claim") {
		t.Errorf("token without oid: %d %s %s", w.Code, w.Header().Get("x-ms-substatus"), w.Body)
	}
}
