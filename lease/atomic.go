package lease

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// tempMarker is in the name of every temp file the file store writes; temp
// files also start with '.', which no lease id or state file does.
const tempMarker = ".tmp-"

// WriteFileAtomic writes dir/name as the file store writes every file (see
// writeFileAtomic), for state kept beside it: a rollback's ledger.
func WriteFileAtomic(dir, name string, data []byte) error { return writeFileAtomic(dir, name, data) }

// writeFileAtomic replaces dir/name with data so that a crash at any moment
// leaves either the old file or the new one, whole: the data goes to a temp
// file in the same directory, is fsynced, renamed over the target, and the
// directory is fsynced so the rename itself survives a power cut.
func writeFileAtomic(dir, name string, data []byte) (err error) {
	f, err := os.CreateTemp(dir, "."+name+tempMarker+"*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return err
	}
	return syncDir(dir)
}

// removeFileDurable removes dir/name and fsyncs dir.
func removeFileDurable(dir, name string) error {
	if err := os.Remove(filepath.Join(dir, name)); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir makes the directory's entries (a rename, a create, a remove)
// durable. Windows has no directory fsync; NTFS journals renames itself.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// mkdirDurable creates dir (and its parents) when absent and fsyncs the
// parent of each directory it created.
func mkdirDurable(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := mkdirDurable(filepath.Dir(dir)); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return syncDir(filepath.Dir(dir))
}

// removeTempFiles deletes the temp files a crash left in dir.
func removeTempFiles(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	removed := false
	for _, e := range entries {
		if isTempFile(e.Name()) && e.Type().IsRegular() {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("remove leftover temp file: %w", err)
			}
			removed = true
		}
	}
	if removed {
		return syncDir(dir)
	}
	return nil
}

func isTempFile(name string) bool {
	return strings.HasPrefix(name, ".") && strings.Contains(name, tempMarker)
}
