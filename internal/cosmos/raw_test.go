package cosmos

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/rekey-dev/rekey/internal/emulator/emulatortest"
	"github.com/rekey-dev/rekey/migrate"
)

// TestMasterKeyAuthorizationDocExample signs the example of Microsoft's
// "Access control in the Azure Cosmos DB SQL API" page and must produce its
// output authorization string.
func TestMasterKeyAuthorizationDocExample(t *testing.T) {
	const (
		docKey  = "dsZQi3KtZmCv1ljt3VNWNm7sQUF1y5rJfC6kv5JiwvW0EndXdDku/dkKBp8/ufDToSxLzR4y+O/0H/t4bQtVNw=="
		docWant = "type%3dmaster%26ver%3d1.0%26sig%3dc09PEVJrgp2uQRkr934kFbTqhByc7TVr3OHyqlu%2bc%2bc%3d"
	)
	key, err := base64.StdEncoding.DecodeString(docKey)
	if err != nil {
		t.Fatal(err)
	}
	got := masterKeyAuthorization(key, "GET", "dbs", "dbs/ToDoList", "Thu, 27 Apr 2017 00:51:12 GMT")
	// The page writes the percent-escapes in lower case, Go in upper case:
	// compare the decoded strings.
	gotText, err1 := url.QueryUnescape(got)
	wantText, err2 := url.QueryUnescape(docWant)
	if err1 != nil || err2 != nil || gotText != wantText {
		t.Fatalf("authorization = %s (%s), want %s", got, gotText, wantText)
	}
	// Verb, resource type and date are signed lower-cased; the link as is.
	if masterKeyAuthorization(key, "get", "DBS", "dbs/ToDoList", "thu, 27 apr 2017 00:51:12 gmt") != got {
		t.Error("the signature depends on the case of verb, type or date")
	}
	if masterKeyAuthorization(key, "GET", "dbs", "dbs/todolist", "Thu, 27 Apr 2017 00:51:12 GMT") == got {
		t.Error("the signature ignores the case of the resource link")
	}
}

// TestRawRequestsLookLikeTheSDKs compares the raw pipeline's read of the
// partition key ranges with azcosmos's own read of them: the same version,
// user agent, priority, capabilities and date format, a master-key
// signature the emulator accepts, and a fresh activity id.
func TestRawRequestsLookLikeTheSDKs(t *testing.T) {
	srv := emulatortest.Start(t)
	client, rec := recordingClient(t, srv, nil, nil)
	if err := client.CreateContainer(tctx(t), testDB, "c", migrate.Definition{Paths: []string{"/pk"}}, 400, 0); err != nil {
		t.Fatal(err)
	}
	c := client.Container(testDB, "c")
	if _, err := c.PartitionKeyRanges(tctx(t)); err != nil {
		t.Fatalf("raw read of the ranges: %v", err)
	}
	raw, _ := rec.last("/pkranges")
	if _, err := c.FeedRanges(tctx(t)); err != nil {
		t.Fatal(err)
	}
	sdk, ok := rec.last("/pkranges")
	if !ok || raw == nil {
		t.Fatal("no pkranges request recorded")
	}
	for _, h := range []string{"x-ms-version", "User-Agent", "x-ms-cosmos-priority-level", "x-ms-cosmos-sdk-supportedcapabilities", "A-IM", "x-ms-max-item-count"} {
		if raw.Get(h) != sdk.Get(h) || raw.Get(h) == "" {
			t.Errorf("%s: raw %q, SDK %q", h, raw.Get(h), sdk.Get(h))
		}
	}
	if _, err := time.Parse(http.TimeFormat, raw.Get("x-ms-date")); err != nil {
		t.Errorf("x-ms-date %q: %v", raw.Get("x-ms-date"), err)
	}
	if !strings.HasPrefix(raw.Get("Authorization"), "type%3Dmaster%26ver%3D1.0%26sig%3D") {
		t.Errorf("authorization %q, want a URL-encoded master-key token", raw.Get("Authorization"))
	}
	uuidRE := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	if id := raw.Get("x-ms-activity-id"); !uuidRE.MatchString(id) || id == sdk.Get("x-ms-activity-id") {
		t.Errorf("activity id %q: want a fresh UUID", id)
	}
	if !strings.HasPrefix(raw.Get("User-Agent"), "rekey azsdk-go-azcosmos/v1.5.0 ") {
		t.Errorf("user agent %q", raw.Get("User-Agent"))
	}
}

// tokenRecorder is a TokenCredential that records the scopes it is asked
// for and hands out tokens from next.
type tokenRecorder struct {
	mu     sync.Mutex
	scopes [][]string
	next   func() (azcore.AccessToken, error)
}

func (r *tokenRecorder) GetToken(_ context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	r.mu.Lock()
	r.scopes = append(r.scopes, o.Scopes)
	r.mu.Unlock()
	return r.next()
}

func (r *tokenRecorder) calls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.scopes)
}

