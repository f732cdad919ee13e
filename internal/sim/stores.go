package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"sync"
	"syscall"

	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/lease/leasetest"
	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/migrate/deadletter"
)

// storeView is the file state (lease.FileStore) as one process uses it:
// every call a local request of the process. It embeds the store so that
// methods it does not know of still reach it.
type storeView struct {
	lease.Store
	p *process
}

func (s storeView) Init(ctx context.Context, m lease.Meta) (got lease.Meta, err error) {
	err = s.p.do(ctx, "store.init", "", func(landing) (string, error) {
		got, err = s.Store.Init(background, m)
		return "ok", err
	})
	return got, err
}

func (s storeView) ReadMeta(ctx context.Context) (m lease.Meta, err error) {
	err = s.p.do(ctx, "store.meta.read", "", func(landing) (string, error) {
		m, err = s.Store.ReadMeta(background)
		return "ok", err
	})
	return m, err
}

// UpdateMeta keeps the recorded phase (cutover requests and records), so
// it records no cutover whatever m holds.
func (s storeView) UpdateMeta(ctx context.Context, m lease.Meta) error {
	return s.p.do(ctx, "store.meta.update", "", func(landing) (string, error) {
		return "ok", s.Store.UpdateMeta(background, m)
	})
}

// SwapMeta is the compare-and-swap that requests, records and withdraws
// a cutover.
func (s storeView) SwapMeta(ctx context.Context, change func(*lease.Meta) error) (got lease.Meta, err error) {
	err = s.p.do(ctx, "store.meta.swap", "", func(landing) (string, error) {
		got, err = s.Store.SwapMeta(background, change)
		if err == nil && got.Cutover != nil {
			s.p.w.check.cutoverRecorded(s.p, got.Cutover.At)
		}
		return metaOutcome(got), err
	})
	return got, err
}

func (s storeView) List(ctx context.Context) (ls []lease.Lease, err error) {
	err = s.p.do(ctx, "store.list", "", func(landing) (string, error) {
		s.p.w.check.leasesListed(s.p)
		ls, err = s.Store.List(background)
		return fmt.Sprintf("%d leases", len(ls)), err
	})
	return ls, err
}

func (s storeView) Read(ctx context.Context, id string) (l lease.Lease, err error) {
	err = s.p.do(ctx, "store.lease.read", id, func(landing) (string, error) {
		l, err = s.Store.Read(background, id)
		return leaseOutcome(l), err
	})
	return l, err
}

func (s storeView) Create(ctx context.Context, l lease.Lease) (got lease.Lease, err error) {
	err = s.p.do(ctx, "store.lease.create", l.ID, func(landing) (string, error) {
		got, err = s.Store.Create(background, l)
		if err == nil {
			s.p.w.check.leaseWritten(s.p, l.ID, l.Owner)
		}
		return leaseOutcome(l), err
	})
	return got, err
}

func (s storeView) Update(ctx context.Context, l lease.Lease) (got lease.Lease, err error) {
	err = s.p.do(ctx, "store.lease.update", l.ID, func(how landing) (string, error) {
		got, err = s.Store.Update(background, l)
		if err == nil && how == landedLate {
			s.p.w.check.leaseLandedLate(s.p, l.ID)
		}
		if err == nil && how != landedLate {
			s.p.w.check.leaseWritten(s.p, l.ID, l.Owner)
		}
		return leaseOutcome(l), err
	})
	return got, err
}

func (s storeView) Delete(ctx context.Context, l lease.Lease) error {
	return s.p.do(ctx, "store.lease.delete", l.ID, func(landing) (string, error) {
		return "deleted", s.Store.Delete(background, l)
	})
}

// docsView is the lease container (lease.Documents) as one process uses
// it through the adapter.
type docsView struct {
	p *process
	d *leasetest.MemDocuments
}

var _ deadletter.Documents = docsView{}

// docClass names what a document of the lease container holds.
func docClass(id string) string {
	switch {
	case strings.Contains(id, ".dead.."):
		return "dead"
	case strings.HasSuffix(id, ".meta"):
		return "meta"
	}
	return "lease"
}

func (v docsView) Read(ctx context.Context, id string) (doc lease.Doc, err error) {
	err = v.p.do(ctx, "docs."+docClass(id)+".read", shortID(id), func(landing) (string, error) {
		doc, err = v.d.Read(background, id)
		return "ok", err
	})
	return doc, err
}

