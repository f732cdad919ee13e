package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"
	"github.com/rekey-dev/rekey/internal/cosmos"
	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/migrate/deadletter"
	"github.com/rekey-dev/rekey/migrate/pacing"
	"github.com/rekey-dev/rekey/migrate/pipeline"
	"github.com/rekey-dev/rekey/transform"
)

// The benchmark's containers, all in one database of the child emulator.
const (
	db         = "bench"
	sourceColl = "source"
	rekeyColl  = "rekey"
	naiveColl  = "naive"
)

// Options are what `rekey bench` measures: its flags, less the output and
// the timeout.
type Options struct {
	Items    int     // items to migrate
	ItemSize int     // bytes per item
	TargetRU int     // provisioned RU/s of each target (one physical partition per 6,000)
	SourceRU int     // provisioned RU/s of the source
	MaxRU    float64 // rekey's --max-ru (0: no cap)
	// MaxSourceRU is rekey's --max-source-ru (0: no cap): then the
	// source's worst second is measured too.
	MaxSourceRU float64
	Skew        float64 // share of the items on one hot target key, 0 to 1
	Naive       bool    // also run the naive copier
	// Keys is the new key: KeysUnique (/customerId, one value per item)
	// or KeysShared (/pk={tenant}-{createdAt|yyyyMM}, one value per 50
	// items).
	Keys string
	// Bulk is rekey's --bulk: bulk requests, or one request per item.
	Bulk bool
	// Latency is injected into every request the emulator serves once the
	// source is seeded (its latency fault): a target across a network.
	Latency time.Duration
	// Controller is rekey's flow control: paced (the default), windowed
	// (the .NET bulk rule) or fixed (no per-partition control).
	Controller pacing.ControllerMode
	// MaxConcurrency is rekey's --max-concurrency (0: none).
	MaxConcurrency int
	// NaiveWorkers is the naive copier's number of workers.
	NaiveWorkers int
	// CPUProfile, when set, is a file that receives a CPU profile of
	// rekey's migration (not of the seed or the naive copier).
	CPUProfile string
}

// Validate names the first invalid option by its flag.
func (o Options) Validate() error {
	switch {
	case o.Items < 1:
		return fmt.Errorf("--items %d: want at least 1", o.Items)
	case o.ItemSize < 100 || o.ItemSize > 1<<20:
		return fmt.Errorf("--item-size %d: want 100 to 1048576 bytes", o.ItemSize)
	case o.TargetRU < 400 || o.SourceRU < 400:
		return fmt.Errorf("--target-ru and --source-ru: want at least 400")
	case o.MaxRU < 0:
		return fmt.Errorf("--max-ru %v: must not be negative", o.MaxRU)
	case o.MaxSourceRU < 0:
		return fmt.Errorf("--max-source-ru %v: must not be negative", o.MaxSourceRU)
	case o.Skew < 0 || o.Skew > 1:
		return fmt.Errorf("--skew %v: want 0 to 1", o.Skew)
	case o.MaxConcurrency < 0 || o.MaxConcurrency > 4096:
		return fmt.Errorf("--max-concurrency %d: want 1..4096 (0: none)", o.MaxConcurrency)
	case o.NaiveWorkers < 1 || o.NaiveWorkers > 4096:
		return fmt.Errorf("--naive-workers %d: want 1..4096", o.NaiveWorkers)
	case o.Keys != KeysUnique && o.Keys != KeysShared:
		return fmt.Errorf("--keys %q: want %s or %s", o.Keys, KeysUnique, KeysShared)
	case o.Latency < 0 || o.Latency > 10*time.Second:
		return fmt.Errorf("--latency %v: want 0 to 10s", o.Latency)
	}
	return nil
}

// Run runs the whole benchmark: the emulator child, the seed, rekey, and
// with Options.Naive the naive copier. It must run in the rekey executable
// (or a test binary that acts as rekey under REKEY_TEST_MAIN): the emulator
// is this executable's `emulator` command. ctx bounds the whole run.
func Run(ctx context.Context, o Options, log *slog.Logger) (*Report, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	emu, err := startEmulator(ctx)
	if err != nil {
		return nil, err
	}
	defer emu.stop()
	admin, err := cosmos.NewClient(ctx, emu.config(cosmos.PriorityHigh))
	if err != nil {
		return nil, err
	}
	defer admin.Close()
	rep := &Report{Options: o, Endpoint: emu.endpoint}

	gen := items{n: o.Items, size: o.ItemSize, skew: o.Skew}
	if err := admin.CreateContainer(ctx, db, sourceColl, migrate.TargetDefinition([]string{"/tenant"}), o.SourceRU, 0); err != nil {
		return nil, err
	}
	start := time.Now()
	log.Info("seeding the source", "items", o.Items, "itemSize", o.ItemSize)
	if err := gen.seed(ctx, admin.Container(db, sourceColl), 16, log); err != nil {
		return nil, fmt.Errorf("seed the source: %w", err)
	}
	rep.SeedSeconds = time.Since(start).Seconds()
	if o.Latency > 0 {
		if err := emu.injectLatency(ctx, o.Latency); err != nil {
			return nil, err
		}
	}

	res, err := runRekey(ctx, o, emu, admin, log)
	if err != nil {
		return nil, err
	}
	rep.Results = append(rep.Results, res)
	if o.Naive {
		res, err := runNaive(ctx, o, emu, admin, log)
		if err != nil {
			return nil, err
		}
		rep.Results = append(rep.Results, res)
	}
	return rep, nil
}

