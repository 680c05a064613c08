package filestore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dpkeyring/dpkeyring/keyring"
	"github.com/dpkeyring/dpkeyring/store"
)

// DefaultDir is the root directory used when none is configured.
const DefaultDir = "./data"

// Sentinel errors of the file store (besides the store sentinels).
var (
	// ErrUnreadableFile reports a "*.xml" file in a ring directory that is not one well-formed
	// XML element. The wrapping error names the file.
	ErrUnreadableFile = errors.New("filestore: unreadable element file")
	// ErrInvalidElement reports an Append whose bytes are not one XML element.
	ErrInvalidElement = errors.New("filestore: element is not one XML element")
)

// Names of the bookkeeping files in a ring directory. None ends in ".xml".
const (
	lockFile    = ".dpkeyring.lock"
	leaseFile   = ".dpkeyring-lease.json"
	metaFile    = ".dpkeyring-meta.json"
	versionFile = ".dpkeyring-version"
	tempPrefix  = ".tmp-"
	xmlSuffix   = ".xml"
)

// Config configures a file store.
type Config struct {
	// Dir is the root directory; one subdirectory per ring. Empty means [DefaultDir].
	Dir string
}

// String returns the store spec of c.
func (c Config) String() string { return "file:" + c.dir() }

func (c Config) dir() string {
	if c.Dir == "" {
		return DefaultDir
	}
	return c.Dir
}

// ParseURL parses a file store spec: "file:./data" or "file:relative/dir" (relative to the
// working directory), "file:///abs/path" (or "file://localhost/abs/path"), and "file:" for
// [DefaultDir]. Errors wrap [store.ErrInvalidSpec]. getenv is unused: the file store has no
// secrets.
func ParseURL(u *url.URL, getenv func(string) string) (Config, error) {
	_ = getenv
	if u == nil || u.Scheme != "file" {
		return Config{}, fmt.Errorf("%w: file store spec must start with \"file:\"", store.ErrInvalidSpec)
	}
	if u.User != nil {
		return Config{}, fmt.Errorf("%w: file store spec takes no user or password", store.ErrInvalidSpec)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return Config{}, fmt.Errorf("%w: file store spec takes no query or fragment (got %q)", store.ErrInvalidSpec, u.RawQuery+u.Fragment)
	}
	var dir string
	switch {
	case u.Opaque != "":
		d, err := url.PathUnescape(u.Opaque)
		if err != nil {
			return Config{}, fmt.Errorf("%w: file store path %q: %w", store.ErrInvalidSpec, u.Opaque, err)
		}
		dir = d
	case u.Host != "" && u.Host != "localhost":
		return Config{}, fmt.Errorf("%w: file store spec names host %q; use file:relative/dir or file:///absolute/dir", store.ErrInvalidSpec, u.Host)
	default:
		dir = u.Path
	}
	if strings.ContainsRune(dir, 0) {
		return Config{}, fmt.Errorf("%w: file store path contains a NUL byte", store.ErrInvalidSpec)
	}
	return Config{Dir: dir}, nil
}

// Store is a key-ring store in a directory. It is safe for concurrent use, also by several
// processes on the same directory.
type Store struct {
	root string

	mu    sync.Mutex
	cache map[string]map[string]cachedFile // ring -> file name -> parsed element file
}

// cachedFile is an element file List has read and compacted, with what identifies that version
// of the file: element files are never rewritten in place, and a replaced file has a new inode
// and change time.
type cachedFile struct {
	id      fileID
	element store.Element
}

type fileID struct {
	dev, ino     uint64
	size         int64
	mtime, ctime int64 // nanoseconds
}

// Open opens the file store rooted at cfg.Dir, creating the directory (0700) if it does not
// exist. It returns an error wrapping [store.ErrPermission] if the directory cannot be created
// or is not accessible.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !flockSupported {
		return nil, fmt.Errorf("filestore: OS file locking (flock) is not supported on %s", runtime.GOOS)
	}
	root := filepath.Clean(cfg.dir())
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, pathError("creating the store directory", root, "write", err)
	}
	fi, err := os.Stat(root)
	if err != nil {
		return nil, pathError("opening the store directory", root, "read", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%w: %s is not a directory", store.ErrInvalidSpec, root)
	}
	if _, err := os.ReadDir(root); err != nil {
		return nil, pathError("reading the store directory", root, "read", err)
	}
	return &Store{root: root, cache: map[string]map[string]cachedFile{}}, nil
}

