package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"

	"github.com/rekey-dev/rekey/internal/cosmos"
	"github.com/rekey-dev/rekey/migrate"
)

// settingsFlags say what a target created by --create-target gets of the
// source's settings that rekey does not carry on its own.
type settingsFlags struct {
	uniqueKeys string
	drop       []string
}

func (s *settingsFlags) register(f *pflag.FlagSet) {
	f.StringVar(&s.uniqueKeys, "unique-keys", "", "with --create-target, when the source has unique keys: copy them (each is then unique per new key value) or drop them")
	f.StringArrayVar(&s.drop, "drop-setting", nil, "with --create-target: leave this setting of the source out of the target (repeat; see rekey plan)")
}

func (s *settingsFlags) choice() migrate.SettingsChoice {
	return migrate.SettingsChoice{UniqueKeys: s.uniqueKeys, Drop: s.drop}
}

// sourceSettings reads the source's settings and decides what a target
// created from it gets.
func sourceSettings(ctx context.Context, client *cosmos.Client, src migrate.ContainerRef, choice migrate.SettingsChoice, sourcePaths, targetPaths []string) (migrate.SettingsPlan, error) {
	var settings migrate.ContainerSettings
	err := migrate.Retry(ctx, func() error {
		var err error
		settings, err = client.ContainerSettings(ctx, src.Database, src.Container)
		return err
	})
	if err != nil {
		return migrate.SettingsPlan{}, fmt.Errorf("read the settings of the source %s: %w", src, err)
	}
	return migrate.CarrySettings(settings, choice, sourcePaths, targetPaths), nil
}

// carriedSettings is TargetOptions.Settings: the settings a target created
// now gets, or why it cannot be created.
func carriedSettings(client *cosmos.Client, src migrate.ContainerRef, choice migrate.SettingsChoice, sourcePaths, targetPaths []string) func(context.Context) (migrate.ContainerSettings, error) {
	return func(ctx context.Context) (migrate.ContainerSettings, error) {
		p, err := sourceSettings(ctx, client, src, choice, sourcePaths, targetPaths)
		if err != nil {
			return nil, err
		}
		if err := p.Err(); err != nil {
			return nil, err
		}
		return p.Carried(), nil
	}
}

// printSettings lists what a target created by --create-target gets of
// the source's settings.
func printSettings(w io.Writer, p migrate.SettingsPlan) {
	if len(p.Settings) == 0 {
		fmt.Fprintln(w, "settings: the source has none to carry")
		return
	}
	fmt.Fprintln(w, "settings a target created by --create-target gets from the source:")
	for _, s := range p.Settings {
		what := "carried"
		switch {
		case s.Blocks:
			what = "NEEDS A DECISION"
		case !s.Carried:
			what = "not carried"
		}
		line := fmt.Sprintf("  %-26s %-16s %s", s.Name, what, oneLine(s.Value, 80))
		if s.Note != "" {
			line += "\n  " + strings.Repeat(" ", 26) + " " + s.Note
		}
		fmt.Fprintln(w, line)
	}
}

// oneLine is a JSON value on one line, cut to n bytes.
func oneLine(v []byte, n int) string {
	s := strings.Join(strings.Fields(string(v)), " ")
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
