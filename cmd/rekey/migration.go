package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/rekey-dev/rekey/internal/cosmos"
	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/migrate/deadletter"
	"github.com/rekey-dev/rekey/migrate/pacing"
	"github.com/rekey-dev/rekey/migrate/pipeline"
	"github.com/rekey-dev/rekey/transform"
)

// connectionFlags say how to reach the source and target accounts.
type connectionFlags struct {
	endpoint, accountKey, connectionString             string
	targetEndpoint, targetAccountKey, targetConnection string
	insecure                                           bool
	priority                                           string
}

func (c *connectionFlags) register(f *pflag.FlagSet) {
	f.StringVar(&c.endpoint, "endpoint", "", "account endpoint of the source (and target), such as https://myaccount.documents.azure.com:443/")
	f.StringVar(&c.accountKey, "account-key", "", "account key (prefer REKEY_ACCOUNT_KEY); Entra ID (DefaultAzureCredential) when no key is given")
	f.StringVar(&c.connectionString, "connection-string", "", "connection string instead of --endpoint and --account-key (prefer REKEY_CONNECTION_STRING)")
	f.StringVar(&c.targetEndpoint, "target-endpoint", "", "account endpoint of the target when it is another account")
	f.StringVar(&c.targetAccountKey, "target-account-key", "", "account key of the target account (prefer REKEY_TARGET_ACCOUNT_KEY)")
	f.StringVar(&c.targetConnection, "target-connection-string", "", "connection string of the target account")
	f.BoolVar(&c.insecure, "insecure", false, "trust any TLS certificate (only for loopback endpoints, such as the emulator)")
	f.StringVar(&c.priority, "priority", "low", "request priority: low lets the application win under contention, or high")
}

func (c *connectionFlags) source() cosmos.Config {
	return cosmos.Config{Endpoint: c.endpoint, AccountKey: c.accountKey, ConnectionString: c.connectionString, Insecure: c.insecure, Priority: c.priority}
}

func (c *connectionFlags) target() cosmos.Config {
	if c.targetEndpoint == "" && c.targetConnection == "" {
		return c.source()
	}
	return cosmos.Config{Endpoint: c.targetEndpoint, AccountKey: c.targetAccountKey, ConnectionString: c.targetConnection, Insecure: c.insecure, Priority: c.priority}
}

// migrationFlags are what every command that touches a migration takes, so
// one config file or one set of environment variables drives them all.
type migrationFlags struct {
	conn       connectionFlags
	source     string
	target     string
	keys       []string
	state      string
	deadLetter string
}

func (m *migrationFlags) register(f *pflag.FlagSet) {
	m.conn.register(f)
	f.StringVar(&m.source, "source", "", "source container as DATABASE/CONTAINER")
	f.StringVar(&m.target, "target", "", "target container as DATABASE/CONTAINER")
	f.StringArrayVar(&m.keys, "key", nil, "target key: PATH or PATH=TEMPLATE; repeat for a hierarchical key (up to 3)")
	f.StringVar(&m.state, "state", "./.rekey", "where progress lives: a directory, or cosmos://DATABASE/CONTAINER for a lease container")
	f.StringVar(&m.deadLetter, "dead-letter", "", "dead-letter file (JSON lines; default deadletter.jsonl in the --state directory)")
}

// migration is everything a command needs to work on one migration.
type migration struct {
	flags      *migrationFlags
	srcRef     migrate.ContainerRef
	dstRef     migrate.ContainerRef
	srcClient  *cosmos.Client
	dstClient  *cosmos.Client
	source     *cosmos.Container
	target     *cosmos.Container
	srcDef     migrate.Definition
	tr         *transform.Transformer
	store      lease.Store
	meta       lease.Meta // the migration as its state records it
	stateName  string
	dead       migrate.DeadLetterStore
	defaults   *migrate.DefaultUses // for verifiers that fix: runners record their own
	identities [2]string
}