// Dir returns the root directory of the store.
func (s *Store) Dir() string { return s.root }

// Close releases nothing: the store holds no open files between calls.
func (s *Store) Close() error { return nil }

// pathError wraps err with what was being done to path; a permission error wraps
// [store.ErrPermission] and says which permission (read or write) is missing.
func pathError(what, path, perm string, err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("%w: %s: %s permission needed on %s: %w", store.ErrPermission, what, perm, path, err)
	}
	return fmt.Errorf("filestore: %s: %w", what, err)
}

func (s *Store) ringDir(ring string) (string, error) {
	if err := store.ValidRingName(ring); err != nil {
		return "", err
	}
	return filepath.Join(s.root, ring), nil
}

// List returns every element of ring, sorted by name, with the ring's version. It returns an
// error wrapping [store.ErrNotFound] if the ring has no elements and was never written, and one
// wrapping [ErrUnreadableFile] if a "*.xml" file of the ring is not one XML element.
func (s *Store) List(ctx context.Context, ring string) (store.Snapshot, error) {
	dir, err := s.ringDir(ring)
	if err != nil {
		return store.Snapshot{}, err
	}
	if err := ctx.Err(); err != nil {
		return store.Snapshot{}, err
	}
	// The counter first, then the files: a writer links its file before it bumps the
	// counter, so every version read this way belongs to one set of files.
	counter, err := readCounter(dir)
	if err != nil {
		return store.Snapshot{}, err
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return store.Snapshot{}, fmt.Errorf("%w: ring %q", store.ErrNotFound, ring)
	}
	if err != nil {
		return store.Snapshot{}, pathError("listing ring "+ring, dir, "read", err)
	}
	type named struct {
		store.Element
		file string
	}
	var els []named
	s.mu.Lock()
	cached := s.cache[ring]
	s.mu.Unlock()
	seen := make(map[string]cachedFile, len(entries))
	for _, de := range entries {
		file := de.Name()
		if !strings.HasSuffix(file, xmlSuffix) {
			continue
		}
		id, cacheable := statID(de)
		if c, ok := cached[file]; ok && cacheable && c.id == id {
			seen[file] = c
			els = append(els, named{c.element, file})
			continue
		}
		path := filepath.Join(dir, file)
		data, err := os.ReadFile(path)
		if err != nil {
			if errors.Is(err, fs.ErrPermission) {
				return store.Snapshot{}, pathError("reading element file", path, "read", err)
			}
			return store.Snapshot{}, fmt.Errorf("%w: %s: %w", ErrUnreadableFile, path, err)
		}
		compact, err := keyring.CompactXML(data)
		if err != nil {
			return store.Snapshot{}, fmt.Errorf("%w: %s: %w", ErrUnreadableFile, path, err)
		}
		e := store.Element{Name: elementName(compact), XML: compact}
		if cacheable {
			seen[file] = cachedFile{id: id, element: e}
		}
		els = append(els, named{e, file})
	}
	s.mu.Lock()
	s.cache[ring] = seen
	s.mu.Unlock()
	if len(els) == 0 && counter == 0 {
		return store.Snapshot{}, fmt.Errorf("%w: ring %q has no elements", store.ErrNotFound, ring)
	}
	slices.SortFunc(els, func(a, b named) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.file, b.file)
	})
	snap := store.Snapshot{Version: counter + uint64(len(els)), Elements: make([]store.Element, 0, len(els))}
	for i, e := range els {
		// The same element in two files (an operator's copy) is one element.
		if i > 0 && e.Name == els[i-1].Name && bytes.Equal(e.XML, els[i-1].XML) {
			continue
		}
		// Callers own the bytes they get: the cache keeps its own.
		snap.Elements = append(snap.Elements, store.Element{Name: e.Name, XML: bytes.Clone(e.XML)})
	}
	return snap, nil
}

