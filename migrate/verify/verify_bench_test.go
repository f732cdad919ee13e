package verify

import (
	"context"
	"fmt"
	"math"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/transform"
)

// genSource generates a container's change feed on the fly: n items of about
// 1 KB spread over four feed ranges, as the source holds them or, with tr
// set, as the target holds their copies. Nothing is stored, so the memory a
// benchmark measures is the verifier's own.
type genSource struct {
	n  int
	tr *transform.Transformer
}

var genRanges = []migrate.FeedRange{{Min: "", Max: "10"}, {Min: "10", Max: "20"}, {Min: "20", Max: "30"}, {Min: "30", Max: "FF"}}

var genPad = strings.Repeat("lorem ipsum ", 70)

func (g *genSource) item(i int) []byte {
	b := fmt.Appendf(nil, `{"id":"item-%08d","region":"r%d","tenantId":"t%03d","createdAt":"2024-%02d-01T00:00:00Z","n":%d,"pad":%q,"_ts":1700000000}`,
		i, i%5, i%997, 1+i%12, i, genPad)
	if g.tr == nil {
		return b
	}
	res, err := g.tr.Apply(b)
	if err != nil {
		panic(err)
	}
	return res.Item
}

func (g *genSource) Definition(context.Context) (migrate.Definition, error) {
	return migrate.Definition{}, nil
}
func (g *genSource) FeedRanges(context.Context) ([]migrate.FeedRange, error) {
	return genRanges, nil
}
func (g *genSource) ReadItem(context.Context, migrate.Key, string) (migrate.Item, error) {
	return migrate.Item{}, migrate.ErrNotFound
}
func (g *genSource) ItemCount(context.Context) (int64, error) { return int64(g.n), nil }

// ReadChanges returns the range's items in pages; range r holds the items
// with i % 4 == r.
func (g *genSource) ReadChanges(_ context.Context, req migrate.ChangeRequest) (migrate.ChangePage, error) {
	r := 0
	for i, fr := range genRanges {
		if fr == req.Range {
			r = i
		}
	}
	next := r
	if req.Continuation != "" {
		next, _ = strconv.Atoi(req.Continuation)
	}
	var page migrate.ChangePage
	for i := next; i < g.n && len(page.Items) < req.PageSize; i += 4 {
		page.Items = append(page.Items, g.item(i))
		next = i + 4
	}
	page.Continuation = strconv.Itoa(next)
	return page, nil
}

// BenchmarkVerify verifies REKEY_VERIFY_ITEMS items (100,000 by default;
// set 1000000 for the figure) and reports the peak heap in use
// (garbage included), the peak live heap (what the last GC kept) and the
// process's peak RSS:
//
//	REKEY_VERIFY_ITEMS=1000000 go test -run '^$' -bench BenchmarkVerify -benchtime 1x ./migrate/verify/
func BenchmarkVerify(b *testing.B) {
	n := 100_000
	if s := os.Getenv("REKEY_VERIFY_ITEMS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			b.Fatal(err)
		}
	}
	spec, _ := transform.ParseSpec([]string{"/pk={tenantId}-{createdAt|yyyyMM}"})
	tr, err := transform.New(spec, []string{"/region"})
	if err != nil {
		b.Fatal(err)
	}
	var peak, peakLive atomic.Uint64
	stop := make(chan struct{})
	go func() {
		var ms runtime.MemStats
		live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			metrics.Read(live)
			if v := live[0].Value.Uint64(); v > peakLive.Load() {
				peakLive.Store(v)
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		v := &Verifier{Source: &genSource{n: n}, Target: &genSource{n: n, tr: tr}, Transformer: tr}
		rep, err := v.Verify(context.Background(), Config{RecheckDelay: -1, TempDir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		if !rep.Clean || rep.Matched != int64(n) {
			b.Fatalf("verify of %d generated items: matched %d, clean %v", n, rep.Matched, rep.Clean)
		}
	}
	b.StopTimer()
	close(stop)
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "items/s")
	b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MB")
	b.ReportMetric(float64(peakLive.Load())/(1<<20), "peak-live-heap-MB")
	b.ReportMetric(float64(ru.Maxrss)/1024, "peak-RSS-MB")
}

// BenchmarkVerifyCompare measures what verify holds while it compares, the
// part of its memory that could grow with the containers: it spills the
// records of REKEY_VERIFY_ITEMS items (1,000,000 by default) held by both
// containers, compares them, and reports the largest comparison (records,
// and the live heap after a GC while they are held). whole-buckets compares
// each of the 64 buckets whole, as verify did before buckets were split:
//
//	REKEY_VERIFY_ITEMS=4000000 go test -run '^$' -bench BenchmarkVerifyCompare -benchtime 1x ./migrate/verify/
func BenchmarkVerifyCompare(b *testing.B) {
	n := 1_000_000
	if s := os.Getenv("REKEY_VERIFY_ITEMS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			b.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name     string
		maxBytes int64
	}{{"split-buckets", maxBucketBytes}, {"whole-buckets", math.MaxInt64}} {
		b.Run(tc.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				sp, err := newSpill(b.TempDir(), verifyBuckets)
				if err != nil {
					b.Fatal(err)
				}
				sp.maxBytes = tc.maxBytes
				for j := 0; j < n; j++ {
					src := &record{id: fmt.Sprintf("item-%08d", j), srcKey: fmt.Sprintf(`["r%d"]`, j%5),
						tgtKey: fmt.Sprintf(`["t%03d-2024%02d"]`, j%997, 1+j%12), digest: migrate.Digest{byte(j), byte(j >> 8), byte(j >> 16)}, ts: 1_700_000_000}
					tgt := *src
					tgt.flags, tgt.ts = recTarget, 0
					if err := sp.add(src); err != nil {
						b.Fatal(err)
					}
					if err := sp.add(&tgt); err != nil {
						b.Fatal(err)
					}
				}
				rep := &Report{}
				cmp := newComparer(rep, Config{MaxRecheck: DefaultMaxRecheck, MaxIDs: DefaultMaxIDs})
				var ms runtime.MemStats
				largest, live := 0, uint64(0)
				err = sp.each(func(recs []record) error {
					largest = max(largest, len(recs))
					runtime.GC()
					runtime.ReadMemStats(&ms)
					live = max(live, ms.HeapAlloc)
					cmp.bucket(recs)
					return nil
				})
				sp.close()
				if err != nil {
					b.Fatal(err)
				}
				if rep.Matched != int64(n) {
					b.Fatalf("matched %d of %d", rep.Matched, n)
				}
				b.ReportMetric(float64(largest), "max-records")
				b.ReportMetric(float64(live)/(1<<20), "live-heap-MB")
			}
		})
	}
}
