package cosmos

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/rekey-dev/rekey/internal/emulator/emulatortest"
	"github.com/rekey-dev/rekey/migrate"
)

func TestAuthAccountKey(t *testing.T) {
	e := newEnv(t)
	if err := e.client.Ping(tctx(t)); err != nil {
		t.Fatalf("ping: %v", err)
	}
	c := e.container(t, "c", 400)
	mustCreate(t, c, key("p"), itemBody(t, "1", "p", 1))
}

func TestAuthConnectionString(t *testing.T) {
	srv := emulatortest.Start(t)
	client := newTestClient(t, srv, func(cfg *Config) {
		cfg.Endpoint, cfg.AccountKey = "", ""
		cfg.ConnectionString = srv.ConnectionString()
	})
	if err := client.Ping(tctx(t)); err != nil {
		t.Fatalf("ping: %v", err)
	}
	if got, want := client.Endpoint(), srv.Endpoint(); got != want {
		t.Errorf("Endpoint = %s, want %s", got, want)
	}
	if strings.Contains(client.String(), srv.Key()) {
		t.Errorf("String leaks the key: %s", client)
	}
}

func TestAuthEntraIDConstructs(t *testing.T) {
	// DefaultAzureCredential is built without contacting anything; tokens
	// are fetched on the first request.
	c, err := NewClient(context.Background(), Config{Endpoint: "https://acct.documents.azure.com:443/"})
	if err != nil {
		t.Fatalf("NewClient with Entra ID: %v", err)
	}
	c.Close()
}

// fakeCredential hands out a fixed token.
type fakeCredential struct{ calls atomic.Int32 }

func (f *fakeCredential) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	f.calls.Add(1)
	return azcore.AccessToken{Token: "secret-entra-token", ExpiresOn: time.Now().Add(time.Hour)}, nil
}

func TestAuthEntraIDSendsBearerToken(t *testing.T) {
	srv := emulatortest.Start(t)
	cred := &fakeCredential{}
	client, rec := recordingClient(t, srv, nil, func(cfg *Config) {
		cfg.AccountKey = ""
		cfg.Credential = cred
	})
	// The emulator accepts only master keys, so the request is refused,
	// but it went out with the Entra token.
	err := client.Ping(tctx(t))
	if !errors.Is(err, migrate.ErrUnauthorized) {
		t.Fatalf("ping with an Entra token against the emulator = %v, want ErrUnauthorized", err)
	}
	if cred.calls.Load() == 0 {
		t.Error("the credential was never asked for a token")
	}
	var sawAAD bool
	for _, h := range rec.seen() {
		a := h.Get("Authorization")
		sawAAD = sawAAD || strings.HasPrefix(a, "type=aad") || strings.HasPrefix(a, "type%3Daad")
	}
	if !sawAAD {
		t.Error("no request carried an AAD authorization header")
	}
	if strings.Contains(err.Error(), "secret-entra-token") {
		t.Errorf("error leaks the token: %v", err)
	}
}

func TestWrongKeyIsUnauthorizedWithoutLeakingIt(t *testing.T) {
	srv := emulatortest.Start(t)
	for name, mutate := range map[string]func(*Config){
		"key": func(cfg *Config) { cfg.AccountKey = secretKey },
		"connection string": func(cfg *Config) {
			cfg.Endpoint, cfg.AccountKey = "", ""
			cfg.ConnectionString = "AccountEndpoint=" + srv.Endpoint() + ";AccountKey=" + secretKey + ";"
		},
	} {
		t.Run(name, func(t *testing.T) {
			client := newTestClient(t, srv, mutate)
			for _, err := range []error{
				client.Ping(tctx(t)),
				func() error { _, err := client.Container("db", "c").Definition(tctx(t)); return err }(),
				client.CreateContainer(tctx(t), "db", "c", migrate.Definition{Paths: []string{"/pk"}}, 400, 0),
			} {
				if !errors.Is(err, migrate.ErrUnauthorized) {
					t.Fatalf("err = %v, want ErrUnauthorized", err)
				}
				var re *migrate.RequestError
				if !errors.As(err, &re) || re.Status != http.StatusUnauthorized || re.ActivityID == "" || re.Message == "" {
					t.Errorf("RequestError = %+v, want status 401 with activity and message", re)
				}
				if strings.Contains(err.Error(), secretKey) {
					t.Errorf("error leaks the key: %v", err)
				}
			}
		})
	}
}

