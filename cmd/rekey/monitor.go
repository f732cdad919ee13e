package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/spf13/pflag"

	"github.com/rekey-dev/rekey/internal/cosmos"
	"github.com/rekey-dev/rekey/internal/metrics"
	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/migrate/pacing"
	"github.com/rekey-dev/rekey/migrate/pipeline"
	"github.com/rekey-dev/rekey/migrate/status"
)

// monitorFlags are the flags of a command that runs workers and can be
// watched while it does: run, rollback, cutover.
type monitorFlags struct {
	metricsAddr string
}

func (m *monitorFlags) register(f *pflag.FlagSet) {
	f.StringVar(&m.metricsAddr, "metrics-addr", "", `serve Prometheus metrics on /metrics and a health check on /healthz at this address, e.g. ":9090" (see docs/metrics.md); off when empty`)
}

// statePollInterval is how often a worker re-reads its state for the
// progress output and the metrics: a list of the leases, and a probe of the
// source after the checkpoint of each range that has caught up.
func statePollInterval(terminal bool) time.Duration {
	if terminal {
		return 2 * time.Second
	}
	return 5 * time.Second
}

// watched is what a worker command's progress output and metrics read.
type watched struct {
	stats       *pipeline.Stats
	store       lease.Store
	source      migrate.Source // probed for lag; nil: no lag
	flow        *pacing.Flow   // nil: no partition metrics
	client      *cosmos.Client // its lease RU; nil with a state directory
	written     func() map[string]int64
	sourceItems int64
	terminal    bool
}

// leaseClient is the client whose lease documents hold a cosmos:// state
// (the target's), nil for a state directory.
func leaseClient(mg *migration) *cosmos.Client {
	if _, _, ok := cosmosState(mg.flags.state); ok {
		return mg.dstClient
	}
	return nil
}

// startMonitor reads w's state once, then starts its poller and, with --metrics-addr,
// the metrics server; both stop when ctx ends. An address that cannot be
// bound is an error (exit 2), before any work starts.
func startMonitor(ctx context.Context, flags monitorFlags, w watched) (*status.Poller, error) {
	poller := &status.Poller{Store: w.store, Source: w.source, Interval: statePollInterval(w.terminal)}
	// The first read before any work: where the progress count starts.
	if err := poller.Poll(ctx); err != nil {
		slog.Debug("read the migration's status for progress", "err", err)
	}
	go poller.Run(ctx)
	if flags.metricsAddr == "" {
		return poller, nil
	}
	src := metrics.Sources{Stats: w.stats, Status: poller.Latest, SourceItems: w.sourceItems, Written: w.written}
	if w.flow != nil {
		src.Partitions = w.flow.Partitions
	}
	if w.client != nil {
		src.LeaseRU = w.client.LeaseRU
	}
	reg := metrics.NewRegistry(metrics.NewCollector(src))
	phase := func() string {
		if rep, _, ok := poller.Latest(); ok {
			return rep.Phase
		}
		return phaseStarting
	}
	addr, err := metrics.Serve(ctx, flags.metricsAddr, metrics.Handler(reg, phase))
	if err != nil {
		return nil, usageErr(err)
	}
	slog.Info("serving metrics", "addr", addr.String(), "paths", "/metrics /healthz")
	return poller, nil
}