func (v docsView) Create(ctx context.Context, id string, body []byte) (etag string, err error) {
	err = v.p.do(ctx, "docs."+docClass(id)+".create", shortID(id), func(how landing) (string, error) {
		e, err := v.d.Create(background, id, body)
		v.metaWritten(id, body, err)
		v.leaseWritten(id, body, err, how)
		if how != landedLate { // a late write's caller is gone
			etag = e
		}
		return docOutcome(id, body), err
	})
	return etag, err
}

func (v docsView) Replace(ctx context.Context, id string, body []byte, ifMatch string) (etag string, err error) {
	err = v.p.do(ctx, "docs."+docClass(id)+".replace", shortID(id), func(how landing) (string, error) {
		e, err := v.d.Replace(background, id, body, ifMatch)
		v.metaWritten(id, body, err)
		v.leaseWritten(id, body, err, how)
		if err == nil && how == landedLate && docClass(id) == "lease" {
			v.p.w.check.leaseLandedLate(v.p, shortID(id))
		}
		if how != landedLate {
			etag = e
		}
		return docOutcome(id, body), err
	})
	return etag, err
}

func (v docsView) Delete(ctx context.Context, id string, ifMatch string) error {
	return v.p.do(ctx, "docs."+docClass(id)+".delete", shortID(id), func(landing) (string, error) {
		return "deleted", v.d.Delete(background, id, ifMatch)
	})
}

func (v docsView) List(ctx context.Context, prefix string) (docs []lease.Doc, err error) {
	err = v.p.do(ctx, "docs."+docClass(prefix)+".list", shortID(prefix), func(landing) (string, error) {
		if docClass(prefix) == "lease" {
			v.p.w.check.leasesListed(v.p)
		}
		docs, err = v.d.List(background, prefix)
		return fmt.Sprintf("%d documents", len(docs)), err
	})
	return docs, err
}

// Scan reads the documents under prefix in one request and calls fn with
// each after it took effect (fn may make requests of its own).
func (v docsView) Scan(ctx context.Context, prefix string, fn func(lease.Doc) error) error {
	docs, err := v.List(ctx, prefix)
	if err != nil {
		return err
	}
	for _, d := range docs {
		if err := fn(d); err != nil {
			return err
		}
	}
	return nil
}

// ScanIDs is Scan reading the ids only.
func (v docsView) ScanIDs(ctx context.Context, prefix string, fn func(id string) error) error {
	return v.Scan(ctx, prefix, func(d lease.Doc) error { return fn(d.ID) })
}

// metaWritten tells the checks of a meta document that records a cutover.
func (v docsView) metaWritten(id string, body []byte, err error) {
	if err != nil || docClass(id) != "meta" {
		return
	}
	var m struct {
		Cutover *lease.Cutover `json:"cutover"`
	}
	if json.Unmarshal(body, &m) == nil && m.Cutover != nil {
		v.p.w.check.cutoverRecorded(v.p, m.Cutover.At)
	}
}

// leaseWritten tells the checks of a lease document this process wrote
// while it waited for the answer.
func (v docsView) leaseWritten(id string, body []byte, err error, how landing) {
	if err != nil || how == landedLate || docClass(id) != "lease" {
		return
	}
	var l struct {
		Owner string `json:"Owner"`
	}
	if json.Unmarshal(body, &l) == nil {
		v.p.w.check.leaseWritten(v.p, shortID(id), l.Owner)
	}
}

// deadFile is the dead-letter file as one process uses it. It remembers
// how much of the file was synced, so that a machine crash can take the
// rest (see loseUnsynced).
type deadFile struct {
	*deadletter.FileStore
	p *process

	mu     sync.Mutex
	synced int64
	dirty  bool // lines were added since the last sync
}

var _ migrate.DeadLetterStore = (*deadFile)(nil)

// Add appends a line to the file's buffer; a full disk refuses it only at
// the next sync.
func (d *deadFile) Add(dl migrate.DeadLetter) error {
	return d.p.do(d.p.ctxLocal(), "dl.add", ident(dl.SourceID, string(dl.SourceKey)), func(landing) (string, error) {
		err := d.FileStore.Add(dl)
		d.markDirty(err == nil)
		return dl.Kind, err
	})
}

// Resolve appends a line when the item was dead.
func (d *deadFile) Resolve(sourceID string, sourceKey json.RawMessage) error {
	return d.p.do(d.p.ctxLocal(), "dl.resolve", ident(sourceID, string(sourceKey)), func(landing) (string, error) {
		before, _ := d.FileStore.Count()
		err := d.FileStore.Resolve(sourceID, sourceKey)
		after, _ := d.FileStore.Count()
		d.markDirty(err == nil && after < before)
		return "resolved", err
	})
}

