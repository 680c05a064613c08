//go:build !linux

package filestore

import "io/fs"

// statID returns the identity of the regular file de (size and modification time only on this
// system); ok is false for anything else.
func statID(de fs.DirEntry) (id fileID, ok bool) {
	if !de.Type().IsRegular() {
		return fileID{}, false
	}
	fi, err := de.Info()
	if err != nil {
		return fileID{}, false
	}
	return fileID{size: fi.Size(), mtime: fi.ModTime().UnixNano()}, true
}
