package verify

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/migrate/pipeline"
	"github.com/rekey-dev/rekey/transform"
)

// Defaults of Config.
const (
	DefaultRecheckDelay = 5 * time.Second
	DefaultMaxRecheck   = 10_000
	DefaultMaxIDs       = 1_000
	verifyBuckets       = 64
	verifyPageSize      = 1000
	verifyReaders       = 4
)

// Config is what `rekey verify` checks.
type Config struct {
	// SamplePercent verifies only the items whose id hashes into this share
	// (0 < p <= 100; 0 means 100): a quick check of a large container.
	SamplePercent float64
	// RecheckDelay is how long to wait before rechecking the differences
	// found, so that copies in flight (rekey run still copying) settle. A
	// difference settles only when the target then matches the source
	// item's current version. Negative: no recheck (with Fix, differences
	// are examined once, without waiting, before they are fixed).
	RecheckDelay time.Duration
	// MaxRecheck bounds how many differences are rechecked and fixed.
	MaxRecheck int
	// MaxIDs bounds how many ids each category of the report lists.
	MaxIDs int
	// Fix repairs what remains after the recheck: deletes extra and
	// orphaned target items, copies missing and changed ones again from the
	// source's current version, each write conditional on the version the
	// recheck examined, then examines those items again. It refuses once
	// the state records a cutover (ErrCutOver).
	Fix bool
	// TempDir holds the spill files; os.TempDir when empty.
	TempDir string
}

func (c Config) withDefaults() Config {
	if c.SamplePercent <= 0 {
		c.SamplePercent = 100
	}
	if c.RecheckDelay == 0 {
		c.RecheckDelay = DefaultRecheckDelay
	}
	if c.MaxRecheck == 0 {
		c.MaxRecheck = DefaultMaxRecheck
	}
	if c.MaxIDs == 0 {
		c.MaxIDs = DefaultMaxIDs
	}
	return c
}

// Validate names the first invalid field.
func (c Config) Validate() error {
	if c.SamplePercent < 0 || c.SamplePercent > 100 {
		return fmt.Errorf("sample %v%%: want a percentage in (0, 100]", c.SamplePercent)
	}
	if c.MaxRecheck < 0 || c.MaxIDs < 0 {
		return fmt.Errorf("recheck and id limits must not be negative")
	}
	return nil
}

// Verifier compares a migration's source and target item by item.
type Verifier struct {
	Source      migrate.Source
	Target      migrate.Source // read through its change feed, as the source is
	Writer      migrate.Target // the target, for point reads on recheck
	Transformer *transform.Transformer
	// Writes is how Fix writes to the target (pipeline.NewWritePath on
	// Writer's container): the same flow control, retries and logger as
	// rekey run. Required with Fix.
	Writes *pipeline.WritePath
	// DeadLetters explains differences (collisions, items the target
	// refused) and is counted in the report; Fix records in it what the
	// target refuses. May be nil without Fix.
	DeadLetters migrate.DeadLetterStore
	// State is the migration's state. Fix reads it first and refuses with
	// a *CutOverError (ErrCutOver) once it records a cutover, and with a
	// *CutoverInProgressError while the cutover of another owner than
	// Owner is requested; required with Fix.
	State lease.Store
	// Owner names who fixes: a cutover's final verify gives the cutover's
	// name, so that its own request does not refuse its fix.
	Owner string
	// Defaults, for Fix, records the key defaults of the items it writes.
	Defaults *migrate.DefaultUses
	// Clock times the recheck delay and the retries of reads; the real
	// clock when nil.
	Clock migrate.Clock
	// Log receives progress; discarded when nil.
	Log *slog.Logger
}

