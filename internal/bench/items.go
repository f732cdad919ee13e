package bench

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/rekey-dev/rekey/internal/cosmos"
	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/transform"
)

// items generates the benchmark's source items: n items of about size
// bytes, keyed in the source on /tenant (a hundred items per tenant, so the
// seed goes in transactional batches) and carrying the fields of the new
// keys: /customerId, unique per item except a share skew of the items,
// which all carry the one hot customer "hot"; and createdAt, one month per
// 50 items, so that {tenant}-{createdAt|yyyyMM} is shared by 50 items.
type items struct {
	n    int
	size int
	skew float64
}

const hotCustomer = "hot"

// tenant is the source key of item i.
func (g items) tenant(i int) string { return "t-" + strconv.Itoa(i/100) }

// item is the body of item i.
func (g items) item(i int) []byte {
	h := splitmix64(uint64(i))
	customer := fmt.Sprintf("c-%012d", h%1_000_000_000_000)
	if float64(h>>11)/float64(1<<53) < g.skew {
		customer = hotCustomer
	}
	created := fmt.Sprintf("2025-%02d-01T00:00:00Z", (i/50)%12+1)
	head := fmt.Sprintf(`{"id":"it-%09d","tenant":%q,"customerId":%q,"createdAt":%q,"n":%d,"pad":"`, i, g.tenant(i), customer, created, i)
	pad := max(g.size-len(head)-2, 0)
	return []byte(head + strings.Repeat("x", pad) + `"}`)
}

// splitmix64 scatters i over 64 bits, deterministically.
func splitmix64(x uint64) uint64 {
	x += 0x9E3779B97F4A7C15
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9
	x = (x ^ (x >> 27)) * 0x94D049BB133111EB
	return x ^ (x >> 31)
}

// seed writes the items into src in transactional batches of one tenant,
// workers at a time, waiting out 429s.
func (g items) seed(ctx context.Context, src *cosmos.Container, workers int, log *slog.Logger) error {
	batches := make(chan int)
	var done atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for first := range batches {
				bodies := make([][]byte, 0, 100)
				for i := first; i < min(first+100, g.n); i++ {
					bodies = append(bodies, g.item(i))
				}
				key := migrate.Key{transform.StringValue(g.tenant(first))}
				err := migrate.Retry(ctx, func() error {
					res, err := src.CreateBatch(ctx, key, bodies)
					if err == nil && !res.Committed {
						err = fmt.Errorf("seed batch at item %d did not commit: %v", first, res.Statuses)
					}
					return err
				})
				if err != nil {
					errs <- err
					return
				}
				if n := done.Add(int64(len(bodies))); n%100_000 < int64(len(bodies)) {
					log.Info("seeding the source", "items", n, "of", g.n)
				}
			}
		}()
	}
	var err error
feed:
	for first := 0; first < g.n; first += 100 {
		select {
		case batches <- first:
		case err = <-errs:
			break feed
		case <-ctx.Done():
			err = ctx.Err()
			break feed
		}
	}
	close(batches)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errs:
		default:
		}
	}
	return err
}
