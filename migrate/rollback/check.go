package rollback

import (
	"context"
	"errors"
	"fmt"

	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/migrate/verify"
)

// Check is a rollback's proof and its reverse cutover's final check
// (cutover.Checker): the migration's own comparison, run read-only, of
// every source item with the new key's fields added against the target
// (verify.Verifier), which holds exactly when the source matches the
// target mapped back. With Fix, it then repairs each difference in the
// source, from the target, by the Applier's rules, and compares again:
//
//   - missing (a source item whose target copy is gone: the application
//     deleted it, which the latest-version change feed does not carry):
//     the source item is deleted;
//   - extra and changed (a target item the source lacks or holds another
//     version of): the target item is written back;
//   - orphaned (a second target item of one source item: the application
//     wrote it under another key and kept the first): left, reported.
//
// A source item changed after the cutover by anyone but the rollback is
// never deleted or overwritten: it is dead-lettered as a conflict. A
// source item the forward migration dead-lettered (never copied, or not
// in its latest version: a cutover accepted it) is left as it is: its
// difference is not the application's doing, and is counted as
// dead-lettered.
type Check struct {
	// Verifier compares the source (Source) with the target (Target,
	// Writer for point reads); it must not fix.
	Verifier *verify.Verifier
	// Applier writes into the source.
	Applier *Applier
	// Forward is the forward migration's dead letters; nil when it has
	// none to tell.
	Forward migrate.DeadLetterStore
}

// Verify compares, and with cfg.Fix repairs the source and compares again.
// Every difference is listed (up to MaxRecheck) so that each can be fixed;
// one whose item has a dead letter of the rollback is counted as
// dead-lettered.
func (c *Check) Verify(ctx context.Context, cfg verify.Config) (*verify.Report, error) {
	fix := cfg.Fix
	cfg.Fix = false
	cfg.MaxIDs = max(cfg.MaxIDs, verify.DefaultMaxRecheck)
	rep, err := c.Verifier.Verify(ctx, cfg)
	if err != nil {
		return rep, err
	}
	if err := c.setAsideForwardDead(rep); err != nil {
		return rep, err
	}
	if !fix || rep.Clean {
		return rep, c.classifyDeadLettered(rep)
	}
	before := c.Applier.counts()
	for _, d := range rep.Missing.Items {
		key, err := migrate.ParseKey([]byte(d.SourceKey))
		if err != nil {
			return rep, fmt.Errorf("rollback fix of item %q: %w", d.ID, err)
		}
		if _, err := c.Applier.Delete(ctx, d.ID, key); err != nil {
			return rep, err
		}
	}
	for _, d := range append(rep.Extra.Items, rep.Changed.Items...) {
		if err := c.writeBack(ctx, d); err != nil {
			return rep, err
		}
	}
	if err := c.Applier.Dead.Sync(); err != nil {
		return rep, err
	}
	after := c.Applier.counts()
	again, err := c.Verifier.Verify(ctx, cfg)
	if err != nil {
		return rep, err
	}
	if err := c.setAsideForwardDead(again); err != nil {
		return again, err
	}
	if err := c.classifyDeadLettered(again); err != nil {
		return again, err
	}
	again.Fix = &verify.FixReport{
		Deleted:      after.deleted - before.deleted,
		Copied:       after.written - before.written,
		DeadLettered: after.dead - before.dead,
		Remaining:    again.Differences(),
	}
	return again, nil
}

// SourceIdentities scans the source the comparison reads (the one the
// rollback writes into) and returns the identities of the items it holds
// now, as Verify's report counts them; TargetIdentities scans the target,
// which the application writes until the rollback's cutover, whose Gate
// compares them with the report's to see a delete there during its final
// check (cutover.Checker). After a fix, the report is the second
// comparison's, so only a writer other than the rollback changes them.
func (c *Check) SourceIdentities(ctx context.Context) (verify.Identities, error) {
	return c.Verifier.SourceIdentities(ctx)
}

func (c *Check) TargetIdentities(ctx context.Context) (verify.Identities, error) {
	return c.Verifier.TargetIdentities(ctx)
}

