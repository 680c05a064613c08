package keyring

import (
	"fmt"
	"slices"
	"time"
)

// SkippedElement is an element of a key ring that was not loaded, with the reason. ASP.NET Core
// logs and skips such elements; callers can show them.
type SkippedElement struct {
	// Name is the element's friendly name when it could be determined (for example
	// "key-3d6d01fd-c0e7-44ae-82dd-013b996b4093"), else "".
	Name string
	// Index is the element's position in the input.
	Index int
	// Err is why it was skipped; it wraps a sentinel such as [ErrMalformedKey].
	Err error
}

// Ring is an immutable key ring: keys, revocations and the elements that were skipped.
type Ring struct {
	keys        []Key // in input order
	revocations []Revocation
	skipped     []SkippedElement
	byID        map[KeyID]int
	revokedIDs  map[KeyID]bool
	revokeAll   time.Time   // latest mass revocation date; zero if none
	kdfs        []*keyedKDF // per key, as keys; nil for a key without a descriptor
}

// NewRing builds a ring. It returns an error wrapping [ErrDuplicateKey] if two keys share an id,
// as ASP.NET Core fails the whole ring then. skipped is kept for reporting.
func NewRing(keys []Key, revocations []Revocation, skipped []SkippedElement) (*Ring, error) {
	r := &Ring{
		keys:        slices.Clone(keys),
		revocations: slices.Clone(revocations),
		skipped:     slices.Clone(skipped),
		byID:        make(map[KeyID]int, len(keys)),
		kdfs:        make([]*keyedKDF, len(keys)),
		revokedIDs:  make(map[KeyID]bool),
	}
	for i, k := range r.keys {
		if _, dup := r.byID[k.ID]; dup {
			return nil, fmt.Errorf("%w: %s", ErrDuplicateKey, k.ID)
		}
		r.byID[k.ID] = i
		if k.Descriptor != nil {
			r.kdfs[i] = &keyedKDF{kdk: k.Descriptor.MasterKey.Bytes()}
		}
	}
	for _, rev := range r.revocations {
		if rev.All {
			if rev.Date.After(r.revokeAll) {
				r.revokeAll = rev.Date
			}
			continue
		}
		r.revokedIDs[rev.KeyID] = true
	}
	return r, nil
}

// Keys returns the ring's keys in the order they were given.
func (r *Ring) Keys() []Key { return slices.Clone(r.keys) }

// Revocations returns the ring's revocations in the order they were given.
func (r *Ring) Revocations() []Revocation { return slices.Clone(r.revocations) }

// Skipped returns the elements that were not loaded, with the reasons.
func (r *Ring) Skipped() []SkippedElement { return slices.Clone(r.skipped) }

// Len returns the number of keys.
func (r *Ring) Len() int { return len(r.keys) }

// Key returns the key with the given id. It returns a [*KeyNotFoundError] (wrapping
// [ErrKeyNotFound]) if the ring does not hold it.
func (r *Ring) Key(id KeyID) (Key, error) {
	k, _, err := r.lookup(id)
	return k, err
}

// lookup returns the key with the given id and its key-derivation pool.
func (r *Ring) lookup(id KeyID) (Key, *keyedKDF, error) {
	i, ok := r.byID[id]
	if !ok {
		return Key{}, nil, &KeyNotFoundError{ID: id}
	}
	return r.keys[i], r.kdfs[i], nil
}

// IsRevoked reports whether k is revoked: by a revocation of its id, or because it was created
// strictly before the latest revoke-all date (ASP.NET Core's rule: only the latest "*"
// revocation counts).
func (r *Ring) IsRevoked(k Key) bool {
	if r.revokedIDs[k.ID] {
		return true
	}
	return !r.revokeAll.IsZero() && k.Created.Before(r.revokeAll)
}
