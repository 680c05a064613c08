package keyring

import (
	"fmt"
	"slices"
	"time"
)

// Fixed key-management timings of ASP.NET Core (KeyManagementOptions; none of them is settable
// there).
const (
	// MaxServerClockSkew is how far in the future a key's activation date may be for the key to
	// be chosen as the default key anyway, so that servers with slightly different clocks agree.
	MaxServerClockSkew = 5 * time.Minute
	// KeyPropagationWindow is how long ASP.NET Core assumes a new key takes to reach every
	// server: keys created at least this long ago are "propagated".
	KeyPropagationWindow = 48 * time.Hour
	// KeyRingRefreshPeriod is the longest an ASP.NET Core node caches its key ring before
	// reading the repository again (the actual period is jittered down to 80% of this).
	KeyRingRefreshPeriod = 24 * time.Hour
)

// DefaultKeyResolution is the outcome of [Ring.ResolveDefaultKey], the Go form of ASP.NET Core's
// DefaultKeyResolution.
type DefaultKeyResolution struct {
	// Default is the key new payloads are protected with, or nil when the ring has no usable
	// default key at that time.
	Default *Key
	// Fallback is set only when Default is nil: the key an ASP.NET Core node protects with when
	// it may not generate keys (AutoGenerateKeys = false). It is never revoked but may be
	// expired. It is nil when no key qualifies.
	Fallback *Key
	// ShouldGenerate is true when Default is nil: an ASP.NET Core node with AutoGenerateKeys (the
	// default) creates a new, immediately activated key.
	ShouldGenerate bool
}

// ResolveDefaultKey chooses the default key at now exactly as ASP.NET Core's DefaultKeyResolver
// does (current main, after dotnet/aspnetcore#57137):
//
//  1. The preferred key is, among all keys (revoked ones included) whose activation date is at
//     or before now + [MaxServerClockSkew], the one with the latest activation date; ties go to
//     the smallest key id in System.Guid order ([KeyID.Compare]).
//  2. If the preferred key is revoked, expired (expiration <= now) or unusable (no descriptor,
//     or an algorithm this package cannot run), there is no default key: only that one key is
//     considered, an older valid key is not used instead.
//  3. Then a fallback is chosen among the keys that are not revoked: first the keys created at
//     or before now - [KeyPropagationWindow], newest creation first, excluding the rejected
//     preferred key; then the keys created later, oldest creation first (here ASP.NET Core does
//     not exclude the rejected preferred key). The first usable key wins; equal creation dates
//     keep ring order.
func (r *Ring) ResolveDefaultKey(now time.Time) DefaultKeyResolution {
	maxActivation := now.Add(MaxServerClockSkew)
	preferred := -1
	for i, k := range r.keys {
		if k.Activation.After(maxActivation) {
			continue
		}
		if preferred < 0 {
			preferred = i
			continue
		}
		p := r.keys[preferred]
		if k.Activation.After(p.Activation) || (k.Activation.Equal(p.Activation) && k.ID.Compare(p.ID) < 0) {
			preferred = i
		}
	}
	if preferred >= 0 {
		k := r.keys[preferred]
		if !r.IsRevoked(k) && k.Expiration.After(now) && canCreateEncryptor(k) {
			return DefaultKeyResolution{Default: &k}
		}
	}

	maxCreation := now.Add(-KeyPropagationWindow)
	var propagated, recent []int
	for i, k := range r.keys {
		if r.IsRevoked(k) {
			continue
		}
		if k.Created.After(maxCreation) {
			recent = append(recent, i)
		} else if i != preferred {
			propagated = append(propagated, i)
		}
	}
	// LINQ's OrderBy is a stable sort, so equal creation dates keep ring order.
	slices.SortStableFunc(propagated, func(a, b int) int { return r.keys[b].Created.Compare(r.keys[a].Created) })
	slices.SortStableFunc(recent, func(a, b int) int { return r.keys[a].Created.Compare(r.keys[b].Created) })
	res := DefaultKeyResolution{ShouldGenerate: true}
	for _, i := range slices.Concat(propagated, recent) {
		if canCreateEncryptor(r.keys[i]) {
			k := r.keys[i]
			res.Fallback = &k
			break
		}
	}
	return res
}

// DefaultKey returns the key to protect new payloads with at now: the default key of
// [Ring.ResolveDefaultKey], or else its fallback key, as an ASP.NET Core node that may not
// generate keys does. It returns an error wrapping [ErrNoDefaultKey] if the ring has neither.
func (r *Ring) DefaultKey(now time.Time) (Key, error) {
	res := r.ResolveDefaultKey(now)
	switch {
	case res.Default != nil:
		return *res.Default, nil
	case res.Fallback != nil:
		return *res.Fallback, nil
	}
	return Key{}, fmt.Errorf("%w at %s", ErrNoDefaultKey, FormatXMLDate(now.UTC()))
}

// NodeWouldGenerateKey reports whether an ASP.NET Core node (AutoGenerateKeys on, the default)
// that reads this ring at now would create a key itself, by KeyRingProvider's rule: when there
// is no default key, or when the default key expires before now + [KeyRingRefreshPeriod] +
// [KeyPropagationWindow] and the default key at that expiration is missing or also expires
// before then.
func (r *Ring) NodeWouldGenerateKey(now time.Time) bool {
	res := r.ResolveDefaultKey(now)
	if res.Default == nil {
		return true
	}
	minExpiration := now.Add(KeyRingRefreshPeriod + KeyPropagationWindow)
	if !res.Default.Expiration.Before(minExpiration) {
		return false
	}
	next := r.ResolveDefaultKey(res.Default.Expiration).Default
	return next == nil || next.Expiration.Before(minExpiration)
}

// canCreateEncryptor reports whether k can protect payloads: ASP.NET Core's
// CanCreateAuthenticatedEncryptor. A key whose descriptor could not be read (or whose secret
// could not be decrypted) has a nil Descriptor; a descriptor naming an algorithm combination
// the encryptor does not implement is unusable too.
func canCreateEncryptor(k Key) bool {
	if k.Descriptor == nil {
		return false
	}
	_, err := k.Descriptor.algorithm()
	return err == nil
}
