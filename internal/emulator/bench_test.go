package emulator_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"

	"github.com/rekey-dev/rekey/internal/emulator"
	"github.com/rekey-dev/rekey/internal/emulator/emulatortest"
)

// The throughput benchmarks load the emulator over loopback TLS with the
// real SDK client, as an application would. The emulator's figure is best
// read as a ratio to BenchmarkCeiling32, the same client load against a
// handler that does nothing, measured in the same run on the same machine:
//
//	go test -run='^$' -bench=. -benchtime=5s ./internal/emulator/
const (
	benchClients = 32
	benchKeys    = 10000 // logical partitions the load spreads over
	benchIDs     = 1000  // items per client: once written, upserts replace them
	// benchRU is the most a container may have without a support ticket.
	// It makes 167 physical partitions of ~6,000 RU/s each, far above what
	// the load spends, so no request is throttled (the benchmarks report
	// 429s/op to show it).
	benchRU = 1_000_000
)

// benchItem is an item of about 1 KB.
func benchItem(id, pk string) []byte {
	return []byte(`{"id":"` + id + `","pk":"` + pk + `","kind":"bench","n":12345,"pad":"` + strings.Repeat("x", 900) + `"}`)
}

// throttleCounter is a per-retry pipeline policy that counts 429 answers.
type throttleCounter struct{ n atomic.Int64 }

func (c *throttleCounter) Do(req *policy.Request) (*http.Response, error) {
	resp, err := req.Next()
	if resp != nil && resp.StatusCode == http.StatusTooManyRequests {
		c.n.Add(1)
	}
	return resp, err
}

// benchContainer starts an emulator and returns a client's container at
// benchRU, with the throttle counter of that client.
func benchContainer(b *testing.B) (*azcosmos.ContainerClient, *throttleCounter) {
	b.Helper()
	srv := emulatortest.Start(b)
	tc := &throttleCounter{}
	cred, _ := azcosmos.NewKeyCredential(srv.Key())
	client, err := azcosmos.NewClientWithKey(srv.Endpoint(), cred, &azcosmos.ClientOptions{ClientOptions: azcore.ClientOptions{
		Transport:        emulatortest.HTTPClient(b, srv),
		PerRetryPolicies: []policy.Policy{tc},
	}})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := client.CreateDatabase(ctx, azcosmos.DatabaseProperties{ID: "bench"}, nil); err != nil {
		b.Fatal(err)
	}
	db, _ := client.NewDatabase("bench")
	tp := azcosmos.NewManualThroughputProperties(benchRU)
	if _, err := db.CreateContainer(ctx, azcosmos.ContainerProperties{ID: "c", PartitionKeyDefinition: azcosmos.PartitionKeyDefinition{Paths: []string{"/pk"}, Version: 2}},
		&azcosmos.CreateContainerOptions{ThroughputProperties: &tp}); err != nil {
		b.Fatal(err)
	}
	c, _ := db.NewContainer("c")
	return c, tc
}

// runClients runs op b.N times across benchClients goroutines, each with its
// own random source, and reports ops/s under unit.
func runClients(b *testing.B, unit string, perOp int, op func(client int, rng *rand.Rand) error) {
	b.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, benchClients)
	b.ResetTimer()
	start := time.Now()
	for w := 0; w < benchClients; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			for next.Add(1) <= int64(b.N) {
				if err := op(w, rng); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N*perOp)/elapsed.Seconds(), unit)
}

// upsertLoad is the single-item load: 32 clients upserting ~1 KB items, each
// client over its own benchIDs items spread across benchKeys logical
// partitions, so the container's size stays bounded however long it runs.
func upsertLoad(c *azcosmos.ContainerClient) func(int, *rand.Rand) error {
	ctx := context.Background()
	return func(w int, rng *rand.Rand) error {
		n := w*benchIDs + rng.IntN(benchIDs)
		pk := fmt.Sprintf("k%d", n%benchKeys)
		id := fmt.Sprintf("i%d", n)
		_, err := c.UpsertItem(ctx, azcosmos.NewPartitionKeyString(pk), benchItem(id, pk), nil)
		return err
	}
}

