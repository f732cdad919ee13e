package emulator_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"

	"github.com/rekey-dev/rekey/internal/emulator"
	"github.com/rekey-dev/rekey/internal/emulator/emulatortest"
)

// entraClient returns an azcosmos client of srv authenticated by cred, the
// way an application uses Entra ID (azcosmos.NewClient); o, when set,
// adjusts the options.
func entraClient(t *testing.T, srv *emulator.Server, cred azcore.TokenCredential, o func(*azcosmos.ClientOptions)) *azcosmos.Client {
	t.Helper()
	opts := &azcosmos.ClientOptions{ClientOptions: clientOptions(t, srv)}
	opts.Retry.MaxRetries = -1
	if o != nil {
		o(opts)
	}
	client, err := azcosmos.NewClient(srv.Endpoint(), cred, opts)
	if err != nil {
		t.Fatalf("new entra client: %v", err)
	}
	return client
}

// entraContainer returns the container client of coll in the test database.
func entraContainer(t *testing.T, client *azcosmos.Client, coll string) *azcosmos.ContainerClient {
	t.Helper()
	c, err := client.NewContainer(testDB, coll)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// aadDo sends a request authorized by an Entra ID token, as azcosmos and
// rekey's raw pipeline write the header (not URL-encoded).
func aadDo(t *testing.T, srv *emulator.Server, token, method, path string, header map[string]string, body []byte) rawResponse {
	t.Helper()
	return rawDoAuth(t, srv, method, path, header, body, func(req *http.Request) {
		req.Header.Set("x-ms-date", time.Now().UTC().Format(http.TimeFormat))
		req.Header.Set("Authorization", "type=aad&ver=1.0&sig="+token)
	})
}

// wantAuthError checks a raw answer's status, substatus and message.
func wantAuthError(t *testing.T, res rawResponse, status, subStatus int, message string) {
	t.Helper()
	if res.status != status || res.header.Get("x-ms-substatus") != strconv.Itoa(subStatus) {
		t.Fatalf("status %d substatus %q, want %d/%d: %s", res.status, res.header.Get("x-ms-substatus"), status, subStatus, res.body)
	}
	if eb := checkErrorBody(t, status, res.body); !strings.Contains(eb.Message, message) {
		t.Errorf("message %q, want it to contain %q", eb.Message, message)
	}
}

// audience is the account's audience as azcosmos asks for it: the
// endpoint's scheme and host, without the port.
func audience(t *testing.T, srv *emulator.Server) string {
	t.Helper()
	u, err := url.Parse(srv.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	return u.Scheme + "://" + u.Hostname()
}

// TestEntraSDKClient: azcosmos.NewClient with a token credential reads and
// writes items, queries and reads the change feed, beside a master-key
// client of the same account; management operations are refused with 403
// substatus 5300, as the service refuses them to any AAD token.
func TestEntraSDKClient(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulatortest.WithEntra())
	e.container(t, "c", 0) // management stays with the key
	cred := e.srv.Entra().Credential("")
	client := entraClient(t, e.srv, cred, nil)
	c := entraContainer(t, client, "c")
	ctx := context.Background()
	pk := azcosmos.NewPartitionKeyString("a")
	if _, err := c.CreateItem(ctx, pk, mustJSON(t, doc{"id": "1", "pk": "a"}), nil); err != nil {
		t.Fatalf("create with an Entra token: %v", err)
	}
	if _, err := c.UpsertItem(ctx, pk, mustJSON(t, doc{"id": "1", "pk": "a", "v": 2}), nil); err != nil {
		t.Fatalf("upsert with an Entra token: %v", err)
	}
	read, err := c.ReadItem(ctx, pk, "1", nil)
	if err != nil || decodeDoc(t, read.Value)["v"] != 2.0 {
		t.Fatalf("read with an Entra token: %v", err)
	}
	if items := queryAll(t, c, "SELECT * FROM c", pk, nil); len(items) != 1 {
		t.Errorf("query with an Entra token: %d items", len(items))
	}
	if got := newFeedReader(t, c, azcosmos.ChangeFeedOptions{}).drain(); len(got) != 1 {
		t.Errorf("change feed with an Entra token: %d items", len(got))
	}
	batch := c.NewTransactionalBatch(pk)
	batch.CreateItem(mustJSON(t, doc{"id": "2", "pk": "a"}), nil)
	batch.DeleteItem("1", nil)
	if resp, err := c.ExecuteTransactionalBatch(ctx, batch, nil); err != nil || !resp.Success {
		t.Errorf("batch with an Entra token: %v", err)
	}
	if cred.Requests() == 0 {
		t.Error("the SDK never asked the credential for a token")
	}
	// The key client of the same account keeps working.
	upsert(t, e.container(t, "keyed", 0), "b", doc{"id": "k", "pk": "b"})

	db, _ := client.NewDatabase(testDB)
	_, err = db.CreateContainer(ctx, azcosmos.ContainerProperties{ID: "nope", PartitionKeyDefinition: azcosmos.PartitionKeyDefinition{Paths: []string{"/pk"}}}, nil)
	if eb := wantStatus(t, err, http.StatusForbidden); !strings.Contains(eb.Message, "The given request [POST /dbs/"+testDB+"/colls] cannot be authorized by AAD token in data plane") {
		t.Errorf("create container with a token: %q", eb.Message)
	}
	if _, err := c.ReadThroughput(ctx, nil); err == nil || responseError(t, err).StatusCode != http.StatusForbidden {
		t.Errorf("read throughput with a token: %v, want 403", err)
	}
	if _, err := c.Read(ctx, nil); err != nil {
		t.Errorf("read container (metadata) with a token: %v", err)
	}
}

// TestEntraSDKRefused: the SDK's answers for a token of the wrong audience
// (401, 5008), and for principals without the role the request needs (403:
// 5301 without readMetadata, 5302 without the data action).
func TestEntraSDKRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulatortest.WithEntra())
	e.container(t, "c", 0)
	upsert(t, e.container(t, "c2", 0), "a", doc{"id": "1", "pk": "a"})
	ctx := context.Background()
	pk := azcosmos.NewPartitionKeyString("a")

	other := entraClient(t, e.srv, e.srv.Entra().Credential(""), func(o *azcosmos.ClientOptions) {
		o.Cloud = cloud.Configuration{Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
			azcosmos.ServiceName: {Audience: "https://other.documents.azure.com"},
		}}
	})
	_, err := entraContainer(t, other, "c").ReadItem(ctx, pk, "1", nil)
	if eb := wantStatus(t, err, http.StatusUnauthorized); !strings.Contains(eb.Message, "Provided AAD token is intended for [https://other.documents.azure.com]. This database account accepts tokens intended for ["+audience(t, e.srv)+", https://cosmos.azure.com]") {
		t.Errorf("wrong audience: %q", eb.Message)
	}
	if re := responseError(t, err); re.RawResponse.Header.Get("x-ms-substatus") != "5008" {
		t.Errorf("wrong audience: substatus %q", re.RawResponse.Header.Get("x-ms-substatus"))
	}
	global := entraClient(t, e.srv, e.srv.Entra().Credential(""), func(o *azcosmos.ClientOptions) {
		o.Cloud = cloud.Configuration{Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
			azcosmos.ServiceName: {Audience: "https://cosmos.azure.com"},
		}}
	})
	if _, err := entraContainer(t, global, "c2").ReadItem(ctx, pk, "1", nil); err != nil {
		t.Errorf("the https://cosmos.azure.com audience: %v", err)
	}

	const nobody, reader = "11111111-0000-4000-8000-000000000000", "22222222-0000-4000-8000-000000000000"
	if err := e.srv.AssignEntraRole(reader, emulator.EntraDataReader); err != nil {
		t.Fatal(err)
	}
	_, err = entraContainer(t, entraClient(t, e.srv, e.srv.Entra().Credential(nobody), nil), "c2").ReadItem(ctx, pk, "1", nil)
	if eb := wantStatus(t, err, http.StatusForbidden); !strings.Contains(eb.Message, "principal ["+nobody+"] does not have required RBAC permissions to perform action [Microsoft.DocumentDB/databaseAccounts/readMetadata] on resource [/]") {
		t.Errorf("no role: %q", eb.Message)
	}
	rc := entraContainer(t, entraClient(t, e.srv, e.srv.Entra().Credential(reader), nil), "c2")
	if _, err := rc.ReadItem(ctx, pk, "1", nil); err != nil {
		t.Errorf("reader reads: %v", err)
	}
	_, err = rc.CreateItem(ctx, pk, mustJSON(t, doc{"id": "2", "pk": "a"}), nil)
	if eb := wantStatus(t, err, http.StatusForbidden); !strings.Contains(eb.Message, "perform action [Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers/items/create] on resource [dbs/"+testDB+"/colls/c2/]") {
		t.Errorf("reader creates: %q", eb.Message)
	}
	if re := responseError(t, err); re.RawResponse.Header.Get("x-ms-substatus") != "5302" {
		t.Errorf("reader creates: substatus %q, want 5302", re.RawResponse.Header.Get("x-ms-substatus"))
	}
	// Taking the role away takes effect on the next request.
	if err := e.srv.AssignEntraRole(reader, emulator.EntraNoRole); err != nil {
		t.Fatal(err)
	}
	if _, err := rc.ReadItem(ctx, pk, "1", nil); err == nil || responseError(t, err).StatusCode != http.StatusForbidden {
		t.Errorf("read after the role was removed: %v, want 403", err)
	}
}

