package keyring

import (
	"fmt"
	"time"
)

// EncryptionAlgorithm is the symmetric algorithm of a key's authenticated encryptor, as named by
// the descriptor's encryption/@algorithm attribute.
type EncryptionAlgorithm int

// The encryption algorithms ASP.NET Core's AuthenticatedEncryptorDescriptor knows, in the order
// of its EncryptionAlgorithm enum (which .NET also accepts as the integers 0–5).
const (
	EncryptionUnknown EncryptionAlgorithm = iota
	AES128CBC
	AES192CBC
	AES256CBC
	AES128GCM
	AES192GCM
	AES256GCM
)

var encryptionNames = [...]string{"", "AES_128_CBC", "AES_192_CBC", "AES_256_CBC", "AES_128_GCM", "AES_192_GCM", "AES_256_GCM"}

// String returns the name ASP.NET Core writes, such as "AES_256_CBC".
func (a EncryptionAlgorithm) String() string {
	if a <= EncryptionUnknown || int(a) >= len(encryptionNames) {
		return fmt.Sprintf("EncryptionAlgorithm(%d)", int(a))
	}
	return encryptionNames[a]
}

// KeySize returns the AES key size in bytes, or 0 for an unknown algorithm.
func (a EncryptionAlgorithm) KeySize() int {
	switch a {
	case AES128CBC, AES128GCM:
		return 16
	case AES192CBC, AES192GCM:
		return 24
	case AES256CBC, AES256GCM:
		return 32
	}
	return 0
}

// IsGCM reports whether a is one of the AES-GCM algorithms.
func (a EncryptionAlgorithm) IsGCM() bool { return a == AES128GCM || a == AES192GCM || a == AES256GCM }

// ValidationAlgorithm is the MAC algorithm of a CBC key's authenticated encryptor.
type ValidationAlgorithm int

// The validation algorithms. HMACSHA256 and HMACSHA512 are the two AuthenticatedEncryptorDescriptor
// allows; HMACSHA1 and HMACSHA384 appear only in managed (custom) descriptors.
const (
	ValidationUnknown ValidationAlgorithm = iota
	HMACSHA256
	HMACSHA512
	HMACSHA1
	HMACSHA384
)

var validationNames = [...]string{"", "HMACSHA256", "HMACSHA512", "HMACSHA1", "HMACSHA384"}

// String returns the name ASP.NET Core writes, such as "HMACSHA256".
func (v ValidationAlgorithm) String() string {
	if v <= ValidationUnknown || int(v) >= len(validationNames) {
		return fmt.Sprintf("ValidationAlgorithm(%d)", int(v))
	}
	return validationNames[v]
}

// DigestSize returns the MAC length in bytes, or 0 for an unknown algorithm.
func (v ValidationAlgorithm) DigestSize() int {
	switch v {
	case HMACSHA1:
		return 20
	case HMACSHA256:
		return 32
	case HMACSHA384:
		return 48
	case HMACSHA512:
		return 64
	}
	return 0
}

// Descriptor is a key's authenticated-encryptor configuration and master key: everything needed
// to protect and unprotect payloads with the key.
type Descriptor struct {
	// Encryption is the symmetric algorithm.
	Encryption EncryptionAlgorithm
	// Validation is the MAC algorithm for CBC; ValidationUnknown for GCM.
	Validation ValidationAlgorithm
	// MasterKey is the key-derivation key (64 random bytes for keys ASP.NET Core creates).
	MasterKey Secret
}

// Protection says how a key's master key is stored in the key XML.
type Protection int

// Ways a master key is stored at rest.
const (
	ProtectionUnknown Protection = iota
	// ProtectionNone is a plain masterKey element (no IXmlEncryptor configured).
	ProtectionNone
	// ProtectionNullEncryptor is the unencryptedKey wrapper of NullXmlEncryptor.
	ProtectionNullEncryptor
	// ProtectionCertificate is XML Encryption with an X.509 certificate (ProtectKeysWithCertificate).
	ProtectionCertificate
	// ProtectionDPAPI is Windows DPAPI (ProtectKeysWithDpapi).
	ProtectionDPAPI
	// ProtectionDPAPING is Windows DPAPI-NG (ProtectKeysWithDpapiNG).
	ProtectionDPAPING
	// ProtectionAzureKeyVault is Azure Key Vault (ProtectKeysWithAzureKeyVault).
	ProtectionAzureKeyVault
	// ProtectionOther is a decryptor this package does not know.
	ProtectionOther
)

var protectionNames = [...]string{"unknown", "none", "null-encryptor", "certificate", "dpapi", "dpapi-ng", "azure-key-vault", "other"}

// String returns a short lowercase name, such as "certificate".
func (p Protection) String() string {
	if p < 0 || int(p) >= len(protectionNames) {
		return fmt.Sprintf("Protection(%d)", int(p))
	}
	return protectionNames[p]
}

// Key is one key of a key ring, as read from or written to a key element.
type Key struct {
	// ID is the key id.
	ID KeyID
	// Created, Activation and Expiration are the key's dates.
	Created, Activation, Expiration time.Time
	// Descriptor holds the algorithms and master key. It is nil when the descriptor could not be
	// read (DescriptorErr says why); such a key stays in the ring, as in ASP.NET Core, and only
	// fails when used.
	Descriptor *Descriptor
	// DescriptorErr is why Descriptor is nil, or nil.
	DescriptorErr error
	// DeserializerType is the descriptor's deserializerType attribute as stored.
	DeserializerType string
	// Protection says how the master key is stored at rest.
	Protection Protection
	// XML is the key element as stored, when the key was read from XML.
	XML []byte
}

// Revocation is one revocation element: of a single key, or of every key created before Date.
type Revocation struct {
	// Date is the revocationDate.
	Date time.Time
	// All is true for a revocation of every key created strictly before Date (key id "*").
	All bool
	// KeyID is the revoked key when All is false.
	KeyID KeyID
	// Reason is the free-text reason, possibly empty.
	Reason string
	// XML is the revocation element as stored, when it was read from XML.
	XML []byte
}

// Status is a key's state at a point in time.
type Status int

// Key statuses.
const (
	StatusUnknown Status = iota
	// StatusNotYetActive is a key whose activation date is in the future.
	StatusNotYetActive
	// StatusActive is a key that is activated and not expired.
	StatusActive
	// StatusExpired is a key whose expiration date has passed. It still unprotects.
	StatusExpired
	// StatusRevoked is a revoked key. It never unprotects.
	StatusRevoked
)

var statusNames = [...]string{"unknown", "not-yet-active", "active", "expired", "revoked"}

// String returns a short lowercase name, such as "active".
func (s Status) String() string {
	if s < 0 || int(s) >= len(statusNames) {
		return fmt.Sprintf("Status(%d)", int(s))
	}
	return statusNames[s]
}

// MarshalText implements encoding.TextMarshaler with [Status.String].
func (s Status) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
