package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"
)

// envPrefix prefixes the environment variable of every flag: --account-key
// reads REKEY_ACCOUNT_KEY.
const envPrefix = "REKEY_"

// envName returns the environment variable that sets flag name.
func envName(name string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// bindEnvironment fills every flag of cmd that the command line left unset,
// first from REKEY_<FLAG>, then from the YAML config file (if any). The command
// line wins over the environment and the environment over the file, so a
// Kubernetes Job can keep secrets in env vars and the rest in a ConfigMap.
//
// List flags (such as --key) take a YAML list in the file and a comma-separated
// value in the environment.
func bindEnvironment(cmd *cobra.Command, configFile string) error {
	if configFile == "" {
		configFile = os.Getenv(envName("config"))
	}
	file, err := readConfigFile(configFile)
	if err != nil {
		return err
	}
	var firstErr error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if firstErr != nil || f.Changed || f.Name == "config" {
			return
		}
		if v, ok := os.LookupEnv(envName(f.Name)); ok {
			if err := setFlag(f, splitList(f, v)); err != nil {
				// Not the value, nor the parser's error, which quotes
				// it: a secret bound to the wrong variable stays secret.
				firstErr = fmt.Errorf("environment variable %s: not %s (for --%s)", envName(f.Name), valueKind(f), f.Name)
			}
			return
		}
		if raw, ok := file[f.Name]; ok {
			values, err := configValues(raw)
			if err == nil {
				err = setFlag(f, values)
			}
			if err != nil {
				firstErr = fmt.Errorf("config file %s, key %q: %w", configFile, f.Name, err)
			}
		}
	})
	if firstErr != nil {
		return firstErr
	}
	for name := range file {
		if cmd.Flags().Lookup(name) == nil && !isKnownElsewhere(cmd, name) {
			return fmt.Errorf("config file %s: unknown key %q (keys are flag names, such as account-key)", configFile, name)
		}
	}
	return nil
}

// isKnownElsewhere reports whether name is a flag of some other rekey command,
// so one config file can drive every command without tripping the typo check.
func isKnownElsewhere(cmd *cobra.Command, name string) bool {
	root := cmd.Root()
	found := false
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if found {
			return
		}
		if c.Flags().Lookup(name) != nil || c.PersistentFlags().Lookup(name) != nil {
			found = true
			return
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	return found
}

func readConfigFile(path string) (map[string]any, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read --config: %w", err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("parse --config %s: %w", path, err)
	}
	return m, nil
}

// configValues turns a YAML scalar or list into flag values.
func configValues(raw any) ([]string, error) {
	switch v := raw.(type) {
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			switch e.(type) {
			case map[string]any, []any:
				return nil, fmt.Errorf("want a scalar or a list of scalars")
			}
			out = append(out, fmt.Sprint(e))
		}
		return out, nil
	case map[string]any:
		return nil, fmt.Errorf("want a scalar or a list of scalars")
	case nil:
		return nil, nil
	default:
		return []string{fmt.Sprint(v)}, nil
	}
}

// valueKind describes the values flag f takes, for an error that must not
// quote the value it got.
func valueKind(f *pflag.Flag) string {
	switch t := f.Value.Type(); t {
	case "int", "int32", "int64", "uint", "uint32", "uint64":
		return "an integer"
	case "float32", "float64":
		return "a number"
	case "bool":
		return "true or false"
	case "duration":
		return "a duration such as 30s or 5m"
	default:
		return "a valid " + t
	}
}

func isListFlag(f *pflag.Flag) bool {
	t := f.Value.Type()
	return strings.HasSuffix(t, "Slice") || strings.HasSuffix(t, "Array")
}

func splitList(f *pflag.Flag, v string) []string {
	if !isListFlag(f) {
		return []string{v}
	}
	parts := strings.Split(v, ",")
	out := parts[:0]
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func setFlag(f *pflag.Flag, values []string) error {
	if len(values) > 1 && !isListFlag(f) {
		return fmt.Errorf("--%s takes one value, got %d", f.Name, len(values))
	}
	for _, v := range values {
		if err := f.Value.Set(v); err != nil {
			return fmt.Errorf("--%s: %w", f.Name, err)
		}
	}
	f.Changed = len(values) > 0
	return nil
}
