package plan

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"

	"github.com/rekey-dev/rekey/internal/epk"
	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/transform"
)

// Service figures a plan rests on (docs/cosmos-service.md: partitions and
// throughput, limits, charges).
const (
	ruPerNewPartition   = 6000     // a new container gets a partition per 6,000 RU/s
	logicalPartitionMax = 20 << 30 // 20 GB per logical partition
	planInsertRUPerKB   = 5.5      // a 1 KB insert with the default indexing policy
	planUtilisation     = 0.9      // the share of the target's RU/s a copy can use
	defaultPlanSample   = 10_000   // items read to plan
	planTopKeys         = 10       // the largest new keys reported
	planHotFactor       = 2.0      // a partition with twice its fair share is hot
	planSizeFloorKB     = 1.0      // charges are counted from 1 KB
)

// Config is what `rekey plan` examines.
type Config struct {
	// Sample is how many source items to read (spread over the feed ranges).
	Sample int
	// TargetRU is the planned target throughput (RU/s); it decides the
	// target's physical partitions.
	TargetRU int
}

// KeyShare is one new key's share of the sampled items.
type KeyShare struct {
	// Key is the key's JSON, as the service takes it: an array with one
	// value per path (["tenant-02-202507"]).
	Key   json.RawMessage `json:"key"`
	Items int             `json:"items"`
	Share float64         `json:"share"`
	// EstimatedBytes is the key's logical partition size at full scale;
	// EstimatedSize says it for people (FormatBytes).
	EstimatedBytes int64  `json:"estimatedBytes"`
	EstimatedSize  string `json:"estimatedSize"`
}

// PartitionShare is one planned physical partition's share of the items.
type PartitionShare struct {
	Min   string  `json:"min"`
	Max   string  `json:"max"`
	Share float64 `json:"share"`
}

// Plan is what a migration with a key spec would look like.
type Plan struct {
	SourceItems   int64            `json:"sourceItems"`
	Sampled       int              `json:"sampled"`
	AvgItemBytes  float64          `json:"avgItemBytes"`
	Failures      map[string]int   `json:"failures"` // transform error kind -> sampled items
	FailureShare  float64          `json:"failureShare"`
	Examples      []string         `json:"examples,omitempty"` // one reason per failure kind
	DistinctKeys  int              `json:"distinctKeys"`
	TopKeys       []KeyShare       `json:"topKeys"`
	TargetRU      int              `json:"targetRU"`
	Partitions    []PartitionShare `json:"partitions"`
	HotPartitions int              `json:"hotPartitions"` // over twice their fair share
	OversizedKeys int              `json:"oversizedKeys"` // logical partitions estimated over 20 GB
	CopyRU        float64          `json:"copyRU"`        // RU to write every item once
	CopySeconds   float64          `json:"copySeconds"`   // at 90% of TargetRU
	// Application is what the application must write once it switches to
	// the target, with the first sampled item that transforms as the
	// example (none when no sampled item transforms).
	Application *lease.ApplicationWrites `json:"application"`
	// Settings is what a target created by --create-target gets of the
	// source's settings; the caller reads them (Estimate leaves it nil).
	Settings *migrate.SettingsPlan `json:"settings,omitempty"`
}

