package sim

import (
	"context"
	"fmt"
	"strings"

	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/migrate/migratetest"
)

// containerView is a container as one process sees it through the
// adapter: migrate.Source, migrate.Target and migrate.Partitioning, every
// request made through the process (latency, faults, crashes). Writes to
// the target are checked as they take effect.
type containerView struct {
	p    *process
	side string // "src" or "tgt": the prefix of its request kinds
	c    *migratetest.Container
}

var (
	_ migrate.Source       = containerView{}
	_ migrate.Target       = containerView{}
	_ migrate.Partitioning = containerView{}
)

var background = context.Background()

func (v containerView) Definition(ctx context.Context) (def migrate.Definition, err error) {
	err = v.p.do(ctx, v.side+".def", "", func(landing) (string, error) {
		def, err = v.c.Definition(background)
		return "ok", err
	})
	return def, err
}

func (v containerView) FeedRanges(ctx context.Context) (ranges []migrate.FeedRange, err error) {
	err = v.p.do(ctx, v.side+".ranges", "", func(landing) (string, error) {
		ranges, err = v.c.FeedRanges(background)
		return fmt.Sprintf("%d ranges", len(ranges)), err
	})
	return ranges, err
}

func (v containerView) ReadChanges(ctx context.Context, req migrate.ChangeRequest) (page migrate.ChangePage, err error) {
	obj := fmt.Sprintf("[%.6s,%.6s)", req.Range.Min, req.Range.Max)
	err = v.p.do(ctx, v.side+".feed", obj, func(landing) (string, error) {
		page, err = v.c.ReadChanges(background, req)
		if v.side == "src" && err == nil {
			v.p.w.check.looked(v.p, req.Range, page.Items)
		}
		if v.side == "tgt" && err == nil {
			v.p.w.check.lookedTarget(v.p, req.Range)
		}
		return fmt.Sprintf("%d items %s", len(page.Items), itemIDs(page.Items)), err
	})
	return page, err
}

func (v containerView) ReadItem(ctx context.Context, key migrate.Key, id string) (migrate.Item, error) {
	return v.Read(ctx, key, id)
}

func (v containerView) ItemCount(ctx context.Context) (n int64, err error) {
	err = v.p.do(ctx, v.side+".count", "", func(landing) (string, error) {
		n, err = v.c.ItemCount(background)
		return fmt.Sprint(n), err
	})
	return n, err
}

func (v containerView) Read(ctx context.Context, key migrate.Key, id string) (it migrate.Item, err error) {
	err = v.p.do(ctx, v.side+".read", itemAddr(key, id), func(landing) (string, error) {
		it, err = v.c.Read(background, key, id)
		if v.side == "src" && err == nil {
			v.p.w.check.looked(v.p, migrate.FeedRange{}, [][]byte{it.Body})
		}
		return versionOf(it.Body), err
	})
	return it, err
}

// The writes below may land after their caller stopped waiting (process.do,
// inFlight): they hand their result back only when it lands on time.

func (v containerView) Create(ctx context.Context, key migrate.Key, body []byte) (res migrate.WriteResult, err error) {
	id := idOf(body)
	err = v.p.doSalted(ctx, v.side+".create", itemAddr(key, id), identityOf(body)+versionOf(body), func(how landing) (string, error) {
		if v.side == "tgt" && v.p.w.loseCreate != nil && v.p.w.loseCreate(itemAddr(key, id)) {
			if how != landedLate {
				res = migrate.WriteResult{RU: 5, ETag: `"lost"`}
			}
			return "lost (self-test)", nil
		}
		r, err := v.c.Create(background, key, body)
		if err == nil {
			v.written("create", key, id, migrate.Item{}, false, body, how == landedLate)
		}
		if how != landedLate {
			res = r
		}
		return "created " + versionOf(body), err
	})
	return res, err
}

func (v containerView) Replace(ctx context.Context, key migrate.Key, id string, body []byte, ifMatch string) (res migrate.WriteResult, err error) {
	err = v.p.doSalted(ctx, v.side+".replace", itemAddr(key, id), identityOf(body)+versionOf(body), func(how landing) (string, error) {
		old, had := v.c.Get(key, id)
		r, err := v.c.Replace(background, key, id, body, ifMatch)
		if err == nil {
			v.written("replace", key, id, old, had, body, how == landedLate)
		}
		if how != landedLate {
			res = r
		}
		return fmt.Sprintf("%s over %s", versionOf(body), versionOf(old.Body)), err
	})
	return res, err
}

func (v containerView) Delete(ctx context.Context, key migrate.Key, id string, ifMatch string) (res migrate.WriteResult, err error) {
	err = v.p.do(ctx, v.side+".delete", itemAddr(key, id), func(how landing) (string, error) {
		old, had := v.c.Get(key, id)
		r, err := v.c.Delete(background, key, id, ifMatch)
		if err == nil {
			v.written("delete", key, id, old, had, nil, how == landedLate)
		}
		if how != landedLate {
			res = r
		}
		return "deleted " + versionOf(old.Body), err
	})
	return res, err
}

func (v containerView) CreateBatch(ctx context.Context, key migrate.Key, bodies [][]byte) (res migrate.BatchResult, err error) {
	err = v.p.doSalted(ctx, v.side+".batch", fmt.Sprintf("%s x%d", keyText(key), len(bodies)), itemIDs(bodies), func(how landing) (string, error) {
		r, err := v.c.CreateBatch(background, key, bodies)
		if err == nil && r.Committed {
			for _, b := range bodies {
				v.written("create", key, idOf(b), migrate.Item{}, false, b, how == landedLate)
			}
		}
		if how != landedLate {
			res = r
		}
		return fmt.Sprintf("committed %v %v", r.Committed, r.Statuses), err
	})
	return res, err
}

// written tells the checks about a write to the target that took effect.
func (v containerView) written(verb string, key migrate.Key, id string, old migrate.Item, had bool, body []byte, late bool) {
	if v.side == "tgt" {
		v.p.w.check.targetWritten(v.p, verb, key, id, old, had, body, late)
	}
}

// itemIDs lists the ids and versions of a page's items, for the trace.
func itemIDs(items [][]byte) string {
	parts := make([]string, 0, len(items))
	for _, it := range items {
		parts = append(parts, idOf(it)+"@"+versionOf(it))
	}
	return strings.Join(parts, ",")
}