// TestEntraRawBulk: a hand-built bulk request authorized by a token, as
// rekey's raw pipeline sends it, writes every operation; a reader's bulk
// write is refused whole.
func TestEntraRawBulk(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulatortest.WithEntra())
	e.container(t, "c", 0)
	path := "/dbs/" + testDB + "/colls/c/docs"
	tok, err := e.srv.Entra().Mint(emulator.EntraToken{Audience: audience(t, e.srv)})
	if err != nil {
		t.Fatal(err)
	}
	res := aadDo(t, e.srv, tok, http.MethodPost, path, bulkHeaders("0"), mustJSON(t, createOps(20, 4, "x", 10)))
	if res.status != http.StatusOK {
		t.Fatalf("bulk with a token: status %d %s", res.status, truncate(res.body))
	}
	var results []bulkResult
	if err := json.Unmarshal(res.body, &results); err != nil || statuses(results)[http.StatusCreated] != 20 {
		t.Fatalf("bulk results %v (%v), want 20 creates", statuses(results), err)
	}

	const reader = "33333333-0000-4000-8000-000000000000"
	if err := e.srv.AssignEntraRole(reader, emulator.EntraDataReader); err != nil {
		t.Fatal(err)
	}
	rtok, err := e.srv.Entra().Mint(emulator.EntraToken{Audience: audience(t, e.srv), Principal: reader})
	if err != nil {
		t.Fatal(err)
	}
	ops := []map[string]any{
		{"operationType": "Read", "id": "x0", "partitionKey": `["pk0"]`},
		{"operationType": "Upsert", "partitionKey": `["pk0"]`, "resourceBody": doc{"id": "x0", "pk": "pk0"}},
	}
	wantAuthError(t, aadDo(t, e.srv, rtok, http.MethodPost, path, bulkHeaders("0"), mustJSON(t, ops)), http.StatusForbidden, 5302,
		"perform action [Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers/items/upsert]")
	res = aadDo(t, e.srv, rtok, http.MethodPost, path, bulkHeaders("0"), mustJSON(t, ops[:1]))
	if res.status != http.StatusOK {
		t.Errorf("reader's bulk read: status %d %s", res.status, truncate(res.body))
	}
}

