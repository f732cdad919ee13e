package emulator_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"

	"github.com/rekey-dev/rekey/internal/emulator/emulatortest"
)

// TestManagedIdentityEndpoint: with the environment Server.ManagedIdentityEnv
// names, azidentity's DefaultAzureCredential (what rekey uses without a
// key) fetches the account's tokens from the emulator's managed identity
// endpoint, and the SDK reads and writes with them. It sets process
// environment variables, so it does not run in parallel.
func TestManagedIdentityEndpoint(t *testing.T) {
	e := newEnv(t, emulatortest.WithEntra())
	e.container(t, "c", 0)
	env := e.srv.ManagedIdentityEnv()
	if len(env) != 3 || !strings.HasPrefix(e.srv.ManagedIdentityEndpoint(), "http://127.0.0.1:") {
		t.Fatalf("managed identity env %v, endpoint %q", env, e.srv.ManagedIdentityEndpoint())
	}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	cred, err := azidentity.NewDefaultAzureCredential(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := entraContainer(t, entraClient(t, e.srv, cred, nil), "c")
	pk := azcosmos.NewPartitionKeyString("a")
	if _, err := c.UpsertItem(context.Background(), pk, mustJSON(t, doc{"id": "1", "pk": "a"}), nil); err != nil {
		t.Fatalf("upsert with a managed identity token: %v", err)
	}
	if _, err := c.ReadItem(context.Background(), pk, "1", nil); err != nil {
		t.Fatalf("read with a managed identity token: %v", err)
	}

	hc := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	defer hc.CloseIdleConnections()
	for _, tc := range []struct {
		name, header, query string
		status              int
	}{
		{"no identity header", "", "?api-version=2019-08-01&resource=https://127.0.0.1", http.StatusUnauthorized},
		{"wrong identity header", "nope", "?api-version=2019-08-01&resource=https://127.0.0.1", http.StatusUnauthorized},
		{"no resource", e.srv.Entra().IdentityHeader(), "?api-version=2019-08-01", http.StatusBadRequest},
	} {
		req, err := http.NewRequest(http.MethodGet, e.srv.ManagedIdentityEndpoint()+tc.query, nil)
		if err != nil {
			t.Fatal(err)
		}
		if tc.header != "" {
			req.Header.Set("X-IDENTITY-HEADER", tc.header)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s: status %d, want %d", tc.name, resp.StatusCode, tc.status)
		}
	}
}