// elementName names a compact element: keyring.ElementName, else "unknown-" and 16 hex digits
// of the SHA-256 of the compact form.
func elementName(compact []byte) string {
	if name, err := keyring.ElementName(compact); err == nil && store.ValidElementName(name) == nil {
		return name
	}
	sum := sha256.Sum256(compact)
	return "unknown-" + hex.EncodeToString(sum[:8])
}

// Append writes e into ring as the file "{e.Name}.xml", holding keyring.FileXML(e.XML), unless
// the file exists. It returns the ring's version after the write.
//
// Appending an element that is already there with the same content (compared in compact form)
// changes nothing and returns the current version. It returns an error wrapping
// [store.ErrExists] if the name holds different content, [store.ErrFenced] if fence is not zero
// and not the token of the ring's latest lease, [store.ErrInvalidName] for a bad ring or element
// name or a name that does not match the element's content, and [ErrInvalidElement] if e.XML is
// not one XML element.
func (s *Store) Append(ctx context.Context, ring string, e store.Element, fence store.Fence) (uint64, error) {
	dir, err := s.ringDir(ring)
	if err != nil {
		return 0, err
	}
	if err := store.ValidElementName(e.Name); err != nil {
		return 0, err
	}
	compact, err := keyring.CompactXML(e.XML)
	if err != nil {
		return 0, fmt.Errorf("%w: %s: %w", ErrInvalidElement, e.Name, err)
	}
	if name, err := keyring.ElementName(compact); err == nil && name != e.Name {
		return 0, fmt.Errorf("%w: element named %q holds %q", store.ErrInvalidName, e.Name, name)
	}
	content, err := keyring.FileXML(compact)
	if err != nil {
		return 0, fmt.Errorf("%w: %s: %w", ErrInvalidElement, e.Name, err)
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var version uint64
	err = s.locked(ring, dir, func() error {
		if err := checkFence(dir, fence); err != nil {
			return err
		}
		path := filepath.Join(dir, e.Name+xmlSuffix)
		for {
			exists, err := sameContent(path, compact)
			if err != nil {
				return err
			}
			if exists {
				version, err = currentVersion(dir)
				return err
			}
			err = createFileNoSync(dir, e.Name+xmlSuffix, content)
			if errors.Is(err, fs.ErrExist) {
				continue // another writer created it just now: compare again
			}
			if err != nil {
				return err
			}
			break
		}
		counter, err := readCounter(dir)
		if err != nil {
			return err
		}
		// One directory fsync makes both the element's link and the counter's rename durable.
		if err := replaceFileNoSync(dir, versionFile, []byte(strconv.FormatUint(counter+1, 10)+"\n")); err != nil {
			return err
		}
		n, err := countAndClean(dir)
		if err != nil {
			return err
		}
		if err := syncDir(dir); err != nil {
			return err
		}
		version = counter + 1 + n
		return nil
	})
	return version, err
}

// sameContent reports whether the element file at path exists with content equal to compact.
// It returns an error wrapping [store.ErrExists] if the file exists with other content.
func sameContent(path string, compact []byte) (bool, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, pathError("reading element file", path, "read", err)
	}
	have, err := keyring.CompactXML(data)
	if err != nil {
		return false, fmt.Errorf("%w: %s holds an unreadable element (%w)", store.ErrExists, path, err)
	}
	if !bytes.Equal(have, compact) {
		return false, fmt.Errorf("%w: %s", store.ErrExists, path)
	}
	return true, nil
}

// currentVersion returns the version of the ring in dir: counter plus the number of "*.xml"
// files.
func currentVersion(dir string) (uint64, error) {
	counter, err := readCounter(dir)
	if err != nil {
		return 0, err
	}
	n, err := countXML(dir, false)
	return counter + n, err
}

