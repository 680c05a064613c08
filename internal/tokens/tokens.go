// Package tokens keeps the server's bearer tokens: a JSON file (DATA/tokens.json, mode 0600)
// holding, for each token, its name, role, the rings it may use, when it was created and the
// SHA-256 of the token. The tokens themselves are shown once, when created, and never stored.
//
// A token is "dpk_" followed by 32 random bytes in unpadded base64url (256 bits from
// crypto/rand), so a SHA-256 without salt or stretching is enough to store it: the token cannot
// be guessed, only stolen.
//
// [Set] answers authentication for a running server and re-reads the file when it changes
// (checked at most once a second), so tokens created or revoked with "dpkeyring token" take
// effect without a restart. [Create] and [Revoke] change the file under an exclusive lock
// (flock on tokens.json.lock) and replace it atomically.
package tokens

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Prefix starts every token, so that leaked tokens are easy to find with secret scanners.
const Prefix = "dpk_"

// Sentinel errors.
var (
	// ErrNotFound reports a token name that is not in the file.
	ErrNotFound = errors.New("tokens: no token with that name")
	// ErrExists reports a token name that is already in the file.
	ErrExists = errors.New("tokens: a token with that name already exists")
	// ErrInvalid reports a bad name, role or ring, or a corrupt tokens file.
	ErrInvalid = errors.New("tokens: invalid")
)

// Role is what a token may do.
type Role int

// Roles. The zero value is invalid.
const (
	RoleUnknown Role = iota
	// RoleNode reads the rings it is granted.
	RoleNode
	// RoleAdmin rotates, revokes, reads status and reads every ring.
	RoleAdmin
	// RoleDebug may only use the cookie-decrypt debug endpoint.
	RoleDebug
)

var roleNames = [...]string{RoleUnknown: "unknown", RoleNode: "node", RoleAdmin: "admin", RoleDebug: "debug"}

// String returns "node", "admin", "debug" or "unknown".
func (r Role) String() string {
	if r < 0 || int(r) >= len(roleNames) {
		return "unknown"
	}
	return roleNames[r]
}

// ParseRole parses "node", "admin" or "debug". It returns an error wrapping [ErrInvalid] otherwise.
func ParseRole(s string) (Role, error) {
	for i, n := range roleNames {
		if i != int(RoleUnknown) && n == s {
			return Role(i), nil
		}
	}
	return RoleUnknown, fmt.Errorf("%w: role %q (use node, admin or debug)", ErrInvalid, s)
}

