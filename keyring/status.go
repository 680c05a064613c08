package keyring

import "time"

// Status returns k's status at now, by the first rule that applies:
//
//  1. [StatusRevoked] if the ring revokes k ([Ring.IsRevoked]: a revocation of its id, or a
//     revoke-all date strictly after its creation date);
//  2. [StatusExpired] if its expiration date is at or before now (ASP.NET Core's
//     IKey.IsExpired: expirationDate <= now);
//  3. [StatusNotYetActive] if its activation date is after now;
//  4. [StatusActive] otherwise.
//
// Status is informational: the default key is chosen by [Ring.ResolveDefaultKey], which allows
// for clock skew between servers, and unprotecting refuses only revoked keys (expired keys still
// unprotect).
func (r *Ring) Status(k Key, now time.Time) Status {
	switch {
	case r.IsRevoked(k):
		return StatusRevoked
	case !k.Expiration.After(now):
		return StatusExpired
	case k.Activation.After(now):
		return StatusNotYetActive
	default:
		return StatusActive
	}
}