// countAndClean counts the "*.xml" files in dir and removes stale temporary files, which
// writers that crashed left behind. Call it holding the ring's lock: every writer holds it
// while its temporary file exists, so any temporary file seen then is stale.
func countAndClean(dir string) (uint64, error) { return countXML(dir, true) }

func countXML(dir string, clean bool) (uint64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, pathError("listing ring directory", dir, "read", err)
	}
	n := uint64(0)
	for _, de := range entries {
		name := de.Name()
		switch {
		case strings.HasSuffix(name, xmlSuffix):
			n++
		case clean && strings.HasPrefix(name, tempPrefix) && de.Type().IsRegular():
			path := filepath.Join(dir, name)
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return 0, pathError("removing a stale temporary file", path, "write", err)
			}
		}
	}
	return n, nil
}

// readCounter reads the write counter of the ring in dir; 0 if there is none.
func readCounter(dir string) (uint64, error) {
	path := filepath.Join(dir, versionFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, pathError("reading the version counter", path, "read", err)
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("filestore: corrupt version counter %s: %w", path, err)
	}
	return n, nil
}

// lease is the lease record of a ring.
type lease struct {
	Owner   string    `json:"owner"`
	Token   uint64    `json:"token"`
	Expires time.Time `json:"expires"`
}

func readLease(dir string) (lease, error) {
	return readRecord[lease](filepath.Join(dir, leaseFile), "lease")
}

// readRecord reads the JSON record at path; a missing file gives the zero record.
func readRecord[T any](path, what string) (T, error) {
	var rec T
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return rec, nil
	}
	if err != nil {
		return rec, pathError("reading the "+what, path, "read", err)
	}
	if err := json.Unmarshal(data, &rec); err != nil {
		return rec, fmt.Errorf("filestore: corrupt %s record %s: %w", what, path, err)
	}
	return rec, nil
}

func writeLease(dir string, l lease) error {
	data, err := json.Marshal(l)
	if err != nil {
		return err
	}
	return replaceFile(dir, leaseFile, append(data, '\n'))
}

// checkFence returns an error wrapping [store.ErrFenced] unless fence is zero or the token of
// the ring's latest lease. Call it holding the ring's lock.
func checkFence(dir string, fence store.Fence) error {
	if fence == 0 {
		return nil
	}
	l, err := readLease(dir)
	if err != nil {
		return err
	}
	if uint64(fence) != l.Token {
		return fmt.Errorf("%w: fence %d, latest lease token %d", store.ErrFenced, fence, l.Token)
	}
	return nil
}

// Lock takes or renews the writer lease of ring for owner, for ttl. A lease that is free or
// expired is granted with a token one above the ring's previous token; an unexpired lease held
// by owner is renewed with the same token. It returns an error wrapping [store.ErrLocked] if
// another owner holds an unexpired lease.
func (s *Store) Lock(ctx context.Context, ring, owner string, ttl time.Duration) (store.Lease, error) {
	dir, err := s.ringDir(ring)
	if err != nil {
		return store.Lease{}, err
	}
	if ttl <= 0 {
		return store.Lease{}, fmt.Errorf("filestore: lease ttl must be positive, got %v", ttl)
	}
	if owner == "" {
		return store.Lease{}, errors.New("filestore: lease owner must not be empty")
	}
	if err := ctx.Err(); err != nil {
		return store.Lease{}, err
	}
	var granted lease
	err = s.locked(ring, dir, func() error {
		cur, err := readLease(dir)
		if err != nil {
			return err
		}
		now := time.Now()
		switch {
		case now.Before(cur.Expires) && cur.Owner == owner:
			granted = lease{Owner: owner, Token: cur.Token, Expires: now.Add(ttl)}
		case now.Before(cur.Expires):
			return fmt.Errorf("%w: ring %q is held by %q until %s", store.ErrLocked, ring, cur.Owner, cur.Expires.UTC().Format(time.RFC3339Nano))
		default:
			granted = lease{Owner: owner, Token: cur.Token + 1, Expires: now.Add(ttl)}
		}
		return writeLease(dir, granted)
	})
	if err != nil {
		return store.Lease{}, err
	}
	return store.Lease{Ring: ring, Owner: owner, Token: store.Fence(granted.Token), Expires: granted.Expires}, nil
}