// MarshalText implements encoding.TextMarshaler.
func (r Role) MarshalText() ([]byte, error) {
	if r == RoleUnknown || r.String() == "unknown" {
		return nil, fmt.Errorf("%w: role %d", ErrInvalid, int(r))
	}
	return []byte(r.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (r *Role) UnmarshalText(b []byte) error {
	v, err := ParseRole(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// Token is one stored token: everything but the token itself.
type Token struct {
	// Name identifies the token in logs, the audit log and "token revoke".
	Name string `json:"name"`
	// Role is what the token may do.
	Role Role `json:"role"`
	// Rings are the rings the token may use; empty means every ring.
	Rings []string `json:"rings,omitempty"`
	// Created is when the token was created.
	Created time.Time `json:"created"`
	// SHA256 is the hex SHA-256 of the token.
	SHA256 string `json:"sha256"`
}

// AllowsRing reports whether the token may use ring.
func (t Token) AllowsRing(ring string) bool {
	return len(t.Rings) == 0 || slices.Contains(t.Rings, ring)
}

// file is the JSON layout of the tokens file.
type file struct {
	Tokens []Token `json:"tokens"`
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// ValidName returns an error wrapping [ErrInvalid] unless name is 1–64 characters of letters,
// digits, '.', '_', '@' and '-', starting with a letter or digit.
func ValidName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("%w: token name %q (use 1-64 of A-Z a-z 0-9 . _ @ -, starting with a letter or digit)", ErrInvalid, name)
	}
	return nil
}

// Generate returns a new random token: [Prefix] + base64url(32 bytes from crypto/rand).
func Generate() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return Prefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// Hash returns the hex SHA-256 of token, the form stored in the file.
func Hash(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// Load reads the tokens file at path. A missing file is an empty list, not an error. It returns
// an error wrapping [ErrInvalid] for a file it cannot parse.
func Load(path string) ([]Token, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("tokens: reading %s: %w", path, err)
	}
	return parse(path, b)
}

func parse(path string, b []byte) ([]Token, error) {
	var f file
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%w: tokens file %s: %v", ErrInvalid, path, err)
	}
	for i, t := range f.Tokens {
		if err := ValidName(t.Name); err != nil {
			return nil, fmt.Errorf("tokens file %s: entry %d: %w", path, i+1, err)
		}
		if t.Role == RoleUnknown {
			return nil, fmt.Errorf("%w: tokens file %s: token %q has no role", ErrInvalid, path, t.Name)
		}
		if h, err := hex.DecodeString(t.SHA256); err != nil || len(h) != sha256.Size {
			return nil, fmt.Errorf("%w: tokens file %s: token %q: sha256 is not 64 hex digits", ErrInvalid, path, t.Name)
		}
	}
	return f.Tokens, nil
}

// NewToken describes a token to create.
type NewToken struct {
	Name  string
	Role  Role
	Rings []string // empty: every ring
}

// Create adds tokens to the file at path (creating it, mode 0600, and its directory, mode 0700)
// and returns the new tokens, in order: the only time they exist outside the caller's memory.
// validRing checks each ring name (nil: no check). It returns an error wrapping [ErrExists] if a
// name is taken (nothing is written then), or [ErrInvalid] for a bad name, role or ring.
func Create(path string, now time.Time, validRing func(string) error, news ...NewToken) ([]string, error) {
	var secrets []string
	err := update(path, func(ts []Token) ([]Token, error) {
		secrets = secrets[:0]
		for _, n := range news {
			if err := ValidName(n.Name); err != nil {
				return nil, err
			}
			if n.Role.String() == "unknown" || n.Role == RoleUnknown {
				return nil, fmt.Errorf("%w: token %q has no role", ErrInvalid, n.Name)
			}
			for _, r := range n.Rings {
				if validRing == nil {
					continue
				}
				if err := validRing(r); err != nil {
					return nil, fmt.Errorf("%w: token %q: %w", ErrInvalid, n.Name, err)
				}
			}
			if slices.ContainsFunc(ts, func(t Token) bool { return t.Name == n.Name }) {
				return nil, fmt.Errorf("%w: %q", ErrExists, n.Name)
			}
			secret := Generate()
			secrets = append(secrets, secret)
			rings := slices.Clone(n.Rings)
			slices.Sort(rings)
			ts = append(ts, Token{Name: n.Name, Role: n.Role, Rings: slices.Compact(rings), Created: now.UTC(), SHA256: Hash(secret)})
		}
		return ts, nil
	})
	if err != nil {
		return nil, err
	}
	return secrets, nil
}

// Revoke removes the token called name from the file at path. It returns an error wrapping
// [ErrNotFound] if there is none.
func Revoke(path, name string) error {
	return update(path, func(ts []Token) ([]Token, error) {
		i := slices.IndexFunc(ts, func(t Token) bool { return t.Name == name })
		if i < 0 {
			return nil, fmt.Errorf("%w: %q", ErrNotFound, name)
		}
		return slices.Delete(ts, i, i+1), nil
	})
}

// update runs change on the file's tokens under an exclusive lock and writes the result
// atomically (temporary file, fsync, rename).
func update(path string, change func([]Token) ([]Token, error)) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("tokens: %w", err)
	}
	lock, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("tokens: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("tokens: locking %s: %w", lock.Name(), err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck // closing releases it too

	ts, err := Load(path)
	if err != nil {
		return err
	}
	ts, err = change(ts)
	if err != nil {
		return err
	}
	if ts == nil {
		ts = []Token{}
	}
	b, err := json.MarshalIndent(file{Tokens: ts}, "", "  ")
	if err != nil {
		return fmt.Errorf("tokens: %w", err)
	}
	return writeAtomic(path, append(b, '\n'))
}

func writeAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("tokens: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename this fails harmlessly
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("tokens: %w", err)
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("tokens: writing %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("tokens: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("tokens: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("tokens: %w", err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// Set authenticates tokens against the tokens file, re-reading it when it changes. It is safe
// for concurrent use. Authentication reads an immutable snapshot without locks: a map from the
// token's SHA-256 to the token, confirmed with a constant-time comparison of the hash.
type Set struct {
	path       string
	now        func() time.Time // time.Now; tests replace it
	checkEvery time.Duration    // least time between two checks of the file

	cur       atomic.Pointer[setState]
	lastCheck atomic.Int64 // UnixNano of the last check of the file

	mu      sync.Mutex // serializes reloads; guards stamp and lastErr
	stamp   fileStamp
	lastErr error
}

// setState is one loaded version of the tokens file.
type setState struct {
	tokens []Token
	hashes [][sha256.Size]byte       // hashes[i] is the hash of tokens[i]
	byHash map[[sha256.Size]byte]int // index into tokens and hashes
}

type fileStamp struct {
	exists  bool
	modTime time.Time
	size    int64
	ino     uint64
}

func stampOf(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fileStamp{}, nil
	}
	if err != nil {
		return fileStamp{}, fmt.Errorf("tokens: %w", err)
	}
	s := fileStamp{exists: true, modTime: fi.ModTime(), size: fi.Size()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.ino = st.Ino
	}
	return s, nil
}

// Open loads the tokens file at path (a missing file holds no tokens) and returns a Set that
// keeps it current. It returns the errors of [Load].
func Open(path string) (*Set, error) {
	s := &Set{path: path, now: time.Now, checkEvery: time.Second}
	if err := s.reload(); err != nil {
		return nil, err
	}
	s.lastCheck.Store(s.now().UnixNano())
	return s, nil
}

// reload reads the file if its stamp changed. s.mu must be held (or s unshared).
func (s *Set) reload() error {
	st, err := stampOf(s.path)
	if err != nil {
		return err
	}
	if st == s.stamp && s.cur.Load() != nil {
		return nil
	}
	ts, err := Load(s.path)
	if err != nil {
		return err
	}
	next := &setState{tokens: ts, hashes: make([][sha256.Size]byte, len(ts)), byHash: make(map[[sha256.Size]byte]int, len(ts))}
	for i, t := range ts {
		b, _ := hex.DecodeString(t.SHA256) // checked by Load
		copy(next.hashes[i][:], b)
		next.byHash[next.hashes[i]] = i
	}
	s.cur.Store(next)
	s.stamp = st
	return nil
}

// Refresh re-reads the file now if it changed. A file that cannot be read or parsed leaves the
// previous tokens in force; the error is returned (and reported by [Set.Err]).
func (s *Set) Refresh() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastCheck.Store(s.now().UnixNano())
	s.lastErr = s.reload()
	return s.lastErr
}

// Err returns the error of the last reload, or nil.
func (s *Set) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastErr
}

// Authenticate returns the stored token whose hash matches token. The SHA-256 of token is looked
// up in a map (its timing depends only on that hash, which an attacker cannot steer towards a
// stored one) and the match is confirmed by comparing the hashes in constant time, so the cost
// does not grow with the number of tokens. It re-reads the file first when it changed and was
// last checked a second ago or more (one caller checks; the others use the current tokens).
// The returned token's Rings are shared with the Set and must not be modified.
func (s *Set) Authenticate(token string) (Token, bool) {
	if !strings.HasPrefix(token, Prefix) || len(token) > 256 {
		return Token{}, false
	}
	var buf [256]byte // the token is hashed from the stack: no allocation
	sum := sha256.Sum256(buf[:copy(buf[:], token)])
	s.maybeReload()
	st := s.cur.Load()
	if st == nil {
		return Token{}, false
	}
	i, ok := st.byHash[sum]
	if !ok {
		return Token{}, false
	}
	if subtle.ConstantTimeCompare(sum[:], st.hashes[i][:]) != 1 {
		return Token{}, false
	}
	return st.tokens[i], true
}

// maybeReload checks the file when checkEvery has passed since the last check (or the clock
// went back). Only one caller checks; the others go on with the current tokens.
func (s *Set) maybeReload() {
	now := s.now()
	last := s.lastCheck.Load()
	if d := now.UnixNano() - last; d >= 0 && d < int64(s.checkEvery) {
		return
	}
	if !s.lastCheck.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastErr = s.reload()
}

// Tokens returns the tokens currently in force.
func (s *Set) Tokens() []Token {
	st := s.cur.Load()
	if st == nil {
		return nil
	}
	return slices.Clone(st.tokens)
}

// Path returns the tokens file of a server data folder: DATA/tokens.json.
func Path(dataDir string) string { return filepath.Join(dataDir, "tokens.json") }
