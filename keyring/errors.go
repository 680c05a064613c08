package keyring

import (
	"errors"
	"fmt"
)

// Sentinel errors. Callers test for them with [errors.Is]; functions wrap them with context.
var (
	// ErrMalformedPayload reports a protected payload that is not in the Data Protection format
	// (too short, bad magic header, bad base64).
	ErrMalformedPayload = errors.New("keyring: malformed protected payload")
	// ErrNewerPayloadVersion reports a payload whose magic header names a newer format version.
	ErrNewerPayloadVersion = errors.New("keyring: payload was written by a newer version of data protection")
	// ErrKeyNotFound reports a key id that is not in the ring. It is wrapped by [*KeyNotFoundError].
	ErrKeyNotFound = errors.New("keyring: key not found in the key ring")
	// ErrKeyRevoked reports an operation with a revoked key.
	ErrKeyRevoked = errors.New("keyring: key was revoked")
	// ErrDecryptionFailed is the one opaque error for a payload that fails to authenticate or
	// decrypt (wrong key material, wrong purposes or application name, tampering). It never says
	// which.
	ErrDecryptionFailed = errors.New("keyring: the payload was invalid or could not be decrypted")
	// ErrMalformedKey reports a key element that cannot be read; ASP.NET Core skips such keys.
	ErrMalformedKey = errors.New("keyring: malformed key element")
	// ErrMalformedRevocation reports a revocation element that cannot be read; ASP.NET Core fails
	// the whole ring on it.
	ErrMalformedRevocation = errors.New("keyring: malformed revocation element")
	// ErrDuplicateKey reports two key elements with the same id; ASP.NET Core fails the whole
	// ring on it.
	ErrDuplicateKey = errors.New("keyring: duplicate key id in the key ring")
	// ErrUnsupportedProtection reports a key whose master key is protected by a mechanism this
	// platform cannot open (DPAPI, DPAPI-NG, Azure Key Vault, or a certificate that was not given).
	ErrUnsupportedProtection = errors.New("keyring: key secret is protected by a mechanism that cannot be opened here")
	// ErrUnsupportedAlgorithm reports a descriptor naming an algorithm this package does not
	// implement.
	ErrUnsupportedAlgorithm = errors.New("keyring: unsupported algorithm")
	// ErrNoDefaultKey reports a ring with no key usable for protecting new payloads.
	ErrNoDefaultKey = errors.New("keyring: no default key in the key ring")
	// ErrMalformedTicket reports bytes that are not a TicketSerializer format-5 ticket.
	ErrMalformedTicket = errors.New("keyring: malformed authentication ticket")
	// ErrMalformedCookie reports a cookie that cannot be reassembled or decoded.
	ErrMalformedCookie = errors.New("keyring: malformed cookie")
	// ErrInvalidPolicy reports a rotation policy outside the limits ASP.NET Core accepts.
	ErrInvalidPolicy = errors.New("keyring: invalid rotation policy")
)

// KeyNotFoundError reports which key id a payload names that the ring does not hold. It wraps
// [ErrKeyNotFound].
type KeyNotFoundError struct {
	ID KeyID
}

// Error implements error.
func (e *KeyNotFoundError) Error() string {
	return fmt.Sprintf("keyring: key %s was not found in the key ring", e.ID)
}

// Unwrap returns [ErrKeyNotFound].
func (e *KeyNotFoundError) Unwrap() error { return ErrKeyNotFound }
