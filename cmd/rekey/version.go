package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = "dev"

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the rekey version and the Go and SDK versions it was built with",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sdk := "unknown"
			if info, ok := debug.ReadBuildInfo(); ok {
				for _, d := range info.Deps {
					if d.Path == "github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos" {
						sdk = d.Version
					}
				}
			}
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "rekey %s (%s, azcosmos %s)\n", version, runtime.Version(), sdk)
			return err
		},
	}
}
