package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rekey-dev/rekey/transform"
)

// ExitItemsFailed is the exit code of `rekey transform` when at least one
// item could not be transformed (the others were printed all the same).
const ExitItemsFailed = 1

// DefaultMaxLineBytes is the longest JSONL line `rekey transform` reads: well
// above the service's 2 MB item limit, so any real item fits.
const DefaultMaxLineBytes = 16 << 20

// transformConfig is what `rekey transform` runs with.
type transformConfig struct {
	Keys       []string // --key specs, in the target key's order
	SourceKeys []string // --source-key paths of the source container, optional
	Input      string   // a JSONL file, or "" / "-" for stdin
}

func newTransformCommand() *cobra.Command {
	cfg := &transformConfig{}
	cmd := &cobra.Command{
		Use:   "transform --key SPEC [--key SPEC ...] [FILE]",
		Short: "Try a key spec on sample items: print each item's new key and target item, or why it fails",
		Long: `transform reads items as JSON lines from FILE (standard input when FILE is
absent or "-") and applies the key spec to each, exactly as a migration would,
without touching any container. It prints one JSON line per item to standard
output:

  {"id":"o-1","key":["contoso","202403"],"item":{...}}
  {"id":"o-2","error":{"kind":"missing-field","field":"/tenantId","reason":"..."},"line":2}

"key" holds the target partition key values with their JSON types; "item" is
the document that would be written: system properties (_rid, _self, _etag,
_attachments, _ts, _lsn) removed, synthetic key properties added, every other
field byte for byte. With --source-key, "sourceKey" holds the source key
values ({} for a field the item lacks, as Cosmos DB writes "undefined").

A summary "N items, M failed" goes to standard error.

Key specs: PATH (a natural key such as /customerId) or PATH=TEMPLATE (a
synthetic key such as '/pk={tenantId}-{createdAt|yyyyMM}'); repeat --key up
to three times for a hierarchical key. Placeholders take a dotted field path,
functions (yyyy, yyyyMM, yyyyMMdd, yyyyMMddHH, lower, upper, hash:N) and a
default ({region?unknown}); {{ and }} are literal braces.

Exit status: 0 when every item transformed, 1 when any item failed, 2 on a bad
flag, key spec or unreadable input.`,
		Example: `  rekey transform --key /tenantId --key '/month={_ts|yyyyMM}' sample.jsonl
  head -100 export.jsonl | rekey transform --key '/pk={tenantId}-{id|hash:16}' --source-key /region`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				cfg.Input = args[0]
			}
			return runTransform(cmd.Context(), cfg, cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&cfg.Keys, "key", nil, "target key spec, PATH or PATH=TEMPLATE; repeat for a hierarchical key (up to 3)")
	f.StringArrayVar(&cfg.SourceKeys, "source-key", nil, "partition key path of the source container, to show each item's source key; repeat for a hierarchical key")
	return cmd
}

// buildTransformer parses the specs; a bad one is reported with a caret
// under the offending column.
func (c *transformConfig) buildTransformer() (*transform.Transformer, error) {
	if len(c.Keys) == 0 {
		return nil, errors.New("--key is required (such as --key /customerId or --key '/pk={tenantId}-{createdAt|yyyyMM}')")
	}
	spec, err := transform.ParseSpec(c.Keys)
	if err == nil {
		var t *transform.Transformer
		if t, err = transform.New(spec, c.SourceKeys); err == nil {
			return t, nil
		}
	}
	flag := "--key"
	var se *transform.SpecError
	if errors.As(err, &se) {
		if se.What == "source key path" {
			flag = "--source-key"
		}
		if p := se.Pointer(); p != "" {
			return nil, fmt.Errorf("%s: %w\n%s", flag, err, p)
		}
	}
	return nil, fmt.Errorf("%s: %w", flag, err)
}

func runTransform(ctx context.Context, cfg *transformConfig, stdin io.Reader, stdout, stderr io.Writer) error {
	t, err := cfg.buildTransformer()
	if err != nil {
		return withExitCode(ExitError, err)
	}
	in := stdin
	name := "standard input"
	if cfg.Input != "" && cfg.Input != "-" {
		f, err := os.Open(cfg.Input)
		if err != nil {
			return withExitCode(ExitError, fmt.Errorf("read items: %w", err))
		}
		defer f.Close()
		in, name = f, cfg.Input
	}
	w := bufio.NewWriter(stdout)
	items, failed, err := transformLines(ctx, t, in, w)
	if ferr := w.Flush(); err == nil && ferr != nil {
		err = fmt.Errorf("write output: %w", ferr)
	}
	fmt.Fprintf(stderr, "%d items, %d failed\n", items, failed)
	if err != nil {
		return withExitCode(ExitError, fmt.Errorf("%s: %w", name, err))
	}
	if failed > 0 {
		return withExitCode(ExitItemsFailed, nil)
	}
	return nil
}

// transformLines applies t to every non-blank line of in and writes one JSON
// line per item to w. It stops at the first read or write error.
func transformLines(ctx context.Context, t *transform.Transformer, in io.Reader, w io.Writer) (items, failed int, err error) {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 64<<10), DefaultMaxLineBytes)
	var (
		r          transform.Result
		out        []byte
		withSource = len(t.SourcePaths()) > 0
	)
	for line := 1; sc.Scan(); line++ {
		if err := ctx.Err(); err != nil {
			return items, failed, err
		}
		data := bytes.TrimSpace(sc.Bytes())
		if len(data) == 0 {
			continue
		}
		items++
		if err := t.ApplyTo(&r, data); err != nil {
			failed++
			out = appendFailure(out[:0], err, line)
		} else {
			out = appendSuccess(out[:0], &r, withSource)
		}
		if _, err := w.Write(out); err != nil {
			return items, failed, fmt.Errorf("write output: %w", err)
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			err = fmt.Errorf("a line is longer than %d MB", DefaultMaxLineBytes>>20)
		}
		return items, failed, err
	}
	return items, failed, nil
}

func appendSuccess(out []byte, r *transform.Result, withSource bool) []byte {
	out = append(out, `{"id":`...)
	out = appendJSONString(out, r.ID)
	out = transform.AppendJSONArray(append(out, `,"key":`...), r.Key)
	if withSource {
		out = transform.AppendJSONArray(append(out, `,"sourceKey":`...), r.SourceKey)
	}
	out = append(out, `,"item":`...)
	out = append(out, r.Item...)
	return append(out, "}\n"...)
}

func appendFailure(out []byte, err error, line int) []byte {
	var e *transform.Error
	if !errors.As(err, &e) {
		e = &transform.Error{Kind: err, Reason: err.Error()}
	}
	out = append(out, `{"id":`...)
	out = appendJSONString(out, e.ID)
	out = append(out, `,"error":{"kind":`...)
	out = appendJSONString(out, e.Kind.Error())
	out = append(out, `,"field":`...)
	out = appendJSONString(out, e.Field)
	out = append(out, `,"reason":`...)
	out = appendJSONString(out, e.Reason)
	return fmt.Appendf(out, `},"line":%d}`+"\n", line)
}

// appendJSONString appends s as a JSON string without HTML escaping, so ids
// and reasons read as they are.
func appendJSONString(out []byte, s string) []byte {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return append(out, strings.TrimSuffix(b.String(), "\n")...)
}
