package rollback

import (
	"errors"
	"fmt"

	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/transform"
)

// A rollback's dead letters name each item by its id and its key in the
// source (the container the rollback writes: DeadLetter.SourceKey), with
// its key in the target as TargetKey and the target item as Item.

// change is one target item on its way back into the source.
type change struct {
	res  transform.Result // Key: the source key; SourceKey: the target key
	body []byte           // the target item (or the source item, for a delete)
}

func (c *change) key() migrate.Key { return migrate.Key(c.res.Key) }

func (c *change) sourceKey() []byte { return c.key().AppendJSON(nil) }

// conflict records a source item changed after the cutover by someone
// other than the rollback, which the rollback leaves as it is.
func (a *Applier) conflict(c *change, cur migrate.Item) error {
	a.Stats.Conflicts.Add(1)
	a.Stats.DeadLettered.Add(1)
	return a.Dead.Add(migrate.DeadLetter{
		Time: a.now(), SourceID: c.res.ID, SourceKey: c.sourceKey(), TargetKey: migrate.Key(c.res.SourceKey).AppendJSON(nil),
		Kind: migrate.KindConflict,
		Reason: fmt.Sprintf("the source item changed after the cutover (its _ts %d is after the cutover's %d), and not by this rollback: rekey does not overwrite it. "+
			"Decide which version wins: to keep the application's (the target's), save what you need of the source item and delete it, and the rollback's cutover copies the target's back; "+
			"to keep the source's, write it to the target, and the rollback copies it back",
			migrate.LastTS(cur.Body), a.Horizon),
		Item: c.body,
	})
}

// deadLetterUnmapped records a target item that cannot be mapped back: it
// lacks a field of the source's key (the application stopped writing it),
// or is not an item at all.
func (a *Applier) deadLetterUnmapped(target []byte, err error) error {
	var te *transform.Error
	if !errors.As(err, &te) {
		return fmt.Errorf("map a target item back to the source: %w", err)
	}
	a.Stats.DeadLettered.Add(1)
	return a.Dead.Add(migrate.DeadLetter{
		Time: a.now(), SourceID: te.ID, SourceKey: []byte("[]"), Kind: te.Kind.Error(),
		Reason: "the target item cannot go back to the source: " + te.Error() + " (the application must keep writing the source key's fields for a rollback to carry its items back)",
		Item:   target,
	})
}

// refused dead-letters an item the source refuses (400, 413, or 409 on a
// unique key of the source) and returns its kind; "" and nil when err is
// none of those.
func (a *Applier) refused(c *change, err error) (string, error) {
	var kind, reason string
	switch {
	case errors.Is(err, migrate.ErrBadRequest):
		kind, reason = migrate.KindRejected, "the source refused the item: "+migrate.ServiceMessage(err)
	case errors.Is(err, migrate.ErrTooLarge):
		kind, reason = migrate.KindTooLarge, fmt.Sprintf("the item is %d bytes, over the 2 MB item limit", len(c.res.Item))
	case errors.Is(err, migrate.ErrConflict):
		kind, reason = migrate.KindUniqueKey, "the source refused the item with 409 Conflict: another item of its logical partition has the same values of a unique key of the source"
	default:
		return "", nil
	}
	a.Stats.DeadLettered.Add(1)
	return kind, a.Dead.Add(migrate.DeadLetter{
		Time: a.now(), SourceID: c.res.ID, SourceKey: c.sourceKey(), TargetKey: migrate.Key(c.res.SourceKey).AppendJSON(nil),
		Kind: kind, Reason: reason, Item: c.body,
	})
}