// Unlock releases l. It returns an error wrapping [store.ErrFenced] if the ring's latest lease
// is not l (it expired and another writer took the lock).
func (s *Store) Unlock(ctx context.Context, l store.Lease) error {
	dir, err := s.ringDir(l.Ring)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: ring %q was never locked", store.ErrFenced, l.Ring)
	}
	return s.locked(l.Ring, dir, func() error {
		cur, err := readLease(dir)
		if err != nil {
			return err
		}
		if cur.Token != uint64(l.Token) {
			return fmt.Errorf("%w: lease token %d, latest lease token %d", store.ErrFenced, l.Token, cur.Token)
		}
		if now := time.Now(); now.Before(cur.Expires) {
			cur.Expires = now
			return writeLease(dir, cur)
		}
		return nil
	})
}

// meta is the metadata record of a ring.
type meta struct {
	Version uint64 `json:"version"`
	Data    []byte `json:"data"`
}

func readMeta(dir string) (meta, error) {
	return readRecord[meta](filepath.Join(dir, metaFile), "metadata")
}

// Meta returns the metadata record of ring. It returns an error wrapping [store.ErrNotFound] if
// there is none.
func (s *Store) Meta(ctx context.Context, ring string) (store.Meta, error) {
	dir, err := s.ringDir(ring)
	if err != nil {
		return store.Meta{}, err
	}
	if err := ctx.Err(); err != nil {
		return store.Meta{}, err
	}
	m, err := readMeta(dir)
	if err != nil {
		return store.Meta{}, err
	}
	if m.Version == 0 {
		return store.Meta{}, fmt.Errorf("%w: ring %q has no metadata", store.ErrNotFound, ring)
	}
	if m.Data == nil {
		m.Data = []byte{}
	}
	return store.Meta{Data: m.Data, Version: m.Version}, nil
}

// PutMeta replaces the metadata record of ring with data if its version is expect (0: if there
// is no record yet), and returns the new version. It returns an error wrapping
// [store.ErrConflict] if the version differs and [store.ErrFenced] if fence is not zero and not
// the token of the ring's latest lease.
func (s *Store) PutMeta(ctx context.Context, ring string, data []byte, expect uint64, fence store.Fence) (uint64, error) {
	dir, err := s.ringDir(ring)
	if err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var version uint64
	err = s.locked(ring, dir, func() error {
		if err := checkFence(dir, fence); err != nil {
			return err
		}
		cur, err := readMeta(dir)
		if err != nil {
			return err
		}
		if cur.Version != expect {
			return fmt.Errorf("%w: metadata of ring %q is at version %d, expected %d", store.ErrConflict, ring, cur.Version, expect)
		}
		next := meta{Version: cur.Version + 1, Data: bytes.Clone(data)}
		if next.Data == nil {
			next.Data = []byte{}
		}
		enc, err := json.Marshal(next)
		if err != nil {
			return err
		}
		if err := replaceFile(dir, metaFile, append(enc, '\n')); err != nil {
			return err
		}
		version = next.Version
		return nil
	})
	return version, err
}

// Rings returns the names of the rings in the store, sorted: the subdirectories with a valid
// ring name that hold an element file or were written through the store.
func (s *Store) Rings(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(s.root)
	if err != nil {
		return nil, pathError("listing the store directory", s.root, "read", err)
	}
	rings := []string{}
	for _, de := range entries {
		if !de.IsDir() || store.ValidRingName(de.Name()) != nil {
			continue
		}
		sub, err := os.ReadDir(filepath.Join(s.root, de.Name()))
		if err != nil {
			return nil, pathError("listing ring directory", filepath.Join(s.root, de.Name()), "read", err)
		}
		if slices.ContainsFunc(sub, func(e fs.DirEntry) bool {
			n := e.Name()
			return strings.HasSuffix(n, xmlSuffix) || n == versionFile || n == metaFile
		}) {
			rings = append(rings, de.Name())
		}
	}
	return rings, nil // os.ReadDir sorts by name
}
