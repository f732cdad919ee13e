package lease

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
)

// The layout of a state directory.
const (
	metaFileName = "state.json" // the Meta
	leasesDir    = "leases"     // one <id>.json per lease
	lockFileName = "lock"       // flocked while a process uses the state
	leaseExt     = ".json"
)

// FileStore keeps a migration's state in a directory on one machine, for
// `rekey run --state DIR`. One process at a time uses a directory: OpenFile
// takes an OS lock that the OS releases when the process exits or dies.
//
// Every write is atomic and durable (temp file, fsync, rename, directory
// fsync): a crash at any moment leaves each file either as it was or as it
// was to become. Leases are compare-and-swap on the ETag kept in each lease
// file, between the goroutines of the owning process. Lease files hold the
// same documents the Cosmos store writes (ids "<DefaultPrefix>..<lease id>").
//
// A FileStore is safe for concurrent use.
type FileStore struct {
	dir      string
	leaseDir string
	opts     options
	lock     *os.File // nil when read-only
	closed   atomic.Bool

	metaMu sync.Mutex // serialises meta writes

	mu    sync.Mutex             // guards locks
	locks map[string]*sync.Mutex // one per lease id: read-compare-write is atomic
}

var _ Store = (*FileStore)(nil)

// OpenFile opens the state directory dir, creating it when absent, and
// locks it. When another process holds the lock it fails at once with a
// *LockedError (errors.Is ErrLocked) naming that process. Temp files left by
// a crash are removed.
//
// With ReadOnly, OpenFile takes no lock and creates nothing; a missing
// directory is an error wrapping ErrNoMeta.
func OpenFile(dir string, opts ...Option) (*FileStore, error) {
	s := &FileStore{
		dir:      dir,
		leaseDir: filepath.Join(dir, leasesDir),
		opts:     buildOptions(opts),
		locks:    make(map[string]*sync.Mutex),
	}
	if s.opts.readOnly {
		if _, err := os.Stat(dir); err != nil {
			return nil, fmt.Errorf("open state %s: %w: %w", dir, ErrNoMeta, err)
		}
		return s, nil
	}
	if err := mkdirDurable(dir); err != nil {
		return nil, fmt.Errorf("create state directory %s: %w", dir, err)
	}
	lock, err := acquireLock(dir, filepath.Join(dir, lockFileName))
	if err != nil {
		return nil, err
	}
	s.lock = lock
	if err := s.prepare(); err != nil {
		releaseLock(lock)
		return nil, fmt.Errorf("open state %s: %w", dir, err)
	}
	return s, nil
}

func (s *FileStore) prepare() error {
	if err := mkdirDurable(s.leaseDir); err != nil {
		return err
	}
	if err := removeTempFiles(s.dir); err != nil {
		return err
	}
	return removeTempFiles(s.leaseDir)
}

// Dir returns the state directory.
func (s *FileStore) Dir() string { return s.dir }

// Close releases the directory's lock. The store is unusable afterwards.
func (s *FileStore) Close() error {
	if s.closed.Swap(true) || s.lock == nil {
		return nil
	}
	if err := releaseLock(s.lock); err != nil {
		return fmt.Errorf("release lock of %s: %w", s.dir, err)
	}
	return nil
}

// check fails when the store cannot serve a call.
func (s *FileStore) check(ctx context.Context, write bool) error {
	if s.closed.Load() {
		return errClosed
	}
	if write && s.opts.readOnly {
		return ErrReadOnly
	}
	return ctx.Err()
}

// Init records m in state.json when the directory holds no migration yet and
// returns it; otherwise it returns the recorded meta, unchanged.
func (s *FileStore) Init(ctx context.Context, m Meta) (Meta, error) {
	if err := s.check(ctx, false); err != nil {
		return Meta{}, fmt.Errorf("init state: %w", err)
	}
	s.metaMu.Lock()
	defer s.metaMu.Unlock()
	rec, err := s.readMeta()
	if err == nil || !errors.Is(err, ErrNoMeta) {
		return rec, err
	}
	if s.opts.readOnly {
		return Meta{}, fmt.Errorf("init state: %w", ErrReadOnly)
	}
	if err := s.writeMeta(m); err != nil {
		return Meta{}, err
	}
	return s.readMeta()
}