// TestEntraRejectsBadTokens: each way a token can be wrong gets the
// service's 401 and substatus; the account's master key keeps working.
func TestEntraRejectsBadTokens(t *testing.T) {
	t.Parallel()
	clk := newManualClock()
	e := newEnv(t, emulatortest.WithEntra(), emulatortest.WithClock(clk.Now))
	e.container(t, "c", 0)
	issuer := e.srv.Entra()
	aud := audience(t, e.srv)
	mint := func(tok emulator.EntraToken) string {
		t.Helper()
		s, err := issuer.Mint(tok)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	good := mint(emulator.EntraToken{Audience: aud})
	// The good token's claims with another principal, under its signature.
	parts := strings.Split(good, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	claims := base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(payload), emulator.EntraPrincipal, "44444444-0000-4000-8000-000000000000", 1)))
	stranger := newEnv(t, emulatortest.WithEntra()).srv.Entra()
	foreign, err := stranger.Mint(emulator.EntraToken{Audience: aud})
	if err != nil {
		t.Fatal(err)
	}
	now := clk.Now()
	for _, tc := range []struct {
		name      string
		token     string
		subStatus int
		message   string
	}{
		{"not a JWT", "not-a-token", 5003, "is not a well-formed JWT"},
		{"payload altered", parts[0] + "." + claims + "." + parts[2], 5004, "could not be validated"},
		{"another issuer's key", foreign, 5004, "could not be validated"},
		{"untrusted issuer", mint(emulator.EntraToken{Audience: aud, Issuer: "https://sts.windows.net/elsewhere/"}), 5007, "was issued by [https://sts.windows.net/elsewhere/]"},
		{"expired", mint(emulator.EntraToken{Audience: aud, NotBefore: now.Add(-2 * time.Hour), ExpiresOn: now.Add(-time.Hour)}), 5006,
			"Provided AAD token has been expired since [11/14/2023 9:13:20 PM (UTC)]. Current server time is [11/14/2023 10:13:20 PM (UTC)]. Please refresh the AAD token."},
		{"not yet valid", mint(emulator.EntraToken{Audience: aud, NotBefore: now.Add(time.Minute)}), 5005, "is not valid before"},
		{"wrong audience", mint(emulator.EntraToken{Audience: "https://127.0.0.2"}), 5008, "intended for [https://127.0.0.2]"},
	} {
		res := aadDo(t, e.srv, tc.token, http.MethodGet, "/dbs/"+testDB+"/colls/c", nil, nil)
		t.Run(tc.name, func(t *testing.T) { wantAuthError(t, res, http.StatusUnauthorized, tc.subStatus, tc.message) })
	}
	if res := aadDo(t, e.srv, good, http.MethodGet, "/dbs/"+testDB+"/colls/c", nil, nil); res.status != http.StatusOK {
		t.Errorf("the good token: status %d %s", res.status, res.body)
	}
	// A token expires on the account's clock.
	clk.Advance(emulator.EntraTokenLifetime)
	wantAuthError(t, aadDo(t, e.srv, good, http.MethodGet, "/dbs/"+testDB+"/colls/c", nil, nil), http.StatusUnauthorized, 5006, "has been expired since")
	if res := rawDo(t, e.srv, http.MethodGet, "/dbs/"+testDB+"/colls/c", nil, nil); res.status != http.StatusOK {
		t.Errorf("master key beside Entra: status %d", res.status)
	}

	// Without Entra, the account refuses AAD tokens and role assignments.
	plain := newEnv(t)
	wantAuthError(t, aadDo(t, plain.srv, good, http.MethodGet, "/", nil, nil), http.StatusUnauthorized, 5002, "does not accept AAD tokens")
	if err := plain.srv.AssignEntraRole(emulator.EntraPrincipal, emulator.EntraDataReader); err == nil {
		t.Error("AssignEntraRole without Entra: no error")
	}
}

