package bench

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"
	"github.com/rekey-dev/rekey/internal/cosmos"
	"github.com/rekey-dev/rekey/internal/emulator/emulatortest"
	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/transform"
)

func TestNaiveCopierCountsThrottlingAndLosses(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := emulatortest.Start(t)
	hc := emulatortest.HTTPClient(t, srv)
	client, err := cosmos.NewClient(ctx, cosmos.Config{Endpoint: srv.Endpoint(), AccountKey: srv.Key(), HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	const testDB = "db"
	pk := migrate.TargetDefinition([]string{"/pk"})
	for id, ru := range map[string]int{"src": 10000, "dst": 400} { // dst: one partition of 400 RU/s, throttles
		if err := client.CreateContainer(ctx, testDB, id, pk, ru, 0); err != nil {
			t.Fatal(err)
		}
	}
	src := client.Container(testDB, "src")
	for i := range 200 {
		if _, err := src.Create(ctx, migrate.Key{transform.StringValue("p")}, fmt.Appendf(nil, `{"id":"%d","pk":"p"}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	n, err := NewNaiveCopier(srv.Endpoint(), srv.Key(), hc)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	convert := func(item []byte) (azcosmos.PartitionKey, []byte, error) {
		return azcosmos.NewPartitionKeyString("p"), item, nil
	}
	st, err := n.Copy(ctx, migrate.ContainerRef{Database: testDB, Container: "src"}, migrate.ContainerRef{Database: testDB, Container: "dst"}, 32, convert, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Read != 200 || st.Written+st.Lost != 200 || st.Requests < st.Written {
		t.Fatalf("stats %+v", st)
	}
	// 200 upserts of ~5.5 RU against 400 RU/s with 32 workers: the
	// partition's budget runs out, and the SDK's three retries meet 429s.
	t.Logf("%+v", st)
	if st.Throttled == 0 || st.RU < 5*float64(st.Written) {
		t.Fatalf("stats %+v: want 429s counted and the charges summed", st)
	}
}