// TestRawRequestsCarryTheEntraToken: with Entra ID the raw pipeline asks
// for the account scope and sends "type=aad&ver=1.0&sig=<token>" as
// azcosmos does, reusing the token; the token never shows in errors.
//
// The emulator accepts master keys only, so the request is refused with
// 401; what is checked is what went out.
func TestRawRequestsCarryTheEntraToken(t *testing.T) {
	srv := emulatortest.Start(t)
	cred := &tokenRecorder{next: func() (azcore.AccessToken, error) {
		return azcore.AccessToken{Token: "secret-entra-token", ExpiresOn: time.Now().Add(time.Hour)}, nil
	}}
	client, rec := recordingClient(t, srv, nil, func(cfg *Config) {
		cfg.AccountKey = ""
		cfg.Credential = cred
	})
	c := client.Container(testDB, "c")
	for range 2 {
		_, err := c.PartitionKeyRanges(tctx(t))
		if !errors.Is(err, migrate.ErrUnauthorized) {
			t.Fatalf("raw request with an Entra token = %v, want ErrUnauthorized from the emulator", err)
		}
		if strings.Contains(err.Error(), "secret-entra-token") {
			t.Errorf("error leaks the token: %v", err)
		}
	}
	h, _ := rec.last("/pkranges")
	if got := h.Get("Authorization"); got != "type=aad&ver=1.0&sig=secret-entra-token" {
		t.Errorf("authorization %q", got)
	}
	u, _ := url.Parse(srv.Endpoint())
	want := "https://" + u.Hostname() + "/.default"
	if cred.calls() != 1 || len(cred.scopes[0]) != 1 || cred.scopes[0][0] != want {
		t.Errorf("token requests %v, want one for %s", cred.scopes, want)
	}
}

// TestEntraTokenRenewal drives the token cache on a controlled clock:
// renewed five minutes before expiry or at RefreshOn, kept while a renewal
// fails and it has not expired, an error after.
func TestEntraTokenRenewal(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	clock := t0
	n := 0
	var fail error
	cred := &tokenRecorder{next: func() (azcore.AccessToken, error) {
		if fail != nil {
			return azcore.AccessToken{}, fail
		}
		n++
		tok := azcore.AccessToken{Token: "t" + string(rune('0'+n)), ExpiresOn: clock.Add(time.Hour)}
		if n == 2 {
			tok.RefreshOn = clock.Add(10 * time.Minute)
		}
		return tok, nil
	}}
	p := newEntraPolicy(cred, &url.URL{Scheme: "https", Host: "acct.documents.azure.com:443"})
	p.now = func() time.Time { return clock }
	get := func() (string, error) { return p.get(tctx(t)) }

	steps := []struct {
		at      time.Duration
		fail    error
		want    string
		wantErr bool
	}{
		{0, nil, "t1", false},
		{54 * time.Minute, nil, "t1", false},                                   // 6 min left: cached
		{56 * time.Minute, nil, "t2", false},                                   // 4 min left: renewed
		{56*time.Minute + 9*time.Minute, nil, "t2", false},                     // before RefreshOn
		{56*time.Minute + 10*time.Minute, nil, "t3", false},                    // at RefreshOn
		{56*time.Minute + 64*time.Minute, errors.New("idp down"), "t3", false}, // due, not expired
		{56*time.Minute + 70*time.Minute, errors.New("idp down"), "", true},    // expired
	}
	for _, s := range steps {
		clock, fail = t0.Add(s.at), s.fail
		got, err := get()
		if (err != nil) != s.wantErr || got != s.want {
			t.Fatalf("at +%v: token %q, err %v; want %q (error %t)", s.at, got, err, s.want, s.wantErr)
		}
	}
	if s := cred.scopes[0]; len(s) != 1 || s[0] != "https://acct.documents.azure.com/.default" {
		t.Errorf("scope %v", s)
	}
}

func TestRawRequestWithAWrongKeyIsUnauthorizedWithoutLeakingIt(t *testing.T) {
	srv := emulatortest.Start(t)
	client := newTestClient(t, srv, func(cfg *Config) { cfg.AccountKey = secretKey })
	_, err := client.Container(testDB, "c").PartitionKeyRanges(tctx(t))
	var re *migrate.RequestError
	if !errors.As(err, &re) || re.Status != http.StatusUnauthorized || re.ActivityID == "" {
		t.Fatalf("err = %v, want a 401 RequestError with an activity id", err)
	}
	if strings.Contains(err.Error(), secretKey) {
		t.Errorf("error leaks the key: %v", err)
	}
}

// TestUserAgentNamesTheLinkedSDK keeps sdkVersion, which the raw requests'
// User-Agent carries, equal to the azcosmos version go.mod requires.
func TestUserAgentNamesTheLinkedSDK(t *testing.T) {
	mod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*github\.com/Azure/azure-sdk-for-go/sdk/data/azcosmos (\S+)`).FindSubmatch(mod)
	if m == nil {
		t.Fatal("go.mod does not require azcosmos")
	}
	if string(m[1]) != sdkVersion {
		t.Fatalf("go.mod requires azcosmos %s, the raw pipeline claims %s", m[1], sdkVersion)
	}
}
