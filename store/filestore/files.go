package filestore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/dpkeyring/dpkeyring/internal/atomicfile"
)

// locked runs fn holding the exclusive OS lock (flock) of the ring in dir, creating the ring
// directory (0700) if needed.
func (s *Store) locked(ring, dir string, fn func() error) error {
	if err := os.Mkdir(dir, 0o700); err == nil {
		if err := syncDir(s.root); err != nil {
			return err
		}
	} else if !errors.Is(err, fs.ErrExist) {
		return pathError("creating ring "+ring, dir, "write", err)
	}
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return pathError("opening the ring lock", path, "write", err)
	}
	defer f.Close()
	if err := flock(f); err != nil {
		return fmt.Errorf("filestore: locking %s: %w", path, err)
	}
	// Closing the file releases the lock; unlock explicitly anyway, before the close.
	defer funlock(f)
	return fn()
}

// writeTemp writes data to a new temporary file (0600) in dir and fsyncs it. The name starts
// with ".tmp-" and does not end in ".xml", so readers ignore it.
func writeTemp(dir string, data []byte) (string, error) {
	path, err := atomicfile.WriteTemp(dir, tempPrefix, "", data)
	if err != nil {
		return "", pathError("writing a temporary file", dir, "write", err)
	}
	return path, nil
}

// createFileNoSync creates dir/name holding data, never replacing an existing file: it writes
// a temporary file, fsyncs it, hard-links it to the final name (which fails with an error
// wrapping fs.ErrExist if the name is taken) and removes the temporary name. The caller fsyncs
// dir to make the new name durable.
func createFileNoSync(dir, name string, data []byte) error {
	tmp, err := writeTemp(dir, data)
	if err != nil {
		return err
	}
	final := filepath.Join(dir, name)
	if err := atomicfile.LinkNew(tmp, final); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return err
		}
		return pathError("creating "+name, final, "write", err)
	}
	return nil
}

// replaceFile atomically replaces (or creates) dir/name with data: temporary file, fsync,
// rename, fsync dir.
func replaceFile(dir, name string, data []byte) error {
	if err := replaceFileNoSync(dir, name, data); err != nil {
		return err
	}
	return syncDir(dir)
}

// replaceFileNoSync is replaceFile without the directory fsync; the caller does it.
func replaceFileNoSync(dir, name string, data []byte) error {
	tmp, err := writeTemp(dir, data)
	if err != nil {
		return err
	}
	final := filepath.Join(dir, name)
	if err := atomicfile.Replace(tmp, final); err != nil {
		return pathError("replacing "+name, final, "write", err)
	}
	return nil
}

// syncDir fsyncs a directory, making the creation, rename or removal of its entries durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return pathError("opening directory for fsync", dir, "read", err)
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("filestore: fsync %s: %w", dir, err)
	}
	return nil
}