// runRekey migrates the source with the Runner, as `rekey run
// --until-caught-up` does, and measures it.
func runRekey(ctx context.Context, o Options, emu *emulatorProcess, admin *cosmos.Client, log *slog.Logger) (Result, error) {
	tr, err := transformer(o.Keys)
	if err != nil {
		return Result{}, err
	}
	if err := admin.CreateContainer(ctx, db, rekeyColl, migrate.TargetDefinition(tr.TargetPaths()), o.TargetRU, 0); err != nil {
		return Result{}, err
	}
	client, err := cosmos.NewClient(ctx, emu.config(cosmos.PriorityLow))
	if err != nil {
		return Result{}, err
	}
	defer client.Close()
	dir, err := os.MkdirTemp("", "rekey-bench-")
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(dir)
	store, err := lease.OpenFile(filepath.Join(dir, "state"))
	if err != nil {
		return Result{}, err
	}
	defer store.Close()
	dead, err := deadletter.OpenFile(filepath.Join(dir, "deadletter.jsonl"))
	if err != nil {
		return Result{}, err
	}
	defer dead.Close()
	source := client.Container(db, sourceColl)
	ranges, err := source.FeedRanges(ctx)
	if err != nil {
		return Result{}, err
	}
	meta := migrate.NewMeta(sourceColl, rekeyColl, tr, time.Time{})
	meta.Ranges = migrate.LeaseRanges(ranges)
	if _, err := migrate.OpenMeta(ctx, store, meta, dir); err != nil {
		return Result{}, err
	}
	target := client.Container(db, rekeyColl)
	cfg := pipeline.RunConfig{UntilCaughtUp: true, PollInterval: 100 * time.Millisecond, Owner: "bench"}
	// The target was created above with TargetRU manual RU/s: the
	// per-partition controller starts from its share of them, as rekey run
	// does after reading the offer.
	mode := pipeline.WriteBulk
	if !o.Bulk {
		mode = pipeline.WriteItems
	}
	writes := pipeline.NewWritePath(target, pipeline.WritePathConfig{Mode: mode, Log: log, Flow: pacing.Config{
		MaxConcurrency: o.MaxConcurrency, MaxRU: o.MaxRU, MaxSourceRU: o.MaxSourceRU, Controller: o.Controller, ProvisionedRU: float64(o.TargetRU),
	}})
	stats := &pipeline.Stats{}
	r := &pipeline.Runner{Source: source, Transformer: tr, Store: store, DeadLetters: dead, Writes: writes, Stats: stats}
	name := "rekey (" + o.Controller.String() + ")"
	if o.Bulk {
		name = "rekey bulk (" + o.Controller.String() + ")"
	}
	var sum pipeline.Summary
	describe := writes.Flow().Describe
	if o.Controller == pacing.ControllerFixed {
		describe = nil
	}
	res, err := measure(ctx, o, emu, rekeyColl, name, true, func() int64 { return stats.Snapshot().Written() }, describe, log, func(ctx context.Context) error {
		stop, err := startCPUProfile(o.CPUProfile)
		if err != nil {
			return err
		}
		defer stop()
		sum, err = r.Run(ctx, cfg)
		if err == nil && !sum.CaughtUp {
			err = errors.New("the migration stopped before it caught up")
		}
		return err
	})
	if err != nil {
		return res, fmt.Errorf("rekey run: %w", err)
	}
	s := sum.Stats
	res.Written, res.Lost = s.Written(), int64(sum.DeadLetters)
	res.ClientRequests, res.ClientThrottled = s.WriteRequests, s.WritesThrottled
	return res, nil
}

// runNaive copies the source by hand into a second target and measures
// it.
func runNaive(ctx context.Context, o Options, emu *emulatorProcess, admin *cosmos.Client, log *slog.Logger) (Result, error) {
	tr, err := transformer(o.Keys)
	if err != nil {
		return Result{}, err
	}
	if err := admin.CreateContainer(ctx, db, naiveColl, migrate.TargetDefinition(tr.TargetPaths()), o.TargetRU, 0); err != nil {
		return Result{}, err
	}
	n, err := NewNaiveCopier(emu.endpoint, emu.key, cosmos.NewHTTPClient(true, 0))
	if err != nil {
		return Result{}, err
	}
	defer n.Close()
	var written atomic.Int64
	var st NaiveStats
	res, err := measure(ctx, o, emu, naiveColl, "naive", false, written.Load, nil, log, func(ctx context.Context) error {
		var err error
		st, err = n.Copy(ctx, migrate.ContainerRef{Database: db, Container: sourceColl},
			migrate.ContainerRef{Database: db, Container: naiveColl}, o.NaiveWorkers, naiveConvert(tr), &written)
		return err
	})
	if err != nil {
		return res, fmt.Errorf("naive copy: %w", err)
	}
	res.Written, res.Lost = st.Written, st.Lost
	res.ClientRequests, res.ClientThrottled = st.Requests, st.Throttled
	return res, nil
}

