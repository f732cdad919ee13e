package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// globalOptions are the flags every command accepts.
type globalOptions struct {
	logFormat  string
	logLevel   string
	configFile string
}

func newRootCommand() *cobra.Command {
	g := &globalOptions{}
	root := &cobra.Command{
		Use:   "rekey",
		Short: "Change the partition key of an Azure Cosmos DB container while the application keeps running",
		Long: `rekey copies every item of a Cosmos DB (NoSQL) container into a new container
with a better partition key, keeps the copy in sync from the change feed while
the application keeps writing, proves the copy complete, and gates the cutover.

Every flag can also be set as an environment variable REKEY_<FLAG> (for example
REKEY_ACCOUNT_KEY for --account-key) or in the YAML file given to --config.
The command line wins over the environment, the environment over the file.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := bindEnvironment(cmd, g.configFile); err != nil {
				return withExitCode(ExitError, err)
			}
			logger, err := newLogger(cmd.ErrOrStderr(), g.logFormat, g.logLevel)
			if err != nil {
				return withExitCode(ExitError, err)
			}
			slog.SetDefault(logger)
			return nil
		},
	}
	root.Version = readBuildInfo().String() // --version
	root.SetVersionTemplate("{{.Version}}\n")
	pf := root.PersistentFlags()
	pf.StringVar(&g.logFormat, "log-format", "auto", "log format: text, json, or auto (text on a terminal, JSON otherwise)")
	pf.StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	pf.StringVar(&g.configFile, "config", "", "YAML file whose keys are flag names (account-key: ..., key: [...])")

	root.AddCommand(
		newVersionCommand(),
		newEmulatorCommand(),
		newTransformCommand(),
		newRunCommand(),
		newDeadLetterCommand(),
		newVerifyCommand(),
		newCutoverCommand(),
		newRollbackCommand(),
		newStatusCommand(),
		newDemoCommand(),
		newPlanCommand(),
		newBenchCommand(),
	)
	root.SetFlagErrorFunc(flagError)
	registerCompletions(root)
	return root
}

// newLogger builds the process logger. format "auto" picks text on a terminal
// and JSON elsewhere, so logs collected by Kubernetes are machine-readable.
func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lvl, ReplaceAttr: durationsAsText}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "auto", "":
		if isTerminal(w) {
			return slog.New(slog.NewTextHandler(w, opts)), nil
		}
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("--log-format %q: want text, json or auto", format)
	}
}

// durationsAsText writes durations as "2.1s" rather than the JSON
// handler's nanoseconds, as every duration in rekey's JSON output is.
func durationsAsText(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(a.Value.Duration().String())
	}
	return a
}

// isTerminal reports whether w is an interactive terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