// Sync writes the buffered lines and fsyncs (a full disk meets it in the
// file's writer, fullDisk). A crash in the middle (landedCut) leaves what
// it wrote unsynced, for a machine crash to take.
func (d *deadFile) Sync() error {
	d.mu.Lock()
	kind := "dl.sync"
	if !d.dirty {
		kind = "dl.sync.clean" // nothing to write
	}
	d.mu.Unlock()
	return d.p.do(d.p.ctxLocal(), kind, "", func(how landing) (string, error) {
		if err := d.FileStore.Sync(); err != nil {
			return "", err
		}
		st, err := os.Stat(d.Path())
		if err != nil {
			return "", err
		}
		if how != landedCut {
			d.mu.Lock()
			d.synced, d.dirty = st.Size(), false
			d.mu.Unlock()
		}
		return fmt.Sprintf("%d bytes", st.Size()), nil
	})
}

// Each reads the dead items as one local request.
func (d *deadFile) Each(fn func(migrate.DeadLetter) error) error {
	list, err := d.List()
	if err != nil {
		return err
	}
	for _, dl := range list {
		if err := fn(dl); err != nil {
			return err
		}
	}
	return nil
}

// fullDisk is the writer under a process's dead-letter file: while the
// disk is full (Fault faultDiskFull), a write puts a part of its bytes on
// disk, drawn by the seed, and fails with ENOSPC, as a short write does.
type fullDisk struct {
	w io.Writer
	p *process
}

func (f fullDisk) Write(b []byte) (int, error) {
	if !f.p.w.diskFull(f.p) {
		return f.w.Write(b)
	}
	n := int(f.p.w.dice.roll(f.p.name, "short-write").Int64N(int64(len(b)) + 1))
	n, err := f.w.Write(b[:n])
	if err == nil {
		err = &fs.PathError{Op: "write", Path: f.p.w.deadLetterPath(), Err: syscall.ENOSPC}
	}
	f.p.w.trace.add(f.p.name, "dl.disk", "", fmt.Sprintf("full: wrote %d of %d bytes", n, len(b)))
	return n, err
}

func (d *deadFile) markDirty(wrote bool) {
	if wrote {
		d.mu.Lock()
		d.dirty = true
		d.mu.Unlock()
	}
}

func (d *deadFile) List() (out []migrate.DeadLetter, err error) {
	err = d.p.do(d.p.ctxLocal(), "dl.list", "", func(landing) (string, error) {
		out, err = d.FileStore.List()
		return fmt.Sprintf("%d dead", len(out)), err
	})
	return out, err
}

// loseUnsynced is a machine crash's effect on the file: what was written
// after the last sync is lost, all or some of it, which can leave a torn
// last line. keep draws how many unsynced bytes survive.
func (d *deadFile) loseUnsynced(keep func(n int64) int64) error {
	st, err := os.Stat(d.Path())
	if err != nil {
		return err
	}
	d.mu.Lock()
	synced := d.synced
	d.mu.Unlock()
	if st.Size() <= synced {
		return nil
	}
	size := synced + keep(st.Size()-synced)
	d.p.w.trace.add(d.p.name, "dl.lost", "", fmt.Sprintf("the machine kept %d of %d bytes", size, st.Size()))
	return os.Truncate(d.Path(), size)
}

// ctxLocal is the context of a process's local writes: they are not
// cancelled by a shutdown, only stopped by a crash.
func (p *process) ctxLocal() context.Context { return background }

// shortID is a lease-container document id without the migration's
// prefix, for the trace.
func shortID(id string) string { return strings.TrimPrefix(id, leasePrefix) }

func leaseOutcome(l lease.Lease) string {
	return fmt.Sprintf("owner %q items %d", l.Owner, l.Items)
}

func metaOutcome(m lease.Meta) string {
	switch {
	case m.Cutover != nil:
		return "cutover recorded"
	case m.CutoverRequest != nil:
		return "cutover requested"
	}
	return "ok"
}

func docOutcome(id string, body []byte) string {
	switch docClass(id) {
	case "lease":
		var l struct {
			Owner string `json:"Owner"`
		}
		_ = json.Unmarshal(body, &l)
		return fmt.Sprintf("owner %q", l.Owner)
	case "meta":
		switch {
		case strings.Contains(string(body), `"cutover"`):
			return "cutover recorded"
		case strings.Contains(string(body), `"cutoverRequest"`):
			return "cutover requested"
		}
	}
	return "ok"
}