// connect validates the flags, connects to both accounts, reads the source's
// key definition and compiles the key spec. It opens no state.
func (m *migrationFlags) connect(ctx context.Context) (*migration, error) {
	mg := &migration{flags: m}
	var err error
	if mg.srcRef, err = migrate.ParseContainerRef(m.source); err != nil {
		return nil, usageErrf("--source %w", err)
	}
	if mg.dstRef, err = migrate.ParseContainerRef(m.target); err != nil {
		return nil, usageErrf("--target %w", err)
	}
	if len(m.keys) == 0 {
		return nil, usageErrf("--key is required (PATH or PATH=TEMPLATE)")
	}
	spec, err := transform.ParseSpec(m.keys)
	if err != nil {
		return nil, usageErrf("--key: %w", err)
	}
	srcCfg, dstCfg := m.conn.source(), m.conn.target()
	if mg.srcClient, err = cosmos.NewClient(ctx, srcCfg); err != nil {
		return nil, usageErrf("connect to the source account: %w", err)
	}
	if mg.dstClient, err = cosmos.NewClient(ctx, dstCfg); err != nil {
		return nil, usageErrf("connect to the target account: %w", err)
	}
	mg.identities = [2]string{identity(srcCfg, mg.srcRef), identity(dstCfg, mg.dstRef)}
	if mg.identities[0] == mg.identities[1] {
		return nil, usageErrf("--source and --target are the same container %s", mg.srcRef)
	}
	if err := mg.checkState(ctx, dstCfg); err != nil {
		return nil, err
	}
	mg.source = mg.srcClient.Container(mg.srcRef.Database, mg.srcRef.Container)
	mg.target = mg.dstClient.Container(mg.dstRef.Database, mg.dstRef.Container)
	err = migrate.Retry(ctx, func() error {
		var err error
		mg.srcDef, err = mg.source.Definition(ctx)
		return err
	})
	if err != nil {
		if errors.Is(err, migrate.ErrNotFound) {
			return nil, usageErrf("source container %s does not exist", mg.srcRef)
		}
		return nil, fmt.Errorf("read the source container %s: %w", mg.srcRef, err)
	}
	if mg.tr, err = transform.New(spec, mg.srcDef.Paths); err != nil {
		return nil, usageErr(err)
	}
	return mg, nil
}

// identity names a container without secrets: endpoint host, database,
// container.
func identity(cfg cosmos.Config, ref migrate.ContainerRef) string {
	host := cfg.Endpoint
	if cfg.ConnectionString != "" {
		for _, part := range strings.Split(cfg.ConnectionString, ";") {
			if k, v, ok := strings.Cut(part, "="); ok && strings.EqualFold(k, "AccountEndpoint") {
				host = v
			}
		}
	}
	if u, err := url.Parse(host); err == nil && u.Host != "" {
		host = u.Host
	}
	return host + "/" + ref.String()
}

// checkState refuses, before anything is created, a --state that cannot
// work with this --source and --target: a malformed cosmos:// state, a
// lease container that is the source or the target, or one that exists
// partitioned on another path than /id. Every pair of container names has
// a valid lease prefix (migrate.LeasePrefix), so the names need no check.
func (mg *migration) checkState(ctx context.Context, dstCfg cosmos.Config) error {
	db, coll, ok := cosmosState(mg.flags.state)
	if !ok {
		return nil
	}
	if db == "" {
		return usageErrf("--state %q: want cosmos://DATABASE/CONTAINER", mg.flags.state)
	}
	ref := migrate.ContainerRef{Database: db, Container: coll}
	for i, what := range []string{"source", "target"} {
		if identity(dstCfg, ref) == mg.identities[i] {
			return usageErrf("--state %s is the %s container: keep the state in a container of its own", mg.flags.state, what)
		}
	}
	def, err := mg.dstClient.ContainerDefinition(ctx, db, coll)
	switch {
	case errors.Is(err, migrate.ErrNotFound):
		return nil // created, partitioned on /id, when the state is opened
	case err != nil:
		return fmt.Errorf("read the lease container %s: %w", ref, err)
	case len(def.Paths) != 1 || def.Paths[0] != cosmos.LeaseKeyPath:
		return usageErrf("--state %s: the container is partitioned on %s, not %s; use another container for the state", mg.flags.state, strings.Join(def.Paths, ","), cosmos.LeaseKeyPath)
	}
	return nil
}

