package emulator_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"

	"github.com/rekey-dev/rekey/internal/emulator"
	"github.com/rekey-dev/rekey/internal/emulator/emulatortest"
)

func errStatus(err error) int {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}

// Injected faults answer matching requests with the chosen status, as many
// times as asked, then stop; scope and operation filters keep them off other
// requests.
func TestInjectedFaults(t *testing.T) {
	p := newPhysicsEnv(t)
	c := p.container(t, "faults", 400)
	other := p.container(t, "other", 400)
	ctx := context.Background()
	pk := azcosmos.NewPartitionKeyString("k")
	write := func(c *azcosmos.ContainerClient, id string) error {
		_, err := c.UpsertItem(ctx, pk, payload(id, "k", 200), nil)
		return err
	}

	cases := []struct {
		name   string
		fault  emulator.Fault
		status int
	}{
		{"429 storm", emulator.Fault{Container: "faults", Status: 429, Count: 3, RetryAfter: 250 * time.Millisecond}, 429},
		{"503", emulator.Fault{Container: "faults", Status: 503, Count: 2}, 503},
		{"408 on writes only", emulator.Fault{Container: "faults", Status: 408, Count: 2, Operations: []string{"write"}}, 408},
		{"449", emulator.Fault{Container: "faults", Status: 449, Count: 1}, 449},
	}
	n := 0
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := p.srv.InjectFault(tc.fault); err != nil {
				t.Fatal(err)
			}
			if err := write(other, fmt.Sprintf("o%d", n)); err != nil {
				t.Fatalf("a container outside the fault's scope failed: %v", err)
			}
			if tc.fault.Operations != nil {
				if _, err := c.ReadItem(ctx, pk, "missing", nil); errStatus(err) != http.StatusNotFound {
					t.Fatalf("a read outside the fault's operations: want 404, got %v", err)
				}
			}
			for i := 0; i < tc.fault.Count; i++ {
				n++
				err := write(c, fmt.Sprintf("f%d", n))
				if got := errStatus(err); got != tc.status {
					t.Fatalf("request %d: want %d, got %v", i, tc.status, err)
				}
				if tc.status == 429 {
					if wait, ok := isThrottled(t, err); !ok || wait != 250*time.Millisecond {
						t.Fatalf("429 retry-after: want 250ms, got %v", wait)
					}
				}
			}
			n++
			if err := write(c, fmt.Sprintf("f%d", n)); err != nil {
				t.Fatalf("after %d injected failures the fault should be spent: %v", tc.fault.Count, err)
			}
		})
	}
}

