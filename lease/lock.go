package lease

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"
)

// LockedError is returned by OpenFile when another process holds the state
// directory's lock. It wraps ErrLocked; its fields come from the lock file
// and are zero when the holder had not written them yet.
type LockedError struct {
	Dir      string    // the state directory
	PID      int       // the holder's process id
	Hostname string    // the holder's host
	Since    time.Time // when the holder took the lock
}

func (e *LockedError) Error() string {
	who := "another process"
	if e.PID != 0 {
		who = fmt.Sprintf("process %d on host %q", e.PID, e.Hostname)
		if !e.Since.IsZero() {
			who += fmt.Sprintf(" (since %s)", e.Since.Format(time.RFC3339))
		}
	}
	return fmt.Sprintf("%v: state directory %s is in use by %s; "+
		"wait for that rekey to finish or stop it, or give this one a different state directory",
		ErrLocked, e.Dir, who)
}

// Unwrap makes errors.Is(err, ErrLocked) true.
func (e *LockedError) Unwrap() error { return ErrLocked }

// lockHolder is what the lock file says about its holder.
type lockHolder struct {
	PID      int       `json:"pid"`
	Hostname string    `json:"hostname"`
	Since    time.Time `json:"since"`
}

// errLockBusy is what tryLock returns when another open file holds the lock.
var errLockBusy = errors.New("lock is held")

// acquireLock takes the exclusive, non-blocking OS lock on path for the life
// of the returned file and writes this process's pid and hostname into it.
// The OS drops the lock when the process dies, however it dies, so a crash
// never leaves a stale lock; the file's stale contents are overwritten by
// the next holder.
func acquireLock(dir, path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := tryLock(f); err != nil {
		f.Close()
		if errors.Is(err, errLockBusy) {
			return nil, lockedError(dir, path)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	host, _ := os.Hostname()
	info, _ := json.Marshal(lockHolder{PID: os.Getpid(), Hostname: host, Since: time.Now().UTC().Truncate(time.Second)})
	if err := writeHolder(f, append(info, '\n')); err != nil {
		unlock(f)
		f.Close()
		return nil, fmt.Errorf("write lock file %s: %w", path, err)
	}
	return f, nil
}

func writeHolder(f *os.File, info []byte) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	if _, err := f.WriteAt(info, 0); err != nil {
		return err
	}
	return f.Sync()
}

// releaseLock clears the holder information and drops the lock.
func releaseLock(f *os.File) error {
	terr := f.Truncate(0)
	uerr := unlock(f)
	cerr := f.Close()
	return errors.Join(terr, uerr, cerr)
}

// lockedError describes the lock's holder from the lock file. The holder may
// not have written it yet (or be writing it): then the fields stay zero.
func lockedError(dir, path string) error {
	e := &LockedError{Dir: dir}
	if b, err := os.ReadFile(path); err == nil {
		var h lockHolder
		if json.Unmarshal(b, &h) == nil {
			e.PID, e.Hostname, e.Since = h.PID, h.Hostname, h.Since
		}
	}
	return e
}
