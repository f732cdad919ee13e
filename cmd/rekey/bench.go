package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/rekey-dev/rekey/internal/bench"
	"github.com/rekey-dev/rekey/migrate/pacing"
	"github.com/spf13/cobra"
)

// benchOptions are the flags of `rekey bench`, which the command binds into
// bench.Options; the harness is internal/bench.
type benchOptions struct {
	items       int
	itemSize    int
	targetRU    int
	sourceRU    int
	maxRU       float64
	maxSourceRU float64
	skew        float64
	naive       bool
	keys        string
	bulk        bool
	latency     time.Duration
	controller  string
	maxConc     int
	naiveWork   int
	timeout     time.Duration
	output      string
	cpuProfile  string
}

func newBenchCommand() *cobra.Command {
	o := &benchOptions{}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure rekey's writer against a throttled target on the local emulator, beside a naive writer",
		Long: `Start the emulator as a child process (so this process's CPU time and memory are
the migrating client's alone), seed a source container with --items items of
--item-size bytes keyed on /tenant, and migrate them to a new key (--keys:
unique, /customerId; shared, /pk={tenant}-{createdAt|yyyyMM}, 50 items a
value), with --latency added to every request after the seed:

  rekey   a migration (rekey run --until-caught-up) into a new target of
          --target-ru RU/s (one physical partition per 6,000 RU/s), in bulk
          requests or not (--bulk), with its per-partition congestion control
          (--controller), --max-ru and --max-concurrency;
  naive   with --naive (the default), the same copy by hand: a query over the
          source and --naive-workers workers doing point upserts into a
          second new target with the SDK's default retry policy (429 retried
          three times, then the item is lost) and no priority level.

For each it reports items/s, the target's RU/s (from the emulator's counters)
over the provisioned RU/s or over --max-ru, the share of requests answered 429,
client CPU seconds per 10,000 items and the peak resident memory. "Steady"
figures leave out the first and last 10% of the items (the slow start and the
tail); "worst second" is the most the target spent in any second, from
samples a tenth of a second apart (with --max-source-ru, the same of the
source's reads by rekey). --skew puts that share of the items on one
hot customer: then "hottest partition" is the busiest partition's RU/s over
its budget, which bounds what the whole can do with those keys.

Everything listens on loopback only; --timeout bounds the whole run.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts, err := o.options()
			if err != nil {
				return withExitCode(ExitError, err)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), o.timeout)
			defer cancel()
			rep, err := bench.Run(ctx, opts, slog.Default())
			if err != nil {
				return withExitCode(ExitRunFailed, err)
			}
			return rep.Write(cmd.OutOrStdout(), o.output)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.items, "items", 100_000, "items to migrate")
	f.IntVar(&o.itemSize, "item-size", 1024, "bytes per item")
	f.IntVar(&o.targetRU, "target-ru", 20_000, "provisioned RU/s of each target (one physical partition per 6,000)")
	f.IntVar(&o.sourceRU, "source-ru", 40_000, "provisioned RU/s of the source")
	f.Float64Var(&o.maxRU, "max-ru", 0, "rekey's --max-ru (0: no cap)")
	f.Float64Var(&o.maxSourceRU, "max-source-ru", 0, "rekey's --max-source-ru (0: no cap); the source's worst second is then reported")
	f.Float64Var(&o.skew, "skew", 0, "share of the items on one hot target key, 0 to 1")
	f.BoolVar(&o.naive, "naive", true, "also run the naive writer")
	f.StringVar(&o.keys, "keys", bench.KeysUnique, "the new key: unique (/customerId, a value per item) or shared (/pk={tenant}-{createdAt|yyyyMM}, a value per 50 items)")
	f.BoolVar(&o.bulk, "bulk", true, "rekey's --bulk: bulk requests (false: one request per item, transactional batches per key)")
	f.DurationVar(&o.latency, "latency", 0, "latency the emulator adds to every request once the source is seeded, as a distant target has (e.g. 40ms)")
	f.StringVar(&o.controller, "controller", "paced", "rekey's congestion control: paced, windowed (the .NET bulk rule) or fixed (no per-partition control)")
	f.IntVar(&o.maxConc, "max-concurrency", 0, "rekey's --max-concurrency (0: none)")
	f.IntVar(&o.naiveWork, "naive-workers", pacing.FixedConcurrency, "the naive writer's workers")
	f.DurationVar(&o.timeout, "timeout", 30*time.Minute, "give up after this long")
	f.StringVarP(&o.output, "output", "o", "text", "output format: text or json")
	f.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of rekey's migration to this file (go tool pprof)")
	return cmd
}

// options binds the flags into the harness's options, refusing what is
// invalid with the flag's name.
func (o *benchOptions) options() (bench.Options, error) {
	if o.output != "text" && o.output != "json" {
		return bench.Options{}, fmt.Errorf("-o %q: want text or json", o.output)
	}
	mode, err := parseController(o.controller)
	if err != nil {
		return bench.Options{}, err
	}
	opts := bench.Options{
		Items: o.items, ItemSize: o.itemSize, TargetRU: o.targetRU, SourceRU: o.sourceRU, MaxRU: o.maxRU, MaxSourceRU: o.maxSourceRU,
		Skew: o.skew, Naive: o.naive, Keys: o.keys, Bulk: o.bulk, Latency: o.latency, Controller: mode,
		MaxConcurrency: o.maxConc, NaiveWorkers: o.naiveWork,
		CPUProfile: o.cpuProfile,
	}
	return opts, opts.Validate()
}

// parseController reads --controller.
func parseController(s string) (pacing.ControllerMode, error) {
	switch s {
	case "paced":
		return pacing.ControllerPaced, nil
	case "windowed":
		return pacing.ControllerWindowed, nil
	case "fixed":
		return pacing.ControllerFixed, nil
	}
	return 0, fmt.Errorf("--controller %q: want paced, windowed or fixed", s)
}