// BenchmarkUpsert32 measures single-item upserts per second into the emulator.
func BenchmarkUpsert32(b *testing.B) {
	c, tc := benchContainer(b)
	load := upsertLoad(c)
	if err := load(0, rand.New(rand.NewPCG(1, 1))); err != nil {
		b.Fatal(err)
	}
	runClients(b, "upserts/s", 1, load)
	b.ReportMetric(float64(tc.n.Load())/float64(b.N), "429s/op")
}

// BenchmarkBatch measures items per second written through transactional
// batches of 100 upserts, each batch into one logical partition.
func BenchmarkBatch(b *testing.B) {
	c, tc := benchContainer(b)
	ctx := context.Background()
	load := func(w int, rng *rand.Rand) error {
		pk := fmt.Sprintf("k%d", rng.IntN(benchKeys))
		batch := c.NewTransactionalBatch(azcosmos.NewPartitionKeyString(pk))
		for i := 0; i < 100; i++ {
			batch.UpsertItem(benchItem(fmt.Sprintf("c%d-%d", w, i), pk), nil)
		}
		resp, err := c.ExecuteTransactionalBatch(ctx, batch, nil)
		if err == nil && !resp.Success {
			err = fmt.Errorf("batch failed: %+v", resp.OperationResults[0])
		}
		return err
	}
	if err := load(0, rand.New(rand.NewPCG(1, 1))); err != nil {
		b.Fatal(err)
	}
	runClients(b, "items/s", 100, load)
	b.ReportMetric(float64(tc.n.Load())/float64(b.N), "429s/op")
}

// BenchmarkCeiling32 is BenchmarkUpsert32's client load against a TLS
// handler that does no work: it answers the account read the SDK starts
// with, and every other request with an empty 201 carrying the headers the
// SDK reads. It measures what the client and the HTTP stack cost on this
// machine, the ceiling any emulator can reach.
func BenchmarkCeiling32(b *testing.B) {
	ts := httptest.NewUnstartedServer(http.HandlerFunc(ceilingHandler))
	ts.EnableHTTP2 = true
	ts.StartTLS()
	b.Cleanup(ts.Close)
	endpoint := ts.URL + "/"

	// The same transport settings as emulator.Server.HTTPClient.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 256
	tr.TLSClientConfig = &tls.Config{RootCAs: ts.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs, MinVersion: tls.VersionTLS12}
	hc := &http.Client{Transport: tr}
	b.Cleanup(hc.CloseIdleConnections)

	cred, _ := azcosmos.NewKeyCredential(emulator.WellKnownKey)
	client, err := azcosmos.NewClientWithKey(endpoint, cred, &azcosmos.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: hc}})
	if err != nil {
		b.Fatal(err)
	}
	c, _ := client.NewContainer("bench", "c")
	load := upsertLoad(c)
	if err := load(0, rand.New(rand.NewPCG(1, 1))); err != nil {
		b.Fatal(err)
	}
	runClients(b, "upserts/s", 1, load)
}

func ceilingHandler(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	h := w.Header()
	h.Set("x-ms-activity-id", "00000000-0000-0000-0000-000000000000")
	h.Set("x-ms-request-charge", "1.00")
	h.Set("x-ms-session-token", "0:-1#1")
	if r.Method == http.MethodGet && r.URL.Path == "/" {
		loc := `[{"name":"local","databaseAccountEndpoint":"https://` + r.Host + `/"}]`
		body := `{"id":"ceiling","writableLocations":` + loc + `,"readableLocations":` + loc +
			`,"enableMultipleWriteLocations":false,"userConsistencyPolicy":{"defaultConsistencyLevel":"Session"}}`
		h.Set("Content-Type", "application/json")
		h.Set("Content-Length", fmt.Sprint(len(body)))
		_, _ = io.WriteString(w, body)
		return
	}
	h.Set("etag", `"00000000-0000-0000-0000-000000000001"`)
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}