// naiveConvert is the naive copier's transform: the key spec applied by
// hand, its one key (a string customer id) built as the SDK takes it.
func naiveConvert(tr *transform.Transformer) func(item []byte) (azcosmos.PartitionKey, []byte, error) {
	return func(item []byte) (azcosmos.PartitionKey, []byte, error) {
		res, err := tr.Apply(item)
		if err != nil {
			return azcosmos.PartitionKey{}, nil, err
		}
		if len(res.Key) != 1 || res.Key[0].Type != transform.TypeString {
			return azcosmos.PartitionKey{}, nil, fmt.Errorf("item %q: key %s is not one string", res.ID, migrate.Key(res.Key))
		}
		return azcosmos.NewPartitionKeyString(res.Key[0].Str), res.Item, nil
	}
}

// startCPUProfile writes a CPU profile to path until stop is called; with
// no path it does nothing.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// The new keys the benchmark migrates to (Options.Keys).
const (
	// KeysUnique is /customerId: one value per item (but for --skew's hot
	// customer), so every write is alone under its key.
	KeysUnique = "unique"
	// KeysShared is /pk={tenant}-{createdAt|yyyyMM}: one value per 50
	// items, which the writer without bulk sends as transactional
	// batches.
	KeysShared = "shared"
)

// transformer is the benchmark's key spec: from /tenant to the new keys.
func transformer(keys string) (*transform.Transformer, error) {
	spec := []string{"/customerId"}
	if keys == KeysShared {
		spec = []string{"/pk={tenant}-{createdAt|yyyyMM}"}
	}
	parsed, err := transform.ParseSpec(spec)
	if err != nil {
		return nil, err
	}
	return transform.New(parsed, []string{"/tenant"})
}

// sampleInterval is how often the emulator's counters are read while a
// writer runs: often enough to find the worst second within a tenth.
const sampleInterval = 100 * time.Millisecond

// measure runs one writer while sampling the emulator's counters of its
// target and this process's CPU time and memory. describe, when not nil,
// adds the writer's flow control to the progress log. capped says the
// writer reads the source under Options.MaxSourceRU: then the source's
// counters are sampled too, for its worst second.
func measure(ctx context.Context, o Options, emu *emulatorProcess, coll, name string, capped bool, written func() int64, describe func() string, log *slog.Logger, run func(context.Context) error) (Result, error) {
	log.Info("benchmark writer starting", "writer", name)
	smp := &sampler{emu: emu, db: db, coll: coll, written: written}
	sctx, stopSampling := context.WithCancel(ctx)
	sampled := make(chan struct{}, 2)
	go func() { smp.run(sctx, sampleInterval); sampled <- struct{}{} }()
	var src *sampler
	if capped && o.MaxSourceRU > 0 {
		src = &sampler{emu: emu, db: db, coll: sourceColl, written: written}
		go func() { src.run(sctx, sampleInterval); sampled <- struct{}{} }()
	}
	progress := time.NewTicker(5 * time.Second)
	defer progress.Stop()
	go func() {
		for {
			select {
			case <-sctx.Done():
				return
			case <-progress.C:
				args := []any{"writer", name, "written", written(), "of", o.Items}
				if describe != nil {
					args = append(args, "flow", describe())
				}
				log.Info("benchmark progress", args...)
			}
		}
	}()

	mark := markUsage()
	start := time.Now()
	err := run(ctx)
	elapsed := time.Since(start)
	use := usageSince(mark)
	stopSampling()
	<-sampled
	if src != nil {
		<-sampled
	}
	if err != nil {
		return Result{}, err
	}
	m, err := emu.metrics(ctx, db, coll)
	if err != nil {
		return Result{}, err
	}
	res := Result{
		Writer: name, Seconds: elapsed.Seconds(), InTarget: int64(m.Items),
		ProvisionedRU: float64(m.ThroughputRU), Partitions: partitionsOf(m), MaxRU: o.MaxRU,
		CPUSeconds: use.cpu.Seconds(), PeakRSSMB: float64(use.peakRSS) / (1 << 20), PeakRSSKind: use.peakKind,
	}
	res.Overall = smp.overall().figures(res)
	steady, ok := smp.steady(int64(o.Items))
	res.Steady, res.SteadyFromSamples = steady.figures(res), ok
	res.ItemsPerSec = float64(m.Items) / res.Seconds
	res.WorstSecondRU, res.FirstSecondRU = smp.worstSecond()
	if src != nil {
		res.MaxSourceRU = o.MaxSourceRU
		res.WorstSourceSecondRU, res.FirstSourceSecondRU = src.worstSecond()
	}
	if m.Items > 0 {
		res.CPUPer10kItems = res.CPUSeconds / float64(m.Items) * 10_000
	}
	return res, nil
}
