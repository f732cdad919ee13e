package main

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/rekey-dev/rekey/internal/emulator"
)

type emulatorOptions struct {
	addr        string
	computeAddr string
	key         string
	plainHTTP   bool
	splitDelay  time.Duration
	admin       bool
	demoItems   int
}

func newEmulatorCommand() *cobra.Command {
	o := &emulatorOptions{}
	cmd := &cobra.Command{
		Use:   "emulator",
		Short: "Serve a local Cosmos DB NoSQL emulator on a loopback address until interrupted",
		Long: `Serve rekey's Cosmos DB NoSQL emulator: databases, containers with physical
partitions, items, queries, transactional batches, the change feed, throughput,
request charges and per-partition throttling, over the same REST protocol the
service speaks. It keeps everything in memory and listens on loopback only.

Point any Cosmos DB client at the printed endpoint with the printed key. With
TLS (the default) the certificate is self-signed: use --insecure with rekey's
other commands, or skip verification in your client.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			srv, err := emulator.Start(emulator.ServerOptions{
				Options: emulator.Options{
					Key:        o.key,
					SplitDelay: o.splitDelay,
					Logger:     slog.Default(),
					Admin:      o.admin,
					Gateway:    emulator.RoutingGateway,
				},
				Addr:        o.addr,
				ComputeAddr: o.computeAddr,
				PlainHTTP:   o.plainHTTP,
			})
			if err != nil {
				return withExitCode(ExitError, err)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "rekey emulator listening\n  endpoint:          %s\n  key:               %s\n  connection string: %s\n",
				srv.Endpoint(), srv.Key(), srv.ConnectionString())
			if ce := srv.ComputeEndpoint(); ce != "" {
				fmt.Fprintf(out, "  compute gateway:   %s (ids decoded as the service's current gateway does)\n", ce)
			}
			if o.admin {
				fmt.Fprintf(out, "  admin API:         %sadmin/ (fault injection and metrics)\n", srv.Endpoint())
			}
			if o.demoItems > 0 {
				if err := seedDemoData(cmd.Context(), srv, o.demoItems); err != nil {
					srv.Close()
					return withExitCode(ExitRunFailed, err)
				}
				fmt.Fprintf(out, "  demo data:         %s/%s, partitioned on /region, %d orders (85%% in one region)\n", demoDB, demoSource, o.demoItems)
				fmt.Fprintf(out, "  try:               rekey run --endpoint %s --account-key %s --insecure \\\n                       --source %s/%s --target %s/%s --key '%s' --create-target --until-caught-up\n",
					srv.Endpoint(), srv.Key(), demoDB, demoSource, demoDB, demoTarget, demoKey)
			}
			fmt.Fprintln(out, "Press Ctrl+C to stop.")
			<-cmd.Context().Done()
			slog.Info("emulator stopping")
			return srv.Close()
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.addr, "addr", "127.0.0.1:8081", "loopback address to listen on, with the routing gateway's id decoding (like the official emulator's 8081)")
	f.StringVar(&o.computeAddr, "compute-addr", "127.0.0.1:8903", "second loopback address serving the same account with the compute gateway's id decoding (like the official emulator's 8903); empty to disable")
	f.StringVar(&o.key, "account-key", "", "base64 master key clients must sign with (default: the well-known emulator key)")
	f.BoolVar(&o.plainHTTP, "http", false, "serve plain HTTP instead of HTTPS with a self-signed certificate")
	f.DurationVar(&o.splitDelay, "split-delay", time.Second, "how long a partition split takes after a throughput raise")
	f.BoolVar(&o.admin, "admin", false, "enable the admin API under /admin/ (fault injection, metrics)")
	f.IntVar(&o.demoItems, "demo-data", 0, "create the demo's source container (shop/orders, keyed on /region) with this many orders")
	return cmd
}
