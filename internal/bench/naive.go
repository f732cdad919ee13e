package bench

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"

	"github.com/rekey-dev/rekey/migrate"
)

// NaiveCopier copies a container the way one would by hand with the SDK and
// without rekey (which is why this package imports the SDK, the one place
// besides internal/cosmos): a cross-partition query over the source, and workers each
// doing point UpsertItem calls into the target with the SDK's default
// client options, that is azcore's default retry policy (a 429 is retried
// three times, waiting its x-ms-retry-after-ms, then given up) and no
// priority level. It is the baseline `rekey bench` measures rekey against,
// not a migration: an item whose upsert still fails is lost (counted, not
// dead-lettered), nothing is checkpointed, and the target is overwritten
// blindly.
type NaiveCopier struct {
	az      *azcosmos.Client
	hc      *http.Client
	counter *upsertCounter
}

// NaiveStats are what a NaiveCopier did.
type NaiveStats struct {
	Read    int64 // items read from the source
	Written int64 // items upserted into the target
	// Lost counts items whose upsert failed even after the SDK's retries,
	// or that convert refused.
	Lost int64
	// Requests counts upsert attempts (the SDK's retries included), and
	// Throttled those answered 429.
	Requests  int64
	Throttled int64
	RU        float64 // charged by successful upserts
}

// NewNaiveCopier connects to the account at endpoint with its key over hc
// (the transport rekey's client uses, so that the two are compared on the
// same connections) and the SDK's default options otherwise.
func NewNaiveCopier(endpoint, key string, hc *http.Client) (*NaiveCopier, error) {
	cred, err := azcosmos.NewKeyCredential(key)
	if err != nil {
		return nil, errors.New("account key: not a base64 master key")
	}
	n := &NaiveCopier{hc: hc, counter: &upsertCounter{}}
	n.az, err = azcosmos.NewClientWithKey(endpoint, cred, &azcosmos.ClientOptions{ClientOptions: azcore.ClientOptions{
		Transport: hc,
		// Retry is left at its zero value: azcore's defaults.
		PerRetryPolicies: []policy.Policy{n.counter},
	}})
	if err != nil {
		return nil, fmt.Errorf("naive copier: %w", err)
	}
	return n, nil
}

// Close releases the client.
func (n *NaiveCopier) Close() {
	n.az.Close()
	n.hc.CloseIdleConnections()
}

// Copy reads every item of src and upserts convert(item) into dst with
// workers goroutines, until the source is exhausted or ctx ends. convert
// returns the item's target key, as the SDK takes it, and body. written, when not nil, counts
// the items written as they are, for progress. It returns an error only
// when the source cannot be read or ctx ends.
func (n *NaiveCopier) Copy(ctx context.Context, src, dst migrate.ContainerRef, workers int, convert func(item []byte) (azcosmos.PartitionKey, []byte, error), written *atomic.Int64) (NaiveStats, error) {
	srcC, err := n.az.NewContainer(src.Database, src.Container)
	if err != nil {
		return NaiveStats{}, err
	}
	dstC, err := n.az.NewContainer(dst.Database, dst.Container)
	if err != nil {
		return NaiveStats{}, err
	}
	if written == nil {
		written = &atomic.Int64{}
	}
	n.counter.reset()
	var read, lost atomic.Int64
	var ru atomicFloat
	items := make(chan []byte, 2*workers)
	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for item := range items {
				pk, body, err := convert(item)
				if err == nil {
					var resp azcosmos.ItemResponse
					resp, err = dstC.UpsertItem(ctx, pk, body, nil)
					ru.add(float64(resp.RequestCharge))
				}
				if err != nil {
					lost.Add(1)
					continue
				}
				written.Add(1)
			}
		}()
	}
	pager := srcC.NewQueryItemsPager("SELECT * FROM c", azcosmos.NewPartitionKey(), nil)
	var readErr error
read:
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			readErr = fmt.Errorf("naive copier: query %s: %w", src, err)
			break
		}
		for _, it := range page.Items {
			select {
			case items <- it:
				read.Add(1)
			case <-ctx.Done():
				break read
			}
		}
	}
	close(items)
	wg.Wait()
	if readErr == nil {
		readErr = ctx.Err()
	}
	return NaiveStats{
		Read: read.Load(), Written: written.Load(), Lost: lost.Load(),
		Requests: n.counter.requests.Load(), Throttled: n.counter.throttled.Load(), RU: ru.load(),
	}, readErr
}

// upsertCounter is a per-retry policy counting the upsert attempts and the
// 429s they meet; it changes nothing of the request.
type upsertCounter struct {
	requests, throttled atomic.Int64
}

func (c *upsertCounter) reset() {
	c.requests.Store(0)
	c.throttled.Store(0)
}

func (c *upsertCounter) Do(req *policy.Request) (*http.Response, error) {
	upsert := strings.EqualFold(req.Raw().Header.Get("x-ms-documentdb-is-upsert"), "true")
	resp, err := req.Next()
	if upsert {
		c.requests.Add(1)
		if resp != nil && resp.StatusCode == http.StatusTooManyRequests {
			c.throttled.Add(1)
		}
	}
	return resp, err
}

// atomicFloat is a float64 added to atomically.
type atomicFloat struct {
	mu sync.Mutex
	v  float64
}

func (f *atomicFloat) add(v float64) {
	f.mu.Lock()
	f.v += v
	f.mu.Unlock()
}

func (f *atomicFloat) load() float64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.v
}
