// Package atomicfile writes files so that a crash never leaves a partial file under the final
// name: data goes to a temporary file in the same directory, is fsynced, and only then gets its
// final name (a hard link for create-only writes, a rename for replacements). Callers fsync the
// directory with [SyncDir] to make the new name durable.
package atomicfile

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// WriteTemp writes data to a new file (mode 0600) in dir named prefix + random hex + suffix,
// fsyncs it and returns its path. On error nothing is left behind.
func WriteTemp(dir, prefix, suffix string, data []byte) (string, error) {
	var rnd [12]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return "", fmt.Errorf("atomicfile: temporary file name: %w", err)
	}
	path := filepath.Join(dir, prefix+hex.EncodeToString(rnd[:])+suffix)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
		return "", err
	}
	return path, nil
}

// LinkNew gives the temporary file tmp the name final only if final does not exist (os.Link
// fails with an error wrapping fs.ErrExist otherwise), then removes the temporary name.
func LinkNew(tmp, final string) error {
	defer os.Remove(tmp) // the final name, if linked, keeps the content
	return os.Link(tmp, final)
}

// Replace renames the temporary file tmp over final; on failure it removes tmp.
func Replace(tmp, final string) error {
	if err := os.Rename(tmp, final); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return nil
}

// SyncDir fsyncs a directory, making the creation, rename or removal of its entries durable.
// File systems that cannot fsync a directory (EINVAL) are not an error.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}