// TestEntraLocalAuthDisabled: once local auth is disabled, master-key
// requests get 401 substatus 5202 and tokens still work; enabling it again
// restores the key.
func TestEntraLocalAuthDisabled(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulatortest.WithEntra())
	e.container(t, "c", 0)
	if err := e.srv.SetLocalAuthDisabled(true); err != nil {
		t.Fatal(err)
	}
	wantAuthError(t, rawDo(t, e.srv, http.MethodGet, "/", nil, nil), http.StatusUnauthorized, 5202,
		"Local Authorization is disabled. Use an AAD token to authorize all requests.")
	c := entraContainer(t, entraClient(t, e.srv, e.srv.Entra().Credential(""), nil), "c")
	pk := azcosmos.NewPartitionKeyString("a")
	if _, err := c.UpsertItem(context.Background(), pk, mustJSON(t, doc{"id": "1", "pk": "a"}), nil); err != nil {
		t.Errorf("upsert with a token, local auth off: %v", err)
	}
	if err := e.srv.SetLocalAuthDisabled(false); err != nil {
		t.Fatal(err)
	}
	if res := rawDo(t, e.srv, http.MethodGet, "/dbs/"+testDB+"/colls/c/docs/1", map[string]string{"x-ms-documentdb-partitionkey": `["a"]`}, nil); res.status != http.StatusOK {
		t.Errorf("key after local auth is back: status %d", res.status)
	}
	if err := newEnv(t).srv.SetLocalAuthDisabled(true); err == nil {
		t.Error("disabling local auth without Entra: no error")
	}
}