// ReadMeta returns the recorded meta; an error wrapping ErrNoMeta when there
// is none.
func (s *FileStore) ReadMeta(ctx context.Context) (Meta, error) {
	if err := s.check(ctx, false); err != nil {
		return Meta{}, fmt.Errorf("read state: %w", err)
	}
	return s.readMeta()
}

// UpdateMeta replaces the recorded meta, keeping the recorded DefaultUses
// and phase.
func (s *FileStore) UpdateMeta(ctx context.Context, m Meta) error {
	if err := s.check(ctx, true); err != nil {
		return fmt.Errorf("update state: %w", err)
	}
	s.metaMu.Lock()
	defer s.metaMu.Unlock()
	rec, err := s.readMeta()
	switch {
	case err == nil:
		m = keepPhase(m, rec)
		m.DefaultsUsed = MergeDefaultUses(rec.DefaultsUsed, m.DefaultsUsed)
	case !errors.Is(err, ErrNoMeta):
		return fmt.Errorf("update state: %w", err)
	}
	return s.writeMeta(m)
}

// SwapMeta edits the recorded meta with change and writes it, all under the
// store's meta lock: only the process holding the directory's lock writes
// state.json, so no other write can land in between.
func (s *FileStore) SwapMeta(ctx context.Context, change func(*Meta) error) (Meta, error) {
	if err := s.check(ctx, true); err != nil {
		return Meta{}, fmt.Errorf("update state: %w", err)
	}
	s.metaMu.Lock()
	defer s.metaMu.Unlock()
	m, err := s.readMeta()
	if err != nil {
		return Meta{}, fmt.Errorf("update state: %w", err)
	}
	if err := change(&m); err != nil {
		return Meta{}, err
	}
	if err := s.writeMeta(m); err != nil {
		return Meta{}, err
	}
	return s.readMeta()
}

func (s *FileStore) readMeta() (Meta, error) {
	path := filepath.Join(s.dir, metaFileName)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Meta{}, fmt.Errorf("read %s: %w", path, ErrNoMeta)
	}
	if err != nil {
		return Meta{}, fmt.Errorf("read %s: %w", path, err)
	}
	m, err := decodeMeta(b)
	if err != nil {
		return Meta{}, corrupt(path, err)
	}
	return m, nil
}

func (s *FileStore) writeMeta(m Meta) error {
	b, err := encodeMeta(DefaultPrefix+".meta", m)
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	if err := writeFileAtomic(s.dir, metaFileName, b); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Join(s.dir, metaFileName), err)
	}
	return nil
}

