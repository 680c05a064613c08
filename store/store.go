// Package store holds what every key-ring store shares: the [Store] contract, the element and
// snapshot types, the lease type, and the sentinel errors. The backends live in subpackages (filestore,
// redisstore, vaultstore) and the conformance suite every backend passes in storetest.
//
// # The contract
//
// A store holds named rings. A ring is a set of opaque XML elements (one key or revocation
// element each, in the compact form ASP.NET Core writes), each with a unique name such as
// "key-3d6d01fd-c0e7-44ae-82dd-013b996b4093" or "revocation-20150302T0313197573854Z". Package
// keyring owns the encoding; stores never parse elements.
//
// Every backend's concrete type implements [Store]; consumers that need less declare the subset
// they use.
//
// Deleting elements is not part of the contract: a key, once appended, stays.
package store

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"
)

// Store is the whole store contract, the method set of every backend's *Store.
type Store interface {
	// List returns every element of ring, plus the ring's version.
	List(ctx context.Context, ring string) (Snapshot, error)
	// Append adds an element, create-only and idempotent by name; it returns the new version.
	Append(ctx context.Context, ring string, e Element, fence Fence) (uint64, error)
	// Lock takes the ring's lease lock for owner, with a fencing token.
	Lock(ctx context.Context, ring, owner string, ttl time.Duration) (Lease, error)
	// Unlock releases a lease.
	Unlock(ctx context.Context, l Lease) error
	// Meta returns the ring's metadata record with its version.
	Meta(ctx context.Context, ring string) (Meta, error)
	// PutMeta replaces the metadata record if its version is expect (compare-and-swap).
	PutMeta(ctx context.Context, ring string, data []byte, expect uint64, fence Fence) (uint64, error)
	// Rings returns the names of the rings present.
	Rings(ctx context.Context) ([]string, error)
	// Close releases the store's connections.
	Close() error
}

// Sentinel errors returned (wrapped) by every store.
var (
	// ErrNotFound reports a ring, element or metadata record that does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrExists reports an Append of a name that already holds different bytes. Appending the
	// same bytes again is not an error (Append is idempotent).
	ErrExists = errors.New("store: element already exists with different content")
	// ErrConflict reports a compare-and-swap whose expected version did not match.
	ErrConflict = errors.New("store: version conflict")
	// ErrLocked reports a Lock while another owner holds an unexpired lease.
	ErrLocked = errors.New("store: ring is locked by another writer")
	// ErrFenced reports a write or unlock with a fencing token that is no longer current (the
	// lease expired and another writer took the lock).
	ErrFenced = errors.New("store: fencing token is stale")
	// ErrUnavailable reports a store that cannot be reached or answered with a server error.
	ErrUnavailable = errors.New("store: unavailable")
	// ErrPermission reports that the store refused the operation for lack of permission. The
	// wrapping error names the path or key and the permission missing.
	ErrPermission = errors.New("store: permission denied")
	// ErrInvalidName reports a ring or element name outside the allowed alphabet.
	ErrInvalidName = errors.New("store: invalid name")
	// ErrInvalidSpec reports a store spec (URL) that cannot be understood.
	ErrInvalidSpec = errors.New("store: invalid store spec")
)

// Element is one stored element of a ring.
type Element struct {
	// Name is the element's unique name within its ring: the ASP.NET Core friendly name, such
	// as "key-{guid}" or "revocation-{…}". It matches [ValidElementName].
	Name string
	// XML is the element in compact form (no XML declaration, no indentation).
	XML []byte
}

// Snapshot is the content of a ring at one version.
type Snapshot struct {
	// Elements are the ring's elements in the order they were appended where the backend keeps
	// one (Redis list, Vault), else sorted by name.
	Elements []Element
	// Version changes on every write to the ring (append). Versions of one ring only grow.
	// Zero means the ring has never been written.
	Version uint64
}

// Fence is a fencing token from a [Lease]. Writes that carry a non-zero Fence fail with
// [ErrFenced] if another lease has been granted since. The zero Fence writes unconditionally
// (imports, tests).
type Fence uint64

// Lease is a held lock on one ring.
type Lease struct {
	// Ring is the locked ring.
	Ring string
	// Owner identifies the holder (for example "hostname/pid/random").
	Owner string
	// Token is the fencing token: it grows with every lease granted on the ring.
	Token Fence
	// Expires is when the lease lapses unless renewed.
	Expires time.Time
}

// Meta is a ring's metadata record: opaque bytes (package keyring or the server owns the
// encoding) and a version for compare-and-swap. Version 0 means no record exists yet.
type Meta struct {
	Data    []byte
	Version uint64
}

var (
	ringNameRE    = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)
	elementNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,200}$`)
)

// ValidRingName reports an error wrapping [ErrInvalidName] unless name is 1–63 characters of
// lowercase letters, digits, '.', '_' and '-', starting with a letter or digit.
func ValidRingName(name string) error {
	if !ringNameRE.MatchString(name) {
		return fmt.Errorf("%w: ring %q (use 1-63 of a-z 0-9 . _ -, starting with a letter or digit)", ErrInvalidName, name)
	}
	return nil
}

// ValidElementName reports an error wrapping [ErrInvalidName] unless name matches ASP.NET Core's
// friendly-name rule ([A-Za-z0-9_-]+), at most 200 characters.
func ValidElementName(name string) error {
	if !elementNameRE.MatchString(name) {
		return fmt.Errorf("%w: element %q", ErrInvalidName, name)
	}
	return nil
}
