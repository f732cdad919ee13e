package main

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3" (the
// Dockerfile does); otherwise it comes from the module version Go stamps
// into a `go install ...@version` build.
var version = "dev"

// buildInfo is what `rekey version` reports.
type buildInfo struct {
	Version  string `json:"version"`
	Revision string `json:"revision,omitempty"` // VCS commit the binary was built from
	Time     string `json:"time,omitempty"`     // the commit's time
	Modified bool   `json:"modified,omitempty"` // built from a tree with uncommitted changes
	Go       string `json:"go"`
	AzCosmos string `json:"azcosmos"`
	Platform string `json:"platform"`
}

// readBuildInfo reads the version and the VCS stamp of this binary.
func readBuildInfo() buildInfo {
	b := buildInfo{Version: version, Go: runtime.Version(), AzCosmos: "unknown", Platform: runtime.GOOS + "/" + runtime.GOARCH}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	if b.Version == "dev" && info.Main.Version != "" && info.Main.Version != "(devel)" {
		b.Version = info.Main.Version
	}
	for _, d := range info.Deps {
		if d.Path == "github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos" {
			b.AzCosmos = d.Version
		}
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Revision = s.Value
		case "vcs.time":
			b.Time = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		}
	}
	return b
}

// String is the one-line form: rekey VERSION (REVISION, go, azcosmos).
func (b buildInfo) String() string {
	rev := ""
	if b.Revision != "" {
		rev = b.Revision
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if b.Modified {
			rev += "-modified"
		}
		rev += ", "
	}
	return fmt.Sprintf("rekey %s (%s%s, azcosmos %s, %s)", b.Version, rev, b.Go, b.AzCosmos, b.Platform)
}

func newVersionCommand() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the rekey version, the commit it was built from, and the Go and SDK versions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return printVersion(cmd.OutOrStdout(), output)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

func printVersion(w io.Writer, output string) error {
	b := readBuildInfo()
	switch output {
	case "text":
		_, err := fmt.Fprintln(w, b)
		return err
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(b)
	}
	return withExitCode(ExitError, fmt.Errorf("-o %q: want text or json", output))
}