// classifyDeadLettered counts a difference whose item has a dead letter of
// the rollback (a conflict: the source item someone else changed after the
// cutover is left as it is) as dead-lettered, which a reverse cutover with
// --accept-dead-letter accepts, instead of by its kind.
func (c *Check) classifyDeadLettered(rep *verify.Report) error {
	dead, err := deadItems(c.Applier.Dead)
	if err != nil {
		return fmt.Errorf("read the rollback's dead letters: %w", err)
	}
	moveToDeadLettered(rep, dead, func(kind string) string {
		return "the rollback could not write it back: dead-lettered as " + kind + " (rekey deadletter list --rollback)"
	})
	return nil
}

// setAsideForwardDead counts a difference whose source item the forward
// migration dead-lettered as dead-lettered, so that the fix leaves it: the
// target never held that item (or its latest version), so its being
// missing or older there says nothing of the application.
func (c *Check) setAsideForwardDead(rep *verify.Report) error {
	if c.Forward == nil {
		return nil
	}
	dead, err := deadItems(c.Forward)
	if err != nil {
		return fmt.Errorf("read the forward migration's dead letters: %w", err)
	}
	moveToDeadLettered(rep, dead, func(kind string) string {
		return "the forward migration dead-lettered it as " + kind + " and never copied it: the rollback leaves the source item as it is (rekey deadletter list)"
	})
	return nil
}

// deadItems maps each dead item (source id and key) of store to its kind.
func deadItems(store migrate.DeadLetterStore) (map[string]string, error) {
	dead := map[string]string{}
	err := store.Each(func(d migrate.DeadLetter) error {
		key, err := migrate.ParseKey(d.SourceKey)
		if err == nil {
			dead[d.SourceID+"\x00"+key.String()] = d.Kind
		}
		return nil
	})
	return dead, err
}

// moveToDeadLettered moves each difference of rep whose item dead names
// from its category to DeadLettered, with the reason why for its kind.
func moveToDeadLettered(rep *verify.Report, dead map[string]string, why func(kind string) string) {
	for _, cat := range []*verify.Category{&rep.Missing, &rep.Extra, &rep.Changed, &rep.Orphaned} {
		kept := cat.Items[:0]
		for _, d := range cat.Items {
			kind, ok := dead[d.ID+"\x00"+d.SourceKey]
			if !ok {
				kept = append(kept, d)
				continue
			}
			cat.Count--
			d.Reason = why(kind)
			rep.DeadLettered.Count++
			rep.DeadLettered.Items = append(rep.DeadLettered.Items, d)
		}
		cat.Items = kept
	}
	rep.Clean = rep.Differences() == 0
}

// writeBack writes the target item a difference names back into the
// source; a target item gone meanwhile needs nothing.
func (c *Check) writeBack(ctx context.Context, d verify.Diff) error {
	key, err := migrate.ParseKey([]byte(d.TargetKey))
	if err != nil {
		return fmt.Errorf("rollback fix of item %q: %w", d.ID, err)
	}
	if key.HasUndefined() {
		return nil // no point read names it; the comparison reports it
	}
	retry := &migrate.Retrier{Clock: migrate.SystemClock{}, Tries: migrate.DefaultTransientTries}
	var it migrate.Item
	err = retry.Do(ctx, func() error {
		var err error
		it, err = c.Verifier.Writer.Read(ctx, key, d.ID)
		return err
	})
	switch {
	case errors.Is(err, migrate.ErrNotFound):
		return nil
	case err != nil:
		return fmt.Errorf("rollback fix: read target item %q: %w", d.ID, err)
	}
	_, err = c.Applier.Apply(ctx, it.Body, nil)
	return err
}

// applierCounts is a snapshot of what an Applier did, for a fix report.
type applierCounts struct{ written, deleted, dead int64 }

func (a *Applier) counts() applierCounts {
	s := &a.Stats
	return applierCounts{
		written: s.Created.Load() + s.Replaced.Load(),
		deleted: s.Deleted.Load(),
		dead:    s.DeadLettered.Load(),
	}
}
