package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rekey-dev/rekey/internal/cosmos"
	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/migrate/status"
)

// defaultWatch is the interval of a bare --watch.
const defaultWatch = 2 * time.Second

// watchInterval reads `status --watch [INTERVAL]`: a bare --watch takes
// defaultWatch from the flag, and the interval may follow it as an
// argument (pflag only binds an optional value written --watch=5s).
func watchInterval(cmd *cobra.Command, args []string, watch *time.Duration) error {
	if len(args) == 0 {
		if cmd.Flags().Changed("watch") && *watch <= 0 {
			return fmt.Errorf("--watch %s: want a positive interval", *watch)
		}
		return nil
	}
	if !cmd.Flags().Changed("watch") {
		return fmt.Errorf("unexpected argument %q: status takes flags only (an interval follows --watch)", args[0])
	}
	d, err := time.ParseDuration(args[0])
	if err != nil || d <= 0 {
		return fmt.Errorf("--watch %q: want an interval such as 2s or 1m", args[0])
	}
	*watch = d
	return nil
}

// statusReader reads a migration's status, again and again for --watch.
type statusReader struct {
	mig         *migrationFlags
	client      *cosmos.Client // nil without connection flags and with a state directory
	source      migrate.Source // probed for lag; nil without --source and connection flags
	sourceItems int64          // 0 when unknown
}

// openStatusReader connects as the flags say; errors carry their exit
// code.
func openStatusReader(ctx context.Context, mig *migrationFlags) (*statusReader, error) {
	r := &statusReader{mig: mig}
	connected := mig.source != "" && (mig.conn.endpoint != "" || mig.conn.connectionString != "")
	if connected || strings.HasPrefix(mig.state, "cosmos://") {
		cfg := mig.conn.target()
		if connected {
			cfg = mig.conn.source()
		}
		c, err := cosmos.NewClient(ctx, cfg)
		if err != nil {
			return nil, withExitCode(ExitError, fmt.Errorf("connect: %w", err))
		}
		r.client = c
	}
	if connected {
		ref, err := migrate.ParseContainerRef(mig.source)
		if err != nil {
			r.close()
			return nil, withExitCode(ExitError, fmt.Errorf("--source %w", err))
		}
		src := r.client.Container(ref.Database, ref.Container)
		r.source = src
		if n, err := src.ItemCount(ctx); err == nil {
			r.sourceItems = n
		}
	}
	return r, nil
}

func (r *statusReader) close() {
	if r.client != nil {
		r.client.Close()
	}
}

// read reads the status once; itemsPerSec is the copy's rate for its ETA
// (0: none).
func (r *statusReader) read(ctx context.Context, itemsPerSec float64) (status.Report, error) {
	store, err := openStateReadOnly(ctx, r.mig, r.client)
	if err != nil {
		return status.Report{}, readExit(err)
	}
	defer store.Close()
	meta, err := store.ReadMeta(ctx)
	if errors.Is(err, lease.ErrNoMeta) {
		return status.Report{}, withExitCode(ExitError, fmt.Errorf("no migration in state %s: start one with rekey run", r.mig.state))
	}
	if err != nil {
		return status.Report{}, withExitCode(ExitError, err)
	}
	dead, err := countDeadLetters(ctx, r.mig, r.client)
	if err != nil {
		return status.Report{}, readExit(err)
	}
	st, err := status.Read(ctx, meta, store, dead, r.source, time.Now())
	if err != nil {
		return status.Report{}, withExitCode(ExitRunFailed, err)
	}
	st.WithProgress(r.sourceItems, itemsPerSec)
	if err := addRollbackStatus(ctx, r.mig, r.client, &st); err != nil {
		return status.Report{}, readExit(err)
	}
	return st, nil
}

// writeStatus writes one status as output says: an indented JSON
// document, or the table.
func writeStatus(w io.Writer, st status.Report, output string) error {
	if output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	printStatus(w, st)
	return nil
}

// watch redraws the status every interval until ctx ends (Ctrl+C: exit
// 130). On a terminal each redraw replaces the screen; elsewhere the
// statuses follow one another (JSON: one document a line). The first read
// must succeed; a later failure is shown and the watch goes on.
func (r *statusReader) watch(ctx context.Context, w io.Writer, output string, every time.Duration, terminal bool) error {
	var rates rateWindow
	t := time.NewTicker(every)
	defer t.Stop()
	for first := true; ; first = false {
		st, err := r.read(ctx, 0)
		switch {
		case err != nil && ctx.Err() != nil:
			return withExitCode(ExitInterrupted, nil)
		case err != nil && first:
			return err
		case err != nil:
			fmt.Fprintf(w, "status: %v (retrying every %s)\n", errors.Unwrap(err), every)
		default:
			perSec, _ := rates.add(time.Now(), st.Items, 0)
			st.WithProgress(r.sourceItems, perSec)
			if err := r.show(w, st, output, every, terminal); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return withExitCode(ExitInterrupted, nil)
		case <-t.C:
		}
	}
}

// show writes one redraw of a watch.
func (r *statusReader) show(w io.Writer, st status.Report, output string, every time.Duration, terminal bool) error {
	if output == "json" {
		return json.NewEncoder(w).Encode(st)
	}
	if terminal {
		fmt.Fprint(w, "\x1b[H\x1b[2J") // home, clear the screen
	}
	printStatus(w, st)
	fmt.Fprintf(w, "%s  every %s, Ctrl+C to stop\n\n", time.Now().Format("15:04:05"), every)
	return nil
}