// openState opens the lease store and the dead letters, and checks the
// state belongs to this migration.
func (mg *migration) openState(ctx context.Context, startFrom time.Time) error {
	m := mg.flags
	if db, coll, ok := cosmosState(m.state); ok {
		if db == "" {
			return usageErrf("--state %q: want cosmos://DATABASE/CONTAINER", m.state)
		}
		if err := mg.dstClient.EnsureLeaseContainer(ctx, db, coll); err != nil {
			return fmt.Errorf("open lease container %s/%s: %w", db, coll, err)
		}
		docs := mg.dstClient.LeaseDocuments(db, coll)
		prefix, err := migrate.ResolveLeasePrefix(ctx, docs, mg.srcRef, mg.dstRef)
		if err != nil {
			return fmt.Errorf("open state %s: %w", m.state, err)
		}
		store, err := lease.NewCosmos(docs, prefix)
		if err != nil {
			return fmt.Errorf("open state %s: %w", m.state, err)
		}
		mg.store = store
	} else {
		fs, err := lease.OpenFile(m.state)
		if err != nil {
			if errors.Is(err, lease.ErrLocked) {
				return usageErr(err)
			}
			return err
		}
		mg.store = fs
	}
	mg.stateName = m.state
	want := migrate.NewMeta(mg.identities[0], mg.identities[1], mg.tr, startFrom)
	// A new migration records the source's feed ranges with its Meta, in
	// one create-if-absent write, so that every worker cuts the same
	// leases from them.
	err := migrate.Retry(ctx, func() error {
		ranges, err := mg.source.FeedRanges(ctx)
		want.Ranges = migrate.LeaseRanges(ranges)
		return err
	})
	if err != nil {
		return fmt.Errorf("read the source's feed ranges: %w", err)
	}
	if mg.meta, err = migrate.OpenMeta(ctx, mg.store, want, mg.stateName); err != nil {
		if errors.Is(err, lease.ErrMetaMismatch) {
			return usageErr(err)
		}
		return err
	}
	dead, err := openDeadLetters(ctx, m, mg.dstClient, false)
	if err != nil {
		return err
	}
	mg.dead = dead
	mg.defaults = migrate.NewDefaultUses(mg.store, mg.tr)
	return nil
}

// openExistingState opens the state of a migration that must already exist,
// for the commands that continue one (cutover, deadletter replay, verify
// --fix). A state that holds no migration is refused as a usage error (exit
// code 2) before anything is created: no directory, no state.json, no lease
// container.
func (mg *migration) openExistingState(ctx context.Context) error {
	store, err := openStateReadOnly(ctx, mg.flags, mg.dstClient)
	if err != nil {
		return usageErr(err)
	}
	_, err = store.ReadMeta(ctx)
	_ = store.Close()
	switch {
	case errors.Is(err, lease.ErrNoMeta):
		return usageErrf("no migration in state %s: start one with rekey run (nothing was created)", mg.flags.state)
	case err != nil:
		return fmt.Errorf("read state %s: %w", mg.flags.state, err)
	}
	return mg.openState(ctx, time.Time{})
}

// cosmosState splits a cosmos://DATABASE/CONTAINER state; ok is false for a
// directory, db empty for a malformed one.
func cosmosState(state string) (db, coll string, ok bool) {
	rest, found := strings.CutPrefix(state, "cosmos://")
	if !found {
		return "", "", false
	}
	db, coll, _ = strings.Cut(rest, "/")
	if db == "" || coll == "" || strings.Contains(coll, "/") {
		return "", "", true
	}
	return db, coll, true
}

// openDeadLetters opens a migration's dead letters: the --dead-letter file
// when given, else the lease container's documents for a cosmos:// state
// (so a Job's pods share them), else deadletter.jsonl in the state
// directory. readOnly opens a file without writing to it (another process
// may be appending).
func openDeadLetters(ctx context.Context, m *migrationFlags, client *cosmos.Client, readOnly bool) (migrate.DeadLetterStore, error) {
	if db, coll, ok := cosmosState(m.state); ok && m.deadLetter == "" {
		if db == "" || client == nil {
			return nil, usageErrf("--state %q: want cosmos://DATABASE/CONTAINER and the connection flags of its account", m.state)
		}
		docs := client.LeaseDocuments(db, coll)
		prefix, err := stateLeasePrefix(ctx, m, docs)
		if err != nil {
			return nil, err
		}
		return deadletter.OpenDocuments(docs, prefix, m.state)
	}
	path := m.deadLetter
	if path == "" {
		path = filepath.Join(m.state, "deadletter.jsonl")
	}
	if readOnly {
		return deadletter.OpenFileReadOnly(path)
	}
	d, err := deadletter.OpenFile(path, deadLetterFileOptions...)
	if err != nil {
		return nil, err
	}
	if n := d.Repaired(); n > 0 {
		slog.Warn("cut off a torn last line of the dead-letter file: an append that a crash or a full disk interrupted; its page was never checkpointed and is read again",
			"file", path, "bytes", n)
	}
	return d, nil
}