// Verify scans both containers and reports the differences, rechecks them
// after cfg.RecheckDelay and, with cfg.Fix, repairs what remains. A
// difference is settled only when the target matches the source item's
// current version; one whose source item changed meanwhile stays a
// difference (marked in flight). Memory stays bounded whatever the
// containers' sizes: records spill to bucket files by source identity,
// each bucket (split again past maxBucketBytes) is compared on its own, and
// at most cfg.MaxRecheck differences are kept for the recheck.
func (v *Verifier) Verify(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// Work on a copy: what the caller left unset is defaulted here, not in
	// the caller's Verifier.
	vv := *v
	if vv.Clock == nil {
		vv.Clock = migrate.SystemClock{}
	}
	if vv.Log == nil {
		vv.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return vv.verify(ctx, cfg.withDefaults())
}

func (v *Verifier) verify(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Fix {
		if v.Writer == nil || v.Writes == nil || v.DeadLetters == nil || v.State == nil {
			return nil, fmt.Errorf("verify --fix needs the target, its write path, the dead letters and the migration's state")
		}
		if err := migrate.RefuseDuringCutover(ctx, v.State, "verify --fix", v.Owner, v.Clock.Now()); err != nil {
			return nil, err
		}
	}
	keyReader, err := naturalKeyReader(v.Transformer)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(cfg.TempDir, "rekey-verify-")
	if err != nil {
		return nil, fmt.Errorf("verify temp dir: %w", err)
	}
	defer os.RemoveAll(dir)
	sp, err := newSpill(dir, verifyBuckets)
	if err != nil {
		return nil, err
	}
	defer sp.close()

	start := v.Clock.Now()
	rep := &Report{SamplePercent: cfg.SamplePercent, StartedAt: start.UTC()}
	retry := &migrate.Retrier{Clock: v.Clock, Tries: migrate.DefaultTransientTries}
	var srcN, tgtN atomic.Int64
	var idents, tidents identitySet
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return scanContainer(gctx, v.Source, retry, func(body []byte) error {
			srcN.Add(1)
			idents.add(v.sourceIdentity(body))
			return v.spillSource(sp, body, cfg)
		})
	})
	g.Go(func() error {
		return scanContainer(gctx, v.Target, retry, func(body []byte) error {
			tgtN.Add(1)
			tidents.add(v.targetIdentity(keyReader, body))
			return v.spillTarget(sp, keyReader, body, cfg)
		})
	})
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("verify scan: %w", err)
	}
	rep.SourceItems, rep.TargetItems = srcN.Load(), tgtN.Load()
	rep.SourceIdentities, rep.TargetIdentities = idents.result(), tidents.result()
	v.Log.Info("verify scanned both containers", "source", rep.SourceItems, "target", rep.TargetItems)
	if err := v.spillDeadLetters(sp, cfg); err != nil {
		return nil, err
	}

	cmp := newComparer(rep, cfg)
	if err := sp.each(func(recs []record) error {
		cmp.bucket(recs)
		return nil
	}); err != nil {
		return nil, err
	}
	rep.Digest = cmp.digest.String()
	if err := v.recheckAndFix(ctx, cfg, rep, cmp.suspects); err != nil {
		return rep, err
	}
	if v.DeadLetters != nil {
		if rep.DeadLetters, err = v.DeadLetters.Count(); err != nil {
			return rep, fmt.Errorf("count dead letters: %w", err)
		}
	}
	rep.finish(cfg.MaxIDs)
	return rep, nil
}

// spillDeadLetters records which source items have a current dead letter,
// and of what kind, beside their scanned records.
func (v *Verifier) spillDeadLetters(sp *spill, cfg Config) error {
	if v.DeadLetters == nil {
		return nil
	}
	err := v.DeadLetters.Each(func(e migrate.DeadLetter) error {
		if !sampled(e.SourceID, cfg.SamplePercent) {
			return nil
		}
		return sp.add(&record{flags: recDeadLetter, id: e.SourceID, srcKey: string(e.SourceKey), reason: e.Kind})
	})
	if err != nil {
		return fmt.Errorf("verify: read the dead letters: %w", err)
	}
	return nil
}

