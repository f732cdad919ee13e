package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rekey-dev/rekey/internal/cosmos"
	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/migrate/pipeline"
	"github.com/rekey-dev/rekey/migrate/plan"
	"github.com/rekey-dev/rekey/transform"
)

// ExitPlanWarnings is `rekey plan`'s exit code when the key would leave
// items behind, make a hot physical partition or a logical partition over
// 20 GB.
const ExitPlanWarnings = 1

type planOptions struct {
	mig              migrationFlags
	sample           int
	targetThroughput int
	targetAutoscale  int
	createTarget     bool
	output           string
	settings         settingsFlags
}

func newPlanCommand() *cobra.Command {
	o := &planOptions{}
	cmd := &cobra.Command{
		Use:   "plan --source DB/CONTAINER --key SPEC [--target-throughput N] [--create-target --target DB/CONTAINER]",
		Short: "Try a key spec on the source before migrating: distribution, failures, cost, duration",
		Long: `Sample the source (spread over its feed ranges), transform the sample with the
key spec, and show what the migration would look like: the items the spec
cannot transform (they would be dead-lettered), the new key's cardinality and
largest values with their estimated logical partition sizes (20 GB is the
limit), how the items would spread over the target's physical partitions at
--target-throughput (one per 6,000 RU/s; the source's throughput by default),
and the RU and time the copy needs. --create-target creates the target with
the spec's key definition (MultiHash for several paths, version 2) or checks an
existing one, so re-running is safe.

It also shows what the application must write once it switches to the target
(the new key paths, each synthetic key's template, a sampled item before and
after), and which of the source's settings a target created by --create-target
gets: its default TTL, indexing policy, computed properties and the other
settings the service takes at creation are carried; unique keys need
--unique-keys copy|drop (a unique key is unique only within a logical
partition, so under the new key it means something else); a setting rekey
cannot carry is named and needs --drop-setting NAME.

Exit codes: 0 the plan looks sound; 1 it found a problem (untransformable
items, a hot physical partition, a logical partition estimated over 20 GB, a
setting that needs --unique-keys or --drop-setting); 2 bad flags or
configuration, a refused key, a missing container; 3 it could not complete.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runPlan(cmd, o)
		},
	}
	f := cmd.Flags()
	o.mig.register(f)
	f.IntVar(&o.sample, "sample", 10_000, "source items to sample")
	f.IntVar(&o.targetThroughput, "target-throughput", 0, "planned manual RU/s of the target (default: the source's)")
	f.IntVar(&o.targetAutoscale, "target-autoscale-max", 0, "planned autoscale maximum RU/s of the target")
	f.BoolVar(&o.createTarget, "create-target", false, "create the target container with the source's settings (needs --target)")
	o.settings.register(f)
	f.StringVarP(&o.output, "output", "o", "table", "output format: table or json")
	return cmd
}

func runPlan(cmd *cobra.Command, o *planOptions) error {
	ctx := cmd.Context()
	if o.output != "table" && o.output != "json" {
		return withExitCode(ExitError, fmt.Errorf("-o %q: want table or json", o.output))
	}
	if o.createTarget && o.mig.target == "" {
		return withExitCode(ExitError, errors.New("--create-target needs --target DATABASE/CONTAINER"))
	}
	if err := o.settings.choice().Validate(); err != nil {
		return withExitCode(ExitError, err)
	}
	src, err := migrate.ParseContainerRef(o.mig.source)
	if err != nil {
		return withExitCode(ExitError, fmt.Errorf("--source %w", err))
	}
	spec, err := transform.ParseSpec(o.mig.keys)
	if err != nil {
		return withExitCode(ExitError, fmt.Errorf("--key: %w", err))
	}
	client, err := cosmos.NewClient(ctx, o.mig.conn.source())
	if err != nil {
		return withExitCode(ExitError, fmt.Errorf("connect: %w", err))
	}
	defer client.Close()
	source := client.Container(src.Database, src.Container)
	var def migrate.Definition
	if err := migrate.Retry(ctx, func() error {
		var err error
		def, err = source.Definition(ctx)
		return err
	}); err != nil {
		return exitFor(fmt.Errorf("read the source container %s: %w", src, err))
	}
	tr, err := transform.New(spec, def.Paths)
	if err != nil {
		return withExitCode(ExitError, err)
	}
	ru := max(o.targetThroughput, o.targetAutoscale)
	if ru == 0 {
		tp, err := client.ReadThroughput(ctx, src.Database, src.Container)
		if err != nil {
			return exitFor(fmt.Errorf("read the source's throughput (give --target-throughput): %w", err))
		}
		ru = max(tp.Manual, tp.AutoscaleMax)
	}
	est, err := plan.Estimate(ctx, source, tr, plan.Config{Sample: o.sample, TargetRU: ru})
	if err != nil {
		return exitFor(err)
	}
	settings, err := sourceSettings(ctx, client, src, o.settings.choice(), def.Paths, tr.TargetPaths())
	if err != nil {
		return exitFor(err)
	}
	est.Settings = &settings
	if o.createTarget {
		dst, err := migrate.ParseContainerRef(o.mig.target)
		if err != nil {
			return withExitCode(ExitError, fmt.Errorf("--target %w", err))
		}
		dstClient, err := cosmos.NewClient(ctx, o.mig.conn.target())
		if err != nil {
			return withExitCode(ExitError, fmt.Errorf("connect to the target account: %w", err))
		}
		defer dstClient.Close()
		created, err := pipeline.EnsureTarget(ctx, dstClient, dst, migrate.TargetDefinition(tr.TargetPaths()),
			pipeline.TargetOptions{Create: true, ManualRU: o.targetThroughput, AutoscaleMaxRU: o.targetAutoscale,
				Settings: carriedSettings(client, src, o.settings.choice(), def.Paths, tr.TargetPaths())})
		if err != nil {
			return withExitCode(ExitError, err)
		}
		slog.Info("target container ready", "target", dst.String(), "created", created, "paths", tr.TargetPaths())
	}
	if o.output == "json" {
		enc := json.NewEncoder(cmd.OutOrStdout())
		enc.SetIndent("", "  ")
		if err := enc.Encode(est); err != nil {
			return err
		}
	} else {
		printPlan(cmd.OutOrStdout(), src, tr, est)
	}
	if est.FailureShare > 0 || est.HotPartitions > 0 || est.OversizedKeys > 0 || settings.Err() != nil {
		return withExitCode(ExitPlanWarnings, nil)
	}
	return nil
}

func printPlan(w io.Writer, src migrate.ContainerRef, tr *transform.Transformer, p *plan.Plan) {
	fmt.Fprintf(w, "rekey plan: %s (%d items, %.0f bytes each on average) -> key %s\n", src, p.SourceItems, p.AvgItemBytes, strings.Join(tr.Spec().Strings(), " "))
	fmt.Fprintf(w, "sampled %d items\n", p.Sampled)
	if len(p.Failures) == 0 {
		fmt.Fprintln(w, "  every sampled item transforms")
	} else {
		kinds := make([]string, 0, len(p.Failures))
		for k := range p.Failures {
			kinds = append(kinds, k)
		}
		sort.Strings(kinds)
		fmt.Fprintf(w, "  %.1f%% cannot be transformed and would be dead-lettered:\n", 100*p.FailureShare)
		for _, k := range kinds {
			fmt.Fprintf(w, "    %-16s %d\n", k, p.Failures[k])
		}
		for _, e := range p.Examples {
			fmt.Fprintf(w, "    e.g. %s\n", e)
		}
	}
	fmt.Fprintf(w, "new key: %d distinct values in the sample; the largest:\n", p.DistinctKeys)
	for _, k := range p.TopKeys {
		fmt.Fprintf(w, "  %-40s %5.1f%%  ~%s at full size\n", k.Key, 100*k.Share, k.EstimatedSize)
	}
	if p.OversizedKeys > 0 {
		fmt.Fprintf(w, "  WARNING: %d key values would exceed the 20 GB logical partition limit: add a component (a hierarchical key, or hash:N)\n", p.OversizedKeys)
	}
	fmt.Fprintf(w, "target at %d RU/s: %d physical partitions\n", p.TargetRU, len(p.Partitions))
	for _, part := range p.Partitions {
		fmt.Fprintf(w, "  %-26s %5.1f%%  %s\n", shortRange(part.Min, part.Max), 100*part.Share, bar(part.Share, 40))
	}
	if p.HotPartitions > 0 {
		fmt.Fprintf(w, "  WARNING: %d physical partitions would hold more than twice their share: the new key is skewed\n", p.HotPartitions)
	} else {
		fmt.Fprintln(w, "  no hot partition")
	}
	fmt.Fprintf(w, "copy: ~%.0f RU, ~%s at 90%% of %d RU/s (plus the source's ~1 RU per item read)\n", p.CopyRU, (time.Duration(p.CopySeconds) * time.Second).String(), p.TargetRU)
	if p.Application != nil {
		fmt.Fprintln(w, "after the cutover the application writes the new key:")
		printApplicationWrites(w, "  ", p.Application)
	}
	if p.Settings != nil {
		printSettings(w, *p.Settings)
	}
}