// deadLetterFileOptions configure every dead-letter file the commands open
// for writing. Tests inject a full disk here.
var deadLetterFileOptions []deadletter.Option

// leasePrefix names the documents of a migration this rekey creates in a
// lease container; stateLeasePrefix finds those of an existing one.
func leasePrefix(src, dst migrate.ContainerRef) string { return migrate.LeasePrefix(src, dst) }

// stateLeasePrefix returns the prefix of the documents of the migration
// that --source and --target name in the lease container docs, whether an
// older rekey created it (migrate.ResolveLeasePrefix) or not.
func stateLeasePrefix(ctx context.Context, m *migrationFlags, docs lease.Documents) (string, error) {
	src, err1 := migrate.ParseContainerRef(m.source)
	dst, err2 := migrate.ParseContainerRef(m.target)
	if err1 != nil || err2 != nil {
		return "", usageErrf("--state %s: give --source and --target to name the migration", m.state)
	}
	prefix, err := migrate.ResolveLeasePrefix(ctx, docs, src, dst)
	if err != nil {
		return "", fmt.Errorf("open state %s: %w", m.state, err)
	}
	return prefix, nil
}

// close releases the state and the dead-letter file.
func (mg *migration) close() {
	if mg.dead != nil {
		_ = mg.dead.Close()
	}
	if mg.store != nil {
		_ = mg.store.Close()
	}
}

// owner names this worker in leases.
func owner() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s/%d", host, os.Getpid())
}

// cutoverOwner names one cutover: owner() and a random suffix, so that a
// cutover started again after a crash under the same hostname and pid (a
// container's pid 1) is never taken for the one that crashed, whose
// request and fenced leases it must treat as a dead cutover's and whose
// writes it must wait for (cutover.Config.Run).
func cutoverOwner() string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return fmt.Sprintf("%s/%x", owner(), b)
}

// writePath is how this command writes to the target: the flow control
// rekey run uses (flow: rekey run's flags, the defaults elsewhere), started
// from the target's provisioned throughput, with log for the retries and
// the flow control's changes.
func (mg *migration) writePath(ctx context.Context, flow pacing.Config, log *slog.Logger) *pipeline.WritePath {
	return mg.writePathMode(ctx, pipeline.WriteBulk, flow, log)
}

// writePathMode is writePath with the writes sent as mode says (rekey run
// --bulk).
func (mg *migration) writePathMode(ctx context.Context, mode pipeline.WriteMode, flow pacing.Config, log *slog.Logger) *pipeline.WritePath {
	flow.ProvisionedRU = targetThroughput(ctx, mg.dstClient, mg.dstRef)
	return pipeline.NewWritePath(mg.target, pipeline.WritePathConfig{Mode: mode, Flow: flow, Log: log})
}

// targetThroughput is the RU/s provisioned on the target container itself
// (manual, or the autoscale maximum), which the congestion control starts
// from; 0 when the target shares its database's throughput, is serverless,
// or the offer cannot be read: the control then finds the rate by itself.
func targetThroughput(ctx context.Context, c *cosmos.Client, ref migrate.ContainerRef) float64 {
	tp, err := c.ReadThroughput(ctx, ref.Database, ref.Container)
	switch {
	case err != nil:
		slog.Debug("could not read the target's throughput; the write rate starts low and grows", "err", err)
		return 0
	case tp.Shared:
		return 0
	case tp.AutoscaleMax > 0:
		return float64(tp.AutoscaleMax)
	}
	return float64(tp.Manual)
}