// Estimate samples the source, transforms the sample with tr, and
// estimates the new key's distribution over logical and physical
// partitions and the copy's cost and duration.
func Estimate(ctx context.Context, src migrate.Source, tr *transform.Transformer, cfg Config) (*Plan, error) {
	if cfg.Sample <= 0 {
		cfg.Sample = defaultPlanSample
	}
	if cfg.TargetRU <= 0 {
		return nil, errors.New("plan: the target throughput must be positive")
	}
	total, err := src.ItemCount(ctx)
	if err != nil {
		return nil, fmt.Errorf("plan: item count: %w", err)
	}
	items, err := sampleSource(ctx, src, cfg.Sample)
	if err != nil {
		return nil, err
	}
	p := &Plan{SourceItems: total, Sampled: len(items), Failures: map[string]int{}, TargetRU: cfg.TargetRU}
	if p.Application, err = migrate.ApplicationWritesOf(tr, nil); err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}
	if len(items) == 0 {
		return p, nil
	}
	def := migrate.TargetDefinition(tr.TargetPaths()).EPK()
	bounds, err := epk.SplitPoints(epk.Version2, epk.MinEPK, epk.MaxEPK, max(1, (cfg.TargetRU+ruPerNewPartition-1)/ruPerNewPartition))
	if err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}
	edges := append(append([]string{epk.MinEPK}, bounds...), epk.MaxEPK)
	perPartition := make([]int, len(edges)-1)
	keys := map[string]int{}
	var bytes, ok float64
	seenKind := map[string]bool{}
	for _, body := range items {
		bytes += float64(len(body))
		res, err := tr.Apply(body)
		if err != nil {
			var te *transform.Error
			kind := "error"
			if errors.As(err, &te) {
				kind = te.Kind.Error()
			}
			p.Failures[kind]++
			if !seenKind[kind] {
				seenKind[kind] = true
				p.Examples = append(p.Examples, err.Error())
			}
			continue
		}
		if ok == 0 {
			// The first item that transforms is the application's example.
			if p.Application, err = migrate.ApplicationWritesOf(tr, body); err != nil {
				return nil, fmt.Errorf("plan: %w", err)
			}
		}
		ok++
		keys[migrate.Key(res.Key).String()]++
		h, err := migrate.Key(res.Key).EPK(def)
		if err != nil {
			return nil, fmt.Errorf("plan: hash key %s: %w", migrate.Key(res.Key), err)
		}
		i := sort.Search(len(edges)-1, func(i int) bool { return epk.Compare(edges[i+1], h) > 0 })
		perPartition[min(i, len(perPartition)-1)]++
	}
	n := float64(len(items))
	p.AvgItemBytes = bytes / n
	p.FailureShare = (n - ok) / n
	p.DistinctKeys = len(keys)
	p.planKeys(keys, ok, total)
	for i, c := range perPartition {
		share := 0.0
		if ok > 0 {
			share = float64(c) / ok
		}
		p.Partitions = append(p.Partitions, PartitionShare{Min: edges[i], Max: edges[i+1], Share: share})
		if share > planHotFactor/float64(len(perPartition)) {
			p.HotPartitions++
		}
	}
	kb := math.Max(p.AvgItemBytes/1024, planSizeFloorKB)
	p.CopyRU = float64(total) * planInsertRUPerKB * (1 + (kb-1)*9/99)
	p.CopySeconds = p.CopyRU / (planUtilisation * float64(cfg.TargetRU))
	return p, nil
}

// planKeys ranks the new keys and estimates their full-scale sizes.
func (p *Plan) planKeys(keys map[string]int, ok float64, total int64) {
	type kv struct {
		k string
		n int
	}
	var all []kv
	for k, n := range keys {
		all = append(all, kv{k, n})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].n > all[j].n || all[i].n == all[j].n && all[i].k < all[j].k })
	for i, e := range all {
		share := float64(e.n) / ok
		size := int64(math.Round(share * float64(total) * p.AvgItemBytes))
		if float64(size) > logicalPartitionMax {
			p.OversizedKeys++
		}
		if i < planTopKeys {
			p.TopKeys = append(p.TopKeys, KeyShare{Key: json.RawMessage(e.k), Items: e.n, Share: share, EstimatedBytes: size, EstimatedSize: FormatBytes(size)})
		}
	}
}

// sampleSource reads up to n items from the start of the change feed,
// taking pages from every range in turn so the sample spans the container.
func sampleSource(ctx context.Context, src migrate.Source, n int) ([][]byte, error) {
	ranges, err := src.FeedRanges(ctx)
	if err != nil {
		return nil, fmt.Errorf("plan: feed ranges: %w", err)
	}
	type cursor struct {
		req  migrate.ChangeRequest
		done bool
	}
	cursors := make([]*cursor, len(ranges))
	for i, r := range ranges {
		cursors[i] = &cursor{req: migrate.ChangeRequest{Range: r, PageSize: max(1, min(1000, n/len(ranges)+1))}}
	}
	var out [][]byte
	for len(out) < n {
		progress := false
		for _, c := range cursors {
			if c.done || len(out) >= n {
				continue
			}
			var page migrate.ChangePage
			if err := migrate.Retry(ctx, func() error {
				var err error
				page, err = src.ReadChanges(ctx, c.req)
				return err
			}); err != nil {
				return nil, fmt.Errorf("plan: read the source: %w", err)
			}
			if len(page.Items) == 0 {
				c.done = true
				continue
			}
			progress = true
			out = append(out, page.Items[:min(len(page.Items), n-len(out))]...)
			c.req.Continuation = page.Continuation
		}
		if !progress {
			break
		}
	}
	return out, nil
}

// FormatBytes says a size in the largest binary unit that keeps it at least
// 1 (B, KB, MB, GB, TB, as the service counts its 20 GB partition limit),
// with three significant digits: "512 B", "3.4 KB", "21.5 GB".
func FormatBytes(n int64) string {
	units := []string{"B", "KB", "MB", "GB", "TB"}
	v, u := float64(n), 0
	for v >= 1024 && u < len(units)-1 {
		v /= 1024
		u++
	}
	switch {
	case u == 0:
		return fmt.Sprintf("%d B", n)
	case v < 10:
		return fmt.Sprintf("%.2f %s", v, units[u])
	case v < 100:
		return fmt.Sprintf("%.1f %s", v, units[u])
	}
	return fmt.Sprintf("%.0f %s", v, units[u])
}