// sampled reports whether an id is in the sample.
func sampled(id string, percent float64) bool {
	if percent >= 100 {
		return true
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(id))
	return float64(h.Sum64()%10000) < percent*100
}

// spillSource records a source item with the key and content it should have
// in the target.
func (v *Verifier) spillSource(sp *spill, body []byte, cfg Config) error {
	res, err := v.Transformer.Apply(body)
	if err != nil {
		var te *transform.Error
		if !errors.As(err, &te) {
			return err
		}
		id, sk, kerr := v.Transformer.SourceKeyOf(body)
		if kerr != nil {
			id, sk = te.ID, nil
		}
		if !sampled(id, cfg.SamplePercent) {
			return nil
		}
		return sp.add(&record{flags: recUntransformed, id: id, srcKey: migrate.Key(sk).String(), reason: te.Error(), ts: migrate.LastTS(body)})
	}
	if !sampled(res.ID, cfg.SamplePercent) {
		return nil
	}
	d, err := migrate.ContentDigest(res.Item, nil)
	if err != nil {
		return fmt.Errorf("source item %q: %w", res.ID, err)
	}
	return sp.add(&record{id: res.ID, srcKey: migrate.Key(res.SourceKey).String(), tgtKey: migrate.Key(res.Key).String(), digest: d, ts: migrate.LastTS(body)})
}

// spillTarget records a target item with the source identity its fields
// name and the key it is stored under.
func (v *Verifier) spillTarget(sp *spill, keyReader *transform.Transformer, body []byte, cfg Config) error {
	rec := &record{flags: recTarget}
	res, err := keyReader.Apply(body)
	if err == nil {
		rec.id, rec.srcKey, rec.tgtKey = res.ID, migrate.Key(res.SourceKey).String(), migrate.Key(res.Key).String()
	} else {
		id, sk, kerr := v.Transformer.SourceKeyOf(body)
		if kerr != nil {
			return fmt.Errorf("target item without a readable id: %w", kerr)
		}
		rec.id, rec.srcKey, rec.tgtKey = id, migrate.Key(sk).String(), "[{}]"
	}
	if !sampled(rec.id, cfg.SamplePercent) {
		return nil
	}
	d, err := migrate.ContentDigest(body, nil)
	if err != nil {
		return fmt.Errorf("target item %q: %w", rec.id, err)
	}
	rec.digest = d
	return sp.add(rec)
}

// naturalKeyReader reads a target item's stored key: the target paths read
// as natural keys, with the source key paths alongside.
func naturalKeyReader(tr *transform.Transformer) (*transform.Transformer, error) {
	spec, err := transform.ParseSpec(tr.TargetPaths())
	if err != nil {
		return nil, fmt.Errorf("target key paths: %w", err)
	}
	return transform.New(spec, tr.SourcePaths())
}

// scanContainer reads every live item of a container once, at its latest
// version, through the change feed from the beginning of each feed range,
// ranges in parallel.
func scanContainer(ctx context.Context, c migrate.Source, retry *migrate.Retrier, fn func(body []byte) error) error {
	var ranges []migrate.FeedRange
	if err := retry.Do(ctx, func() error {
		var err error
		ranges, err = c.FeedRanges(ctx)
		return err
	}); err != nil {
		return fmt.Errorf("feed ranges: %w", err)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(verifyReaders)
	for _, r := range ranges {
		g.Go(func() error {
			req := migrate.ChangeRequest{Range: r, PageSize: verifyPageSize}
			for {
				page, err := migrate.ReadPage(gctx, c, retry, req)
				if err != nil {
					return err
				}
				if len(page.Items) == 0 {
					return nil
				}
				for _, body := range page.Items {
					if err := fn(body); err != nil {
						return err
					}
				}
				req.Continuation = page.Continuation
			}
		})
	}
	return g.Wait()
}
