package main

import (
	"fmt"
	"log/slog"
	"strings"
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
	entra       bool
	identity    string
	noLocalAuth bool
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
other commands, or skip verification in your client.

With --entra the account also accepts Microsoft Entra ID tokens signed by the
emulator's own test issuer, and authorizes them by data-plane role as the
service does (management operations such as creating containers are refused
to tokens). A loopback managed identity endpoint hands the tokens out: set the
printed IDENTITY_ENDPOINT, IDENTITY_HEADER and AZURE_TOKEN_CREDENTIALS, and
rekey's other commands, run without --account-key, authenticate with Entra ID
(DefaultAzureCredential) against the emulator.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			srv, err := emulator.Start(emulator.ServerOptions{
				Options: emulator.Options{
					Key:        o.key,
					SplitDelay: o.splitDelay,
					Logger:     slog.Default(),
					Admin:      o.admin,
					Gateway:    emulator.RoutingGateway,
					Entra:      o.entra || o.noLocalAuth,
				},
				Addr:         o.addr,
				ComputeAddr:  o.computeAddr,
				PlainHTTP:    o.plainHTTP,
				IdentityAddr: o.identity,
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
			if env := srv.ManagedIdentityEnv(); env != nil {
				fmt.Fprintf(out, "  entra id:          tokens of tenant %s; principal %s is a Data Contributor\n", emulator.EntraTenant, emulator.EntraPrincipal)
				fmt.Fprintf(out, "  managed identity:  export %s\n", strings.Join(env, " "))
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
			if o.noLocalAuth {
				if err := srv.SetLocalAuthDisabled(true); err != nil {
					srv.Close()
					return withExitCode(ExitError, err)
				}
				fmt.Fprintf(out, "  local auth:        disabled: the key is refused (after the demo data, if any, was created with it)\n")
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
	f.BoolVar(&o.entra, "entra", false, "also accept Entra ID tokens from the emulator's test issuer, handed out by a managed identity endpoint (see the printed environment)")
	f.StringVar(&o.identity, "identity-addr", "127.0.0.1:0", "loopback address of the managed identity endpoint, plain HTTP (with --entra)")
	f.BoolVar(&o.noLocalAuth, "disable-local-auth", false, "refuse the master key, as an account with local auth disabled does (implies --entra)")
	f.IntVar(&o.demoItems, "demo-data", 0, "create the demo's source container (shop/orders, keyed on /region) with this many orders")
	return cmd
}
