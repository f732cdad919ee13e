package emulator_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"

	"github.com/rekey-dev/rekey/internal/emulator"
	"github.com/rekey-dev/rekey/internal/emulator/emulatortest"
)

// TestGatewayIdDecoding: one account, two front ends. The main address keeps
// the routing gateway's quirks (an id ending in a space, holding '#', '/' or '%'
// can be created but not addressed), the compute address serves them all,
// as the official emulator does on 8081 and 8903.
func TestGatewayIdDecoding(t *testing.T) {
	srv := emulatortest.Start(t, func(o *emulator.ServerOptions) {
		o.Gateway = emulator.RoutingGateway
		o.ComputeAddr = "127.0.0.1:0"
	})
	if srv.ComputeEndpoint() == "" || srv.ComputeEndpoint() == srv.Endpoint() {
		t.Fatalf("compute endpoint %q beside %q", srv.ComputeEndpoint(), srv.Endpoint())
	}
	ctx := context.Background()
	routing := newClient(t, srv, nil)
	cred, _ := azcosmos.NewKeyCredential(srv.Key())
	compute, err := azcosmos.NewClientWithKey(srv.ComputeEndpoint(), cred, &azcosmos.ClientOptions{ClientOptions: clientOptions(t, srv)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := routing.CreateDatabase(ctx, azcosmos.DatabaseProperties{ID: "db"}, nil); err != nil {
		t.Fatal(err)
	}
	db, _ := routing.NewDatabase("db")
	if _, err := db.CreateContainer(ctx, azcosmos.ContainerProperties{ID: "c", PartitionKeyDefinition: azcosmos.PartitionKeyDefinition{Paths: []string{"/pk"}}}, nil); err != nil {
		t.Fatal(err)
	}
	rc, _ := routing.NewContainer("db", "c")
	cc, _ := compute.NewContainer("db", "c")
	for _, tc := range []struct {
		id          string
		routingRead int
	}{
		{"plain", http.StatusOK},
		{"Test ", http.StatusUnauthorized},
		{"with?question", http.StatusOK},
		{"hash#inside", http.StatusUnauthorized},
		{"pct%20", http.StatusUnauthorized},
		{"slash/inside", http.StatusUnauthorized},
		{"tab\tinside", http.StatusBadRequest},
	} {
		pk := azcosmos.NewPartitionKeyString(tc.id)
		if _, err := cc.CreateItem(ctx, pk, mustJSON(t, doc{"id": tc.id, "pk": tc.id}), nil); err != nil {
			t.Fatalf("create %q through the compute gateway: %v", tc.id, err)
		}
		if _, err := cc.ReadItem(ctx, pk, tc.id, nil); err != nil {
			t.Errorf("read %q through the compute gateway: %v", tc.id, err)
		}
		_, err := rc.ReadItem(ctx, pk, tc.id, nil)
		status := http.StatusOK
		var re *azcore.ResponseError
		if errors.As(err, &re) {
			status = re.StatusCode
		} else if err != nil {
			t.Fatalf("read %q through the routing gateway: %v", tc.id, err)
		}
		if status != tc.routingRead {
			t.Errorf("read %q through the routing gateway: status %d, want %d", tc.id, status, tc.routingRead)
		}
		if _, err := cc.DeleteItem(ctx, pk, tc.id, nil); err != nil {
			t.Errorf("delete %q through the compute gateway: %v", tc.id, err)
		}
	}
}