// List returns every lease, ordered by Range.Min. Files are read one by one,
// each whole; a lease deleted during the listing is left out.
func (s *FileStore) List(ctx context.Context) ([]Lease, error) {
	if err := s.check(ctx, false); err != nil {
		return nil, fmt.Errorf("list leases: %w", err)
	}
	entries, err := os.ReadDir(s.leaseDir)
	if errors.Is(err, fs.ErrNotExist) && s.opts.readOnly {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list leases: %w", err)
	}
	var out []Lease
	for _, e := range entries {
		name := e.Name()
		if isTempFile(name) || !strings.HasSuffix(name, leaseExt) || !e.Type().IsRegular() {
			continue
		}
		l, err := s.readLease(strings.TrimSuffix(name, leaseExt))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	sortLeases(out)
	return out, nil
}

// Read returns the lease with the given id; ErrLeaseNotFound when its file
// does not exist.
func (s *FileStore) Read(ctx context.Context, id string) (Lease, error) {
	if err := s.check(ctx, false); err != nil {
		return Lease{}, fmt.Errorf("read lease %s: %w", id, err)
	}
	if err := validateID(id); err != nil {
		return Lease{}, fmt.Errorf("read lease: %w", err)
	}
	l, err := s.readLease(id)
	if errors.Is(err, fs.ErrNotExist) {
		return Lease{}, fmt.Errorf("read lease %s: %w", id, ErrLeaseNotFound)
	}
	return l, err
}

// Create writes a new lease stamped with the store's clock; ErrLeaseExists
// when its id is taken.
func (s *FileStore) Create(ctx context.Context, l Lease) (Lease, error) {
	if err := s.check(ctx, true); err != nil {
		return Lease{}, fmt.Errorf("create lease %s: %w", l.ID, err)
	}
	if err := validateID(l.ID); err != nil {
		return Lease{}, fmt.Errorf("create lease: %w", err)
	}
	unlock := s.lockID(l.ID)
	defer unlock()
	if _, err := os.Lstat(s.leasePath(l.ID)); err == nil {
		return Lease{}, fmt.Errorf("create lease %s: %w", l.ID, ErrLeaseExists)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return Lease{}, fmt.Errorf("create lease %s: %w", l.ID, err)
	}
	return s.writeLease("create", l)
}

// Update replaces the lease if its file still has l.ETag, stamping it with
// the store's clock; ErrLeaseLost when the ETag differs or the lease is gone.
func (s *FileStore) Update(ctx context.Context, l Lease) (Lease, error) {
	if err := s.check(ctx, true); err != nil {
		return Lease{}, fmt.Errorf("update lease %s: %w", l.ID, err)
	}
	if err := validateID(l.ID); err != nil {
		return Lease{}, fmt.Errorf("update lease: %w", err)
	}
	unlock := s.lockID(l.ID)
	defer unlock()
	if err := s.compare("update", l); err != nil {
		return Lease{}, err
	}
	return s.writeLease("update", l)
}

// Delete removes the lease if its file still has l.ETag; ErrLeaseLost when
// the ETag differs or the lease is gone.
func (s *FileStore) Delete(ctx context.Context, l Lease) error {
	if err := s.check(ctx, true); err != nil {
		return fmt.Errorf("delete lease %s: %w", l.ID, err)
	}
	if err := validateID(l.ID); err != nil {
		return fmt.Errorf("delete lease: %w", err)
	}
	unlock := s.lockID(l.ID)
	defer unlock()
	if err := s.compare("delete", l); err != nil {
		return err
	}
	if err := removeFileDurable(s.leaseDir, l.ID+leaseExt); err != nil {
		return fmt.Errorf("delete lease %s: %w", l.ID, err)
	}
	return nil
}

// compare is the CAS check: the lease file must exist with l's ETag. The
// caller holds the id's lock.
func (s *FileStore) compare(op string, l Lease) error {
	cur, err := s.readLease(l.ID)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s lease %s: %w (it was deleted)", op, l.ID, ErrLeaseLost)
	case err != nil:
		return fmt.Errorf("%s lease %s: %w", op, l.ID, err)
	case l.ETag == "" || cur.ETag != l.ETag:
		return fmt.Errorf("%s lease %s: %w (now owned by %q)", op, l.ID, ErrLeaseLost, cur.Owner)
	}
	return nil
}

// writeLease stamps l, gives it a fresh ETag and writes its file. The caller
// holds the id's lock.
func (s *FileStore) writeLease(op string, l Lease) (Lease, error) {
	l.Timestamp = s.opts.now()
	l.ETag = rand.Text()
	l = normalize(l)
	b, err := encodeLease(DefaultPrefix+".."+l.ID, l, l.ETag)
	if err != nil {
		return Lease{}, fmt.Errorf("%s lease %s: %w", op, l.ID, err)
	}
	if err := writeFileAtomic(s.leaseDir, l.ID+leaseExt, b); err != nil {
		return Lease{}, fmt.Errorf("%s lease %s: write %s: %w", op, l.ID, s.leasePath(l.ID), err)
	}
	return l, nil
}

// readLease reads and checks one lease file; errors wrap fs.ErrNotExist
// when it is absent and ErrCorrupt when it does not decode.
func (s *FileStore) readLease(id string) (Lease, error) {
	path := s.leasePath(id)
	b, err := os.ReadFile(path)
	if err != nil {
		return Lease{}, fmt.Errorf("read lease %s: %w", id, err)
	}
	l, _, err := decodeLease(b)
	switch {
	case err != nil:
		return Lease{}, corrupt(path, err)
	case l.ID != id:
		return Lease{}, corrupt(path, fmt.Errorf("LeaseToken %q does not match the file name", l.ID))
	case l.ETag == "":
		return Lease{}, corrupt(path, errors.New(`no "_etag"`))
	}
	return l, nil
}

func (s *FileStore) leasePath(id string) string {
	return filepath.Join(s.leaseDir, id+leaseExt)
}

// lockID locks one lease id and returns its unlock.
func (s *FileStore) lockID(id string) func() {
	s.mu.Lock()
	m, ok := s.locks[id]
	if !ok {
		m = new(sync.Mutex)
		s.locks[id] = m
	}
	s.mu.Unlock()
	m.Lock()
	return m.Unlock
}
