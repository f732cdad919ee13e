package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/rekey-dev/rekey/internal/cosmos"
	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/transform"
)

// The benchmark's containers, all in one database of the child emulator.
const (
	benchDB         = "bench"
	benchSourceColl = "source"
	benchRekeyColl  = "rekey"
	benchNaiveColl  = "naive"
)

type benchOptions struct {
	items       int
	itemSize    int
	targetRU    int
	sourceRU    int
	maxRU       float64
	skew        float64
	naive       bool
	controller  string
	concurrency int
	timeout     time.Duration
	output      string
}

func newBenchCommand() *cobra.Command {
	o := &benchOptions{}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure rekey's writer against a throttled target on the local emulator, beside a naive writer",
		Long: `Start the emulator as a child process (so this process's CPU time and memory are
the migrating client's alone), seed a source container with --items items of
--item-size bytes keyed on /tenant, and migrate them to /customerId:

  rekey   a migration (rekey run --until-caught-up) into a new target of
          --target-ru RU/s (one physical partition per 6,000 RU/s), with its
          per-partition congestion control (--controller) and --max-ru;
  naive   with --naive (the default), the same copy by hand: a query over the
          source and --concurrency workers doing point upserts into a second
          new target with the SDK's default retry policy (429 retried three
          times, then the item is lost) and no priority level.

For each it reports items/s, the target's RU/s (from the emulator's counters)
over the provisioned RU/s or over --max-ru, the share of requests answered 429,
client CPU seconds per 10,000 items and the peak resident memory. "Steady"
figures leave out the first and last 10% of the items (the slow start and the
tail). --skew puts that share of the items on one hot customer: then "hottest
partition" is the busiest partition's RU/s over its budget, which bounds what
the whole can do with those keys.

Everything listens on loopback only; --timeout bounds the whole run.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.validate(); err != nil {
				return withExitCode(ExitError, err)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), o.timeout)
			defer cancel()
			rep, err := runBench(ctx, o, slog.Default())
			if err != nil {
				return withExitCode(ExitRunFailed, err)
			}
			return rep.write(cmd.OutOrStdout(), o.output)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.items, "items", 100_000, "items to migrate")
	f.IntVar(&o.itemSize, "item-size", 1024, "bytes per item")
	f.IntVar(&o.targetRU, "target-ru", 20_000, "provisioned RU/s of each target (one physical partition per 6,000)")
	f.IntVar(&o.sourceRU, "source-ru", 40_000, "provisioned RU/s of the source")
	f.Float64Var(&o.maxRU, "max-ru", 0, "rekey's --max-ru (0: no cap)")
	f.Float64Var(&o.skew, "skew", 0, "share of the items on one hot target key, 0 to 1")
	f.BoolVar(&o.naive, "naive", true, "also run the naive writer")
	f.StringVar(&o.controller, "controller", "paced", "rekey's congestion control: paced, windowed (the .NET bulk rule) or fixed (no per-range control)")
	f.IntVar(&o.concurrency, "concurrency", migrate.DefaultMaxConcurrency, "rekey's --max-concurrency and the naive writer's workers")
	f.DurationVar(&o.timeout, "timeout", 30*time.Minute, "give up after this long")
	f.StringVarP(&o.output, "output", "o", "text", "output format: text or json")
	return cmd
}

func (o *benchOptions) validate() error {
	switch {
	case o.items < 1:
		return fmt.Errorf("--items %d: want at least 1", o.items)
	case o.itemSize < 100 || o.itemSize > 1<<20:
		return fmt.Errorf("--item-size %d: want 100 to 1048576 bytes", o.itemSize)
	case o.targetRU < 400 || o.sourceRU < 400:
		return fmt.Errorf("--target-ru and --source-ru: want at least 400")
	case o.maxRU < 0:
		return fmt.Errorf("--max-ru %v: must not be negative", o.maxRU)
	case o.skew < 0 || o.skew > 1:
		return fmt.Errorf("--skew %v: want 0 to 1", o.skew)
	case o.concurrency < 1 || o.concurrency > 4096:
		return fmt.Errorf("--concurrency %d: want 1..4096", o.concurrency)
	case o.output != "text" && o.output != "json":
		return fmt.Errorf("-o %q: want text or json", o.output)
	}
	if _, err := parseController(o.controller); err != nil {
		return err
	}
	return nil
}

func parseController(s string) (mode migrate.ControllerMode, err error) {
	switch s {
	case "paced":
		return migrate.ControllerPaced, nil
	case "windowed":
		return migrate.ControllerWindowed, nil
	case "fixed":
		return migrate.ControllerPaced, nil // unused: fixed has no controller
	}
	return 0, fmt.Errorf("--controller %q: want paced, windowed or fixed", s)
}

// runBench runs the whole benchmark: emulator, seed, rekey, naive.
func runBench(ctx context.Context, o *benchOptions, log *slog.Logger) (*benchReport, error) {
	emu, err := startBenchEmulator(ctx)
	if err != nil {
		return nil, err
	}
	defer emu.stop()
	admin, err := cosmos.NewClient(ctx, emu.config(cosmos.PriorityHigh))
	if err != nil {
		return nil, err
	}
	defer admin.Close()
	rep := &benchReport{Options: *o, Endpoint: emu.endpoint}

	gen := benchItems{n: o.items, size: o.itemSize, skew: o.skew}
	if err := admin.CreateContainer(ctx, benchDB, benchSourceColl, migrate.TargetDefinition([]string{"/tenant"}), o.sourceRU, 0); err != nil {
		return nil, err
	}
	start := time.Now()
	log.Info("seeding the source", "items", o.items, "itemSize", o.itemSize)
	if err := gen.seed(ctx, admin.Container(benchDB, benchSourceColl), 16, log); err != nil {
		return nil, fmt.Errorf("seed the source: %w", err)
	}
	rep.SeedSeconds = time.Since(start).Seconds()

	res, err := benchRekey(ctx, o, emu, admin, log)
	if err != nil {
		return nil, err
	}
	rep.Results = append(rep.Results, res)
	if o.naive {
		res, err := benchNaiveCopy(ctx, o, emu, admin, log)
		if err != nil {
			return nil, err
		}
		rep.Results = append(rep.Results, res)
	}
	return rep, nil
}

// benchRekey migrates the source with the Runner, as `rekey run
// --until-caught-up` does, and measures it.
func benchRekey(ctx context.Context, o *benchOptions, emu *benchEmulator, admin *cosmos.Client, log *slog.Logger) (benchResult, error) {
	if err := admin.CreateContainer(ctx, benchDB, benchRekeyColl, migrate.TargetDefinition([]string{"/customerId"}), o.targetRU, 0); err != nil {
		return benchResult{}, err
	}
	client, err := cosmos.NewClient(ctx, emu.config(cosmos.PriorityLow))
	if err != nil {
		return benchResult{}, err
	}
	defer client.Close()
	dir, err := os.MkdirTemp("", "rekey-bench-")
	if err != nil {
		return benchResult{}, err
	}
	defer os.RemoveAll(dir)
	store, err := lease.OpenFile(filepath.Join(dir, "state"))
	if err != nil {
		return benchResult{}, err
	}
	defer store.Close()
	dead, err := migrate.OpenDeadLetters(filepath.Join(dir, "deadletter.jsonl"))
	if err != nil {
		return benchResult{}, err
	}
	defer dead.Close()
	tr, err := benchTransformer()
	if err != nil {
		return benchResult{}, err
	}
	source := client.Container(benchDB, benchSourceColl)
	ranges, err := source.FeedRanges(ctx)
	if err != nil {
		return benchResult{}, err
	}
	meta := migrate.NewMeta(benchSourceColl, benchRekeyColl, tr, time.Time{})
	meta.Ranges = migrate.LeaseRanges(ranges)
	if _, err := migrate.OpenMeta(ctx, store, meta, dir); err != nil {
		return benchResult{}, err
	}
	target := client.Container(benchDB, benchRekeyColl)
	cfg := migrate.RunConfig{UntilCaughtUp: true, MaxConcurrency: o.concurrency, MaxRU: o.maxRU, PollInterval: 100 * time.Millisecond, Owner: "bench"}
	mode, _ := parseController(o.controller)
	fc := newFlowControlMode(target, cfg, mode, targetThroughput(ctx, admin, migrate.ContainerRef{Database: benchDB, Container: benchRekeyColl}), log)
	stats := &migrate.Stats{}
	r := &migrate.Runner{
		Source: source, Target: target, Transformer: tr, Store: store,
		DeadLetters: dead, Log: log, Stats: stats,
		Limiter: fc.limiter, TargetBudget: fc.target, SourceBudget: fc.source,
	}
	if o.controller == "fixed" {
		r.Limiter = migrate.NewFixedLimiter(o.concurrency)
	}
	name := "rekey (" + o.controller + ")"
	var sum migrate.Summary
	describe := fc.describe
	if o.controller == "fixed" {
		describe = nil
	}
	res, err := measure(ctx, o, emu, benchRekeyColl, name, func() int64 { return stats.Snapshot().Written() }, describe, log, func(ctx context.Context) error {
		var err error
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

// benchNaiveCopy copies the source by hand into a second target and
// measures it.
func benchNaiveCopy(ctx context.Context, o *benchOptions, emu *benchEmulator, admin *cosmos.Client, log *slog.Logger) (benchResult, error) {
	if err := admin.CreateContainer(ctx, benchDB, benchNaiveColl, migrate.TargetDefinition([]string{"/customerId"}), o.targetRU, 0); err != nil {
		return benchResult{}, err
	}
	n, err := cosmos.NewNaiveCopier(emu.config(""))
	if err != nil {
		return benchResult{}, err
	}
	defer n.Close()
	tr, err := benchTransformer()
	if err != nil {
		return benchResult{}, err
	}
	convert := func(item []byte) (migrate.Key, []byte, error) {
		res, err := tr.Apply(item)
		return migrate.Key(res.Key), res.Item, err
	}
	var written atomic.Int64
	var st cosmos.NaiveStats
	res, err := measure(ctx, o, emu, benchNaiveColl, "naive", written.Load, nil, log, func(ctx context.Context) error {
		var err error
		st, err = n.Copy(ctx, migrate.ContainerRef{Database: benchDB, Container: benchSourceColl},
			migrate.ContainerRef{Database: benchDB, Container: benchNaiveColl}, o.concurrency, convert, &written)
		return err
	})
	if err != nil {
		return res, fmt.Errorf("naive copy: %w", err)
	}
	res.Written, res.Lost = st.Written, st.Lost
	res.ClientRequests, res.ClientThrottled = st.Requests, st.Throttled
	return res, nil
}

// benchTransformer is the benchmark's key spec: /tenant to /customerId.
func benchTransformer() (*transform.Transformer, error) {
	spec, err := transform.ParseSpec([]string{"/customerId"})
	if err != nil {
		return nil, err
	}
	return transform.New(spec, []string{"/tenant"})
}

// measure runs one writer while sampling the emulator's counters of its
// target and this process's CPU time and memory. describe, when not nil,
// adds the writer's flow control to the progress log.
func measure(ctx context.Context, o *benchOptions, emu *benchEmulator, coll, name string, written func() int64, describe func() string, log *slog.Logger, run func(context.Context) error) (benchResult, error) {
	log.Info("benchmark writer starting", "writer", name)
	smp := &sampler{emu: emu, db: benchDB, coll: coll, written: written}
	sctx, stopSampling := context.WithCancel(ctx)
	sampled := make(chan struct{})
	go func() { smp.run(sctx, 250*time.Millisecond); close(sampled) }()
	progress := time.NewTicker(5 * time.Second)
	defer progress.Stop()
	go func() {
		for {
			select {
			case <-sctx.Done():
				return
			case <-progress.C:
				args := []any{"writer", name, "written", written(), "of", o.items}
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
	if err != nil {
		return benchResult{}, err
	}
	m, err := emu.metrics(ctx, benchDB, coll)
	if err != nil {
		return benchResult{}, err
	}
	res := benchResult{
		Writer: name, Seconds: elapsed.Seconds(), InTarget: int64(m.Items),
		ProvisionedRU: float64(m.ThroughputRU), Partitions: partitionsOf(m), MaxRU: o.maxRU,
		CPUSeconds: use.cpu.Seconds(), PeakRSSMB: float64(use.peakRSS) / (1 << 20), PeakRSSKind: use.peakKind,
	}
	res.Overall = smp.overall().figures(res)
	steady, ok := smp.steady(int64(o.items))
	res.Steady, res.SteadyFromSamples = steady.figures(res), ok
	res.ItemsPerSec = float64(m.Items) / res.Seconds
	if m.Items > 0 {
		res.CPUPer10kItems = res.CPUSeconds / float64(m.Items) * 10_000
	}
	return res, nil
}