func TestInsecureTrustsTheEmulatorOnLoopback(t *testing.T) {
	srv := emulatortest.Start(t)
	// The tuned transport, without the test's trusted pool: Insecure makes
	// the self-signed certificate acceptable.
	client, err := NewClient(context.Background(), Config{Endpoint: srv.Endpoint(), AccountKey: srv.Key(), Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	if err := client.Ping(tctx(t)); err != nil {
		t.Fatalf("ping with Insecure: %v", err)
	}
}

func TestTLSIsVerifiedByDefault(t *testing.T) {
	srv := emulatortest.Start(t)
	for _, insecure := range []bool{false, true} {
		hc := NewHTTPClient(insecure, 0)
		resp, err := transport{hc}.Do(mustRequest(t, srv.Endpoint()))
		if resp != nil {
			resp.Body.Close()
		}
		hc.CloseIdleConnections()
		if insecure {
			if err != nil {
				t.Errorf("insecure transport: %v", err)
			}
			continue
		}
		if err == nil {
			t.Fatal("the default transport accepted a self-signed certificate")
		}
		cerr := (&Client{}).classify(context.Background(), "ping", err)
		if !errors.Is(cerr, ErrUntrustedCertificate) || errors.Is(cerr, migrate.ErrTransient) {
			t.Errorf("classified %v: want ErrUntrustedCertificate, not transient", cerr)
		}
	}
	tr := NewHTTPClient(false, 0).Transport.(*http.Transport)
	if tr.MaxIdleConnsPerHost != DefaultMaxIdleConnsPerHost || tr.TLSClientConfig.MinVersion != tls.VersionTLS12 {
		t.Errorf("transport: %d idle conns per host, TLS min %x", tr.MaxIdleConnsPerHost, tr.TLSClientConfig.MinVersion)
	}
}

func mustRequest(t *testing.T, url string) *http.Request {
	req, err := http.NewRequestWithContext(tctx(t), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestRequestsGoOutAtLowPriorityByDefault(t *testing.T) {
	srv := emulatortest.Start(t)
	for _, tt := range []struct{ priority, want string }{{"", "Low"}, {"high", "High"}} {
		client, rec := recordingClient(t, srv, nil, func(cfg *Config) { cfg.Priority = tt.priority })
		if err := client.Ping(tctx(t)); err != nil {
			t.Fatal(err)
		}
		_ = client.CreateContainer(tctx(t), "db", "c"+tt.want, migrate.Definition{Paths: []string{"/pk"}}, 400, 0)
		c := client.Container("db", "c"+tt.want)
		mustCreate(t, c, key("p"), itemBody(t, "1", "p", 1))
		var n int
		for _, h := range rec.seen() {
			if h.Get("x-ms-documentdb-partitionkey") == "" {
				continue // metadata requests
			}
			n++
			if got := h.Get("x-ms-cosmos-priority-level"); got != tt.want {
				t.Errorf("priority %q: item request at %q, want %q", tt.priority, got, tt.want)
			}
		}
		if n == 0 {
			t.Fatal("no item request recorded")
		}
	}
}

func TestSDKRetriesOf429AreOff(t *testing.T) {
	e := newEnv(t)
	c := e.container(t, "c", 400)
	inject(t, e.srv, emulatorFault429(1, 10*time.Millisecond))
	_, err := c.Create(tctx(t), key("p"), itemBody(t, "1", "p", 1))
	if !errors.Is(err, migrate.ErrThrottled) {
		t.Fatalf("create under one 429 = %v; want ErrThrottled (azcore must not retry it)", err)
	}
	// The fault fired once; the next attempt is the caller's to make.
	mustCreate(t, c, key("p"), itemBody(t, "1", "p", 1))
}
