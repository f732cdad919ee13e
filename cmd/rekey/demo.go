package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/rekey-dev/rekey/internal/cosmos"
	"github.com/rekey-dev/rekey/internal/emulator"
	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/migrate/cutover"
	"github.com/rekey-dev/rekey/migrate/pacing"
	"github.com/rekey-dev/rekey/migrate/pipeline"
	"github.com/rekey-dev/rekey/migrate/verify"
	"github.com/rekey-dev/rekey/transform"
)

type demoOptions struct {
	items    int
	hotShare float64
	loadFor  time.Duration
}

// The demo's account layout: a source keyed on a low-cardinality field with
// one dominant value, and the synthetic key rekey moves it to.
const (
	demoDB        = "shop"
	demoSource    = "orders"
	demoTarget    = "orders-by-tenant-month"
	demoRU        = 24_000 // four physical partitions of 6,000 RU/s
	demoKey       = "/pk={tenantId}-{createdAt|yyyyMM}"
	demoLoadShare = 0.5 // the application load, as a share of the throughput
)

func newDemoCommand() *cobra.Command {
	o := &demoOptions{}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Re-key a container with a hot partition, end to end, on the embedded emulator",
		Long: `Start the embedded Cosmos DB emulator, create a container partitioned on a
low-cardinality field (region) where one value holds most of the data, show its
hot physical partition throttling an application load that uses only half the
container's throughput, then migrate it to a synthetic key
(/pk={tenantId}-{createdAt|yyyyMM}) with rekey run, prove the copy with rekey
verify, switch with rekey cutover, and show the new container's even
distribution under the same load. No Azure account needed; about half a minute.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.items < 100 || o.hotShare <= 0 || o.hotShare >= 1 || o.loadFor <= 0 {
				return withExitCode(ExitError, fmt.Errorf("--items must be at least 100, --hot-share in (0, 1), --load-for positive"))
			}
			return runDemo(cmd.Context(), cmd.OutOrStdout(), o)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.items, "items", 4000, "orders in the source container")
	f.Float64Var(&o.hotShare, "hot-share", 0.85, "share of the orders in the dominant region")
	f.DurationVar(&o.loadFor, "load-for", 3*time.Second, "how long each application load runs")
	return cmd
}

func runDemo(ctx context.Context, out io.Writer, o *demoOptions) error {
	start := time.Now()
	srv, err := emulator.Start(emulator.ServerOptions{})
	if err != nil {
		return withExitCode(ExitRunFailed, err)
	}
	defer srv.Close()
	dir, err := os.MkdirTemp("", "rekey-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	client, err := cosmos.NewClient(ctx, cosmos.Config{Endpoint: srv.Endpoint(), AccountKey: srv.Key(), Insecure: true, Priority: "high"})
	if err != nil {
		return err
	}
	defer client.Close()
	d := &demo{out: out, srv: srv, client: client, opts: o}

	fmt.Fprintf(out, "rekey demo: re-key a container with a hot partition (embedded emulator at %s)\n\n", srv.Endpoint())
	if err := d.seed(ctx); err != nil {
		return withExitCode(ExitRunFailed, err)
	}
	d.step("1", "The source %s/%s is partitioned on /region, %d RU/s over %d physical partitions. %d orders, %.0f%% of them in one region:",
		demoDB, demoSource, demoRU, len(d.metrics(demoSource).Partitions), o.items, 100*o.hotShare)
	d.distribution(demoSource)

	d.step("2", "An application writes new orders at %.0f RU/s, half of what the container has, for %s:", demoLoadShare*demoRU, o.loadFor)
	if err := d.load(ctx, demoSource, "/region"); err != nil {
		return withExitCode(ExitRunFailed, err)
	}

	mig := &migrationFlags{
		conn:   connectionFlags{endpoint: srv.Endpoint(), accountKey: srv.Key(), insecure: true, priority: "low"},
		source: demoDB + "/" + demoSource, target: demoDB + "/" + demoTarget,
		keys: []string{demoKey}, state: filepath.Join(dir, "state"),
	}
	cli := fmt.Sprintf("--source %s --target %s --key '%s'", mig.source, mig.target, demoKey)
	d.step("3", "rekey run %s --create-target --target-throughput %d --until-caught-up", cli, demoRU)
	mg, err := mig.connect(ctx)
	if err != nil {
		return exitFor(err)
	}
	defer mg.close()
	if _, err := pipeline.EnsureTarget(ctx, mg.dstClient, mg.dstRef, migrate.TargetDefinition(mg.tr.TargetPaths()), pipeline.TargetOptions{Create: true, ManualRU: demoRU}); err != nil {
		return withExitCode(ExitRunFailed, err)
	}
	if err := mg.openState(ctx, time.Time{}); err != nil {
		return exitFor(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	writes := mg.writePath(ctx, pacing.Config{}, quiet)
	runner := &pipeline.Runner{Source: mg.source, Transformer: mg.tr, Store: mg.store, DeadLetters: mg.dead, Writes: writes}
	sum, err := runner.Run(ctx, pipeline.RunConfig{UntilCaughtUp: true, PollInterval: 100 * time.Millisecond, Owner: "demo"})
	if err != nil {
		return withExitCode(ExitRunFailed, err)
	}
	s := sum.Stats
	fmt.Fprintf(out, "   copied %d items (the %d orders and the %d the application wrote) in %s (%.0f items/s) across %d feed ranges, %.0f RU on the target, %d dead letters\n",
		s.Written(), o.items, s.Written()-int64(o.items), s.Elapsed.Round(time.Millisecond), float64(s.Written())/s.Elapsed.Seconds(), sum.Ranges, s.TargetRU(), sum.DeadLetters)

	d.step("4", "rekey verify %s", cli)
	verifier := &verify.Verifier{Source: mg.source, Target: mg.target, Writer: mg.target, Writes: writes, Transformer: mg.tr, DeadLetters: mg.dead, Defaults: mg.defaults, Log: quiet}
	rep, err := verifier.Verify(ctx, verify.Config{RecheckDelay: -1})
	if err != nil {
		return withExitCode(ExitVerifyFailed, err)
	}
	fmt.Fprintf(out, "   %d of %d source items are in the target under their new key with the same content; %d differences (digest %.16s...)\n",
		rep.Matched, rep.SourceItems, rep.Differences(), rep.Digest)

	d.step("5", "rekey cutover %s --quiet-period 1s", cli)
	cut := &cutover.Gate{Runner: runner, Verifier: verifier}
	crep, err := cut.Run(ctx, cutover.Config{QuietPeriod: time.Second, Timeout: time.Minute,
		Run: pipeline.RunConfig{PollInterval: 100 * time.Millisecond, Owner: "demo"}, Verify: verify.Config{RecheckDelay: -1}})
	if err != nil {
		return withExitCode(ExitRunFailed, err)
	}
	fmt.Fprintf(out, "   drained, quiet for %s, verified %d items, cutover recorded at %s\n", crep.QuietFor.Round(100*time.Millisecond), crep.Verify.Matched, crep.At.Format(time.RFC3339))

	d.step("6", "The target %s/%s, partitioned on /pk = tenant and month, %d physical partitions:", demoDB, demoTarget, len(d.metrics(demoTarget).Partitions))
	d.distribution(demoTarget)
	d.step("7", "The same application load on the target:")
	if err := d.load(ctx, demoTarget, "/pk"); err != nil {
		return withExitCode(ExitRunFailed, err)
	}
	fmt.Fprintf(out, "\ndone in %s. On your own account: the same rekey run, verify and cutover commands with\n--endpoint https://ACCOUNT.documents.azure.com:443/ and REKEY_ACCOUNT_KEY (or Entra ID); see the README.\n", time.Since(start).Round(time.Second))
	return nil
}

// demo holds what the steps share.
type demo struct {
	out    io.Writer
	srv    *emulator.Server
	client *cosmos.Client
	opts   *demoOptions
	nextID atomic.Int64 // ids of the orders the application load writes
}

func (d *demo) step(n, format string, args ...any) {
	fmt.Fprintf(d.out, "\n%s. %s\n", n, fmt.Sprintf(format, args...))
}

func (d *demo) metrics(coll string) emulator.ContainerMetrics {
	m, _ := d.srv.ContainerMetrics(demoDB, coll)
	return m
}

// demoOrder is order i of the dataset: most in the hot region, tenants and
// months spread.
func demoOrder(i int, hotShare float64) map[string]any {
	region := "westeurope"
	if float64(i%100) >= 100*hotShare {
		region = []string{"eastus", "japaneast", "brazilsouth", "australiaeast"}[i%4]
	}
	return map[string]any{
		"id":        fmt.Sprintf("order-%06d", i),
		"region":    region,
		"tenantId":  fmt.Sprintf("tenant-%02d", (i*7)%40),
		"createdAt": time.Date(2025, time.Month(1+i%12), 1+i%28, i%24, 0, 0, 0, time.UTC).Format(time.RFC3339),
		"status":    []string{"open", "paid", "shipped"}[i%3],
		"total":     float64(i%997) + 0.99,
		"lines":     []map[string]any{{"sku": fmt.Sprintf("SKU-%d", i%50), "qty": 1 + i%4}},
	}
}

// seed creates the source and loads it with transactional batches.
func (d *demo) seed(ctx context.Context) error {
	def := migrate.Definition{Paths: []string{"/region"}, Kind: "Hash", Version: 2}
	if err := d.client.CreateContainer(ctx, demoDB, demoSource, def, demoRU, 0); err != nil {
		return fmt.Errorf("create the source: %w", err)
	}
	src := d.client.Container(demoDB, demoSource)
	groups := map[string][][]byte{}
	for i := 0; i < d.opts.items; i++ {
		o := demoOrder(i, d.opts.hotShare)
		b, _ := json.Marshal(o)
		groups[o["region"].(string)] = append(groups[o["region"].(string)], b)
	}
	for region, bodies := range groups {
		for len(bodies) > 0 {
			n := min(len(bodies), cosmos.MaxBatchItems)
			err := migrate.Retry(ctx, func() error {
				res, err := src.CreateBatch(ctx, migrate.Key{transform.StringValue(region)}, bodies[:n])
				if err == nil && !res.Committed {
					err = fmt.Errorf("batch not committed: %v", res.Statuses)
				}
				return err
			})
			if err != nil {
				return fmt.Errorf("load the source: %w", err)
			}
			bodies = bodies[n:]
		}
	}
	return nil
}

// distribution prints each physical partition's share of the items.
func (d *demo) distribution(coll string) {
	m := d.metrics(coll)
	fmt.Fprintf(d.out, "   %-9s %-26s %7s %6s\n", "partition", "key range", "items", "share")
	for _, p := range m.Partitions {
		share := 0.0
		if m.Items > 0 {
			share = float64(p.Items) / float64(m.Items)
		}
		fmt.Fprintf(d.out, "   %-9s %-26s %7d %5.0f%%  %s\n", p.ID, shortRange(p.MinInclusive, p.MaxExclusive), p.Items, 100*share, bar(share, 40))
	}
}

func shortRange(min, max string) string {
	short := func(s string) string {
		if s == "" {
			return `""`
		}
		if len(s) > 8 {
			return s[:8] + "…"
		}
		return s
	}
	return "[" + short(min) + ", " + short(max) + ")"
}

func bar(share float64, width int) string {
	n := int(share*float64(width) + 0.5)
	if n == 0 && share > 0 {
		return "▏"
	}
	return strings.Repeat("█", n)
}

// seedDemoData creates the demo's source container in a running emulator,
// for trying the commands by hand.
func seedDemoData(ctx context.Context, srv *emulator.Server, items int) error {
	client, err := cosmos.NewClient(ctx, cosmos.Config{Endpoint: srv.Endpoint(), AccountKey: srv.Key(), Insecure: true, Priority: "high"})
	if err != nil {
		return err
	}
	defer client.Close()
	d := &demo{client: client, srv: srv, opts: &demoOptions{items: items, hotShare: 0.85}}
	return d.seed(ctx)
}
