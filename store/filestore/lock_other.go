//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package filestore

import (
	"errors"
	"os"
)

// flockSupported is false where syscall.Flock does not exist: Open refuses to open a store there.
const flockSupported = false

func flock(*os.File) error { return errors.ErrUnsupported }

func funlock(*os.File) {}