// A range-scoped fault hits only requests routed to that partition key range.
func TestFaultScopedToRange(t *testing.T) {
	p := newPhysicsEnv(t)
	c := p.container(t, "ranged", 12_000) // two partitions
	keys := quarterKeys(t, 1)             // quarter 0 lies in range 0, quarter 3 in range 1
	if _, err := p.srv.InjectFault(emulator.Fault{Container: "ranged", RangeID: "1", Status: 503}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	in0, in1 := keys[0][0], keys[3][0]
	if _, err := c.UpsertItem(ctx, azcosmos.NewPartitionKeyString(in0), payload("a", in0, 100), nil); err != nil {
		t.Fatalf("range 0 should be unaffected: %v", err)
	}
	_, err := c.UpsertItem(ctx, azcosmos.NewPartitionKeyString(in1), payload("b", in1, 100), nil)
	if errStatus(err) != http.StatusServiceUnavailable {
		t.Fatalf("range 1: want 503, got %v", err)
	}
	p.srv.ClearFaults()
	if _, err := c.UpsertItem(ctx, azcosmos.NewPartitionKeyString(in1), payload("b", in1, 100), nil); err != nil {
		t.Fatalf("after ClearFaults: %v", err)
	}
}

// Latency delays requests; a dropped connection surfaces as a transport error.
func TestFaultLatencyAndDroppedConnection(t *testing.T) {
	p := newPhysicsEnv(t)
	c := p.container(t, "net", 400)
	ctx := context.Background()
	pk := azcosmos.NewPartitionKeyString("k")
	if _, err := p.srv.InjectFault(emulator.Fault{Container: "net", Latency: 150 * time.Millisecond, Count: 1}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := c.UpsertItem(ctx, pk, payload("a", "k", 100), nil); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("latency fault: the request took %v, want at least 150ms", d)
	}

	if _, err := p.srv.InjectFault(emulator.Fault{Container: "net", CloseConnection: true, Count: 1, Operations: []string{"read"}}); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// The response starts and the stream is reset: a transport error, not a
	// status the service sent.
	_, err := c.ReadItem(short, pk, "a", nil)
	if err == nil || errStatus(err) != 0 {
		t.Fatalf("a dropped connection should surface as a transport error, got %v", err)
	}
	if got := p.srv.Faults(); len(got) != 0 {
		t.Errorf("the one-shot fault should be spent, still have %v", got)
	}
	if _, err := c.ReadItem(short, pk, "a", nil); err != nil {
		t.Fatalf("after the dropped connection: %v", err)
	}
}

// The admin API exposes metrics and fault injection over HTTP.
func TestAdminAPI(t *testing.T) {
	e := newEnv(t, emulatortest.WithAdmin())
	c := e.container(t, "admin", 400)
	upsert(t, c, "k", doc{"id": "1", "pk": "k"})
	hc := emulatortest.HTTPClient(t, e.srv)

	resp, err := hc.Get(e.srv.Endpoint() + "admin/metrics")
	if err != nil {
		t.Fatal(err)
	}
	var metrics []emulator.ContainerMetrics
	if err := json.NewDecoder(resp.Body).Decode(&metrics); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(metrics) != 1 || metrics[0].Items != 1 || metrics[0].RU <= 0 || metrics[0].Requests < 1 {
		t.Fatalf("metrics: %+v", metrics)
	}

	body := []byte(`{"container":"admin","status":429,"count":1,"retryAfterMs":40}`)
	resp, err = hc.Post(e.srv.Endpoint()+"admin/faults", "application/json", bytes.NewReader(body))
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("inject fault: %v %v", resp.Status, err)
	}
	resp.Body.Close()
	client := newClient(t, e.srv, func(o *azcosmos.ClientOptions) { o.Retry.MaxRetries = -1 })
	cc, _ := client.NewContainer(testDB, "admin")
	_, err = cc.ReadItem(context.Background(), azcosmos.NewPartitionKeyString("k"), "1", nil)
	if errStatus(err) != http.StatusTooManyRequests {
		t.Fatalf("want the injected 429, got %v", err)
	}

	resp, err = hc.Post(e.srv.Endpoint()+"admin/split", "application/json", bytes.NewReader([]byte(`{"database":"db","container":"admin","rangeId":"0"}`)))
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("split: %v %v", resp.Status, err)
	}
	resp.Body.Close()
	ranges, err := cc.ReadFeedRanges(context.Background(), nil)
	if err != nil || len(ranges) != 2 {
		t.Fatalf("after an admin split: %d ranges, %v", len(ranges), err)
	}

	resp, err = hc.Post(e.srv.Endpoint()+"admin/faults", "application/json", bytes.NewReader([]byte(`{"status":418}`)))
	if err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a fault with an unsupported status: want 400, got %v %v", resp.Status, err)
	}
	resp.Body.Close()
}

// Without --admin the admin paths are ordinary (unauthorized) requests.
func TestAdminAPIOffByDefault(t *testing.T) {
	e := newEnv(t)
	resp, err := emulatortest.HTTPClient(t, e.srv).Get(e.srv.Endpoint() + "admin/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("want 401 for an unsigned request, got %d", resp.StatusCode)
	}
}
