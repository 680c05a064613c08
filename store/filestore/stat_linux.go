package filestore

import (
	"io/fs"
	"syscall"
)

// statID returns the identity of the regular file de; ok is false for anything else.
func statID(de fs.DirEntry) (id fileID, ok bool) {
	if !de.Type().IsRegular() {
		return fileID{}, false
	}
	fi, err := de.Info()
	if err != nil {
		return fileID{}, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, false
	}
	return fileID{
		dev: uint64(st.Dev), ino: uint64(st.Ino), size: int64(st.Size), // field types vary by GOARCH
		mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano(),
	}, true
}
