package emulator_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"

	"github.com/rekey-dev/rekey/internal/emulator/emulatortest"
)

func TestAccountLocationsPointAtEndpoint(t *testing.T) {
	for _, plain := range []bool{false, true} {
		name := "tls"
		var opts []emulatortest.Option
		if plain {
			name = "plain-http"
			opts = append(opts, emulatortest.WithPlainHTTP())
		}
		t.Run(name, func(t *testing.T) {
			srv := emulatortest.Start(t, opts...)
			wantScheme := "https://"
			if plain {
				wantScheme = "http://"
			}
			if !strings.HasPrefix(srv.Endpoint(), wantScheme) {
				t.Fatalf("endpoint %q, want scheme %s", srv.Endpoint(), wantScheme)
			}
			resp := rawDo(t, srv, http.MethodGet, "/", nil, nil)
			if resp.status != http.StatusOK {
				t.Fatalf("GET /: %d %s", resp.status, resp.body)
			}
			var acct struct {
				Writable []struct{ DatabaseAccountEndpoint string } `json:"writableLocations"`
				Readable []struct{ DatabaseAccountEndpoint string } `json:"readableLocations"`
			}
			if err := json.Unmarshal(resp.body, &acct); err != nil {
				t.Fatal(err)
			}
			if len(acct.Writable) != 1 || len(acct.Readable) != 1 {
				t.Fatalf("locations: %s", resp.body)
			}
			for _, ep := range []string{acct.Writable[0].DatabaseAccountEndpoint, acct.Readable[0].DatabaseAccountEndpoint} {
				if ep != srv.Endpoint() {
					t.Errorf("location endpoint %q, want %q", ep, srv.Endpoint())
				}
			}

			// The SDK follows those locations: a full round trip works.
			client := newClient(t, srv, nil)
			ctx := context.Background()
			if _, err := client.CreateDatabase(ctx, azcosmos.DatabaseProperties{ID: "d"}, nil); err != nil {
				t.Fatal(err)
			}
			db, _ := client.NewDatabase("d")
			if _, err := db.CreateContainer(ctx, azcosmos.ContainerProperties{ID: "c", PartitionKeyDefinition: azcosmos.PartitionKeyDefinition{Paths: []string{"/pk"}}}, nil); err != nil {
				t.Fatal(err)
			}
			c, _ := db.NewContainer("c")
			upsert(t, c, "a", doc{"id": "1", "pk": "a"})
			got, err := c.ReadItem(ctx, azcosmos.NewPartitionKeyString("a"), "1", nil)
			if err != nil || decodeDoc(t, got.Value)["pk"] != "a" {
				t.Fatalf("read back: %v", err)
			}
		})
	}
}

func TestAuthorization(t *testing.T) {
	srv := emulatortest.Start(t)
	ctx := context.Background()

	t.Run("wrong key", func(t *testing.T) {
		key := make([]byte, 64)
		_, _ = rand.Read(key)
		cred, _ := azcosmos.NewKeyCredential(base64.StdEncoding.EncodeToString(key))
		client, err := azcosmos.NewClientWithKey(srv.Endpoint(), cred, &azcosmos.ClientOptions{ClientOptions: clientOptions(t, srv)})
		if err != nil {
			t.Fatal(err)
		}
		_, err = client.CreateDatabase(ctx, azcosmos.DatabaseProperties{ID: "x"}, nil)
		body := wantStatus(t, err, http.StatusUnauthorized)
		if !strings.Contains(body.Message, "authorization token can't serve the request") {
			t.Errorf("message %q", body.Message)
		}
	})

	t.Run("stale date", func(t *testing.T) {
		client := newClient(t, srv, func(o *azcosmos.ClientOptions) {
			o.PerCallPolicies = append(o.PerCallPolicies, dateSetter(time.Now().Add(-20*time.Minute)))
		})
		_, err := client.CreateDatabase(ctx, azcosmos.DatabaseProperties{ID: "x"}, nil)
		body := wantStatus(t, err, http.StatusForbidden)
		if !strings.Contains(body.Message, "not valid at the current time") {
			t.Errorf("message %q", body.Message)
		}
	})

	t.Run("date within skew", func(t *testing.T) {
		client := newClient(t, srv, func(o *azcosmos.ClientOptions) {
			o.PerCallPolicies = append(o.PerCallPolicies, dateSetter(time.Now().Add(-5*time.Minute)))
		})
		if _, err := client.CreateDatabase(ctx, azcosmos.DatabaseProperties{ID: "skewed"}, nil); err != nil {
			t.Fatalf("a five-minute skew is allowed: %v", err)
		}
	})

	for _, tc := range []struct {
		name   string
		header map[string]string
	}{
		{"missing", map[string]string{}},
		{"resource token", map[string]string{"Authorization": "type%3Dresource%26ver%3D1.0%26sig%3Dabc"}},
		{"signature not base64", map[string]string{"Authorization": "type%3Dmaster%26ver%3D1.0%26sig%3D%25%25"}},
		{"bad date", map[string]string{"Authorization": "type%3Dmaster%26ver%3D1.0%26sig%3DYWJj", "x-ms-date": "yesterday"}},
	} {
		t.Run("raw "+tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, srv.Endpoint()+"dbs", nil)
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			hc := srv.HTTPClient()
			defer hc.CloseIdleConnections()
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var eb errorBody
			if resp.StatusCode != http.StatusUnauthorized || json.NewDecoder(resp.Body).Decode(&eb) != nil || eb.Code != "Unauthorized" {
				t.Fatalf("got %d %+v, want 401 Unauthorized", resp.StatusCode, eb)
			}
		})
	}
}

// dateSetter is a pipeline policy that sends every request with x-ms-date
// set to when; the SDK signs the date it finds.
type dateSetter time.Time

func (d dateSetter) Do(req *policy.Request) (*http.Response, error) {
	req.Raw().Header.Set("x-ms-date", time.Time(d).UTC().Format(http.TimeFormat))
	return req.Next()
}

func TestTwoEmulatorsAreIndependent(t *testing.T) {
	key := make([]byte, 64)
	_, _ = rand.Read(key)
	a := newEnv(t)
	b := newEnv(t, emulatortest.WithKey(base64.StdEncoding.EncodeToString(key)))
	if a.srv.Endpoint() == b.srv.Endpoint() {
		t.Fatal("two emulators share an endpoint")
	}
	ca := a.container(t, "c", 0)
	cb := b.container(t, "c", 0) // the same names in both: no conflict
	ctx := context.Background()
	upsert(t, ca, "p", doc{"id": "only-in-a", "pk": "p"})
	_, err := cb.ReadItem(ctx, azcosmos.NewPartitionKeyString("p"), "only-in-a", nil)
	wantStatus(t, err, http.StatusNotFound)

	// Each account has its own key: a client of a, given b's endpoint, is refused.
	cred, _ := azcosmos.NewKeyCredential(a.srv.Key())
	cross, err := azcosmos.NewClientWithKey(b.srv.Endpoint(), cred, &azcosmos.ClientOptions{ClientOptions: clientOptions(t, b.srv)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = cross.CreateDatabase(ctx, azcosmos.DatabaseProperties{ID: "x"}, nil)
	wantStatus(t, err, http.StatusUnauthorized)

	// Deleting a's database leaves b's alone.
	if _, err := a.db.Delete(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := b.db.Read(ctx, nil); err != nil {
		t.Fatalf("b's database after deleting a's: %v", err)
	}
}
