package keyring

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
)

// KeyID is a Data Protection key id, a GUID. The bytes are in the order the canonical string
// form shows them (RFC 4122 order), so comparing two KeyIDs bytewise orders them as .NET's
// System.Guid.CompareTo does for the first 4 fields only; use [KeyID.Compare] for .NET order.
type KeyID [16]byte

// NewKeyID returns a random version-4 GUID from crypto/rand, as .NET's Guid.NewGuid does.
func NewKeyID() (KeyID, error) {
	var id KeyID
	if _, err := rand.Read(id[:]); err != nil {
		return KeyID{}, fmt.Errorf("keyring: generating key id: %w", err)
	}
	id[6] = id[6]&0x0f | 0x40
	id[8] = id[8]&0x3f | 0x80
	return id, nil
}

// ParseKeyID parses a GUID in any form .NET's Guid parser accepts for key ids: the hyphenated
// "D" form, braces "{…}" (B), parentheses "(…)" (P) or 32 hex digits (N), in either case, with
// surrounding white space.
func ParseKeyID(s string) (KeyID, error) {
	t := strings.TrimSpace(s)
	if len(t) >= 2 && ((t[0] == '{' && t[len(t)-1] == '}') || (t[0] == '(' && t[len(t)-1] == ')')) {
		t = t[1 : len(t)-1]
		if len(t) != 36 {
			return KeyID{}, fmt.Errorf("keyring: invalid key id %q", s)
		}
	}
	switch len(t) {
	case 36:
		if t[8] != '-' || t[13] != '-' || t[18] != '-' || t[23] != '-' {
			return KeyID{}, fmt.Errorf("keyring: invalid key id %q", s)
		}
		t = t[0:8] + t[9:13] + t[14:18] + t[19:23] + t[24:]
	case 32:
	default:
		return KeyID{}, fmt.Errorf("keyring: invalid key id %q", s)
	}
	var id KeyID
	if _, err := hex.Decode(id[:], []byte(t)); err != nil {
		return KeyID{}, fmt.Errorf("keyring: invalid key id %q", s)
	}
	return id, nil
}

// String returns the lowercase hyphenated form .NET writes (Guid "D" format).
func (id KeyID) String() string {
	var b [36]byte
	hex.Encode(b[0:8], id[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], id[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], id[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], id[8:10])
	b[23] = '-'
	hex.Encode(b[24:], id[10:])
	return string(b[:])
}

// IsZero reports whether id is the all-zero GUID.
func (id KeyID) IsZero() bool { return id == KeyID{} }

// DotNetBytes returns the 16 bytes .NET's Guid.ToByteArray writes: the first three fields
// little-endian, the last eight bytes as they are. This is the layout inside protected payloads.
func (id KeyID) DotNetBytes() [16]byte {
	var b [16]byte
	b[0], b[1], b[2], b[3] = id[3], id[2], id[1], id[0]
	b[4], b[5] = id[5], id[4]
	b[6], b[7] = id[7], id[6]
	copy(b[8:], id[8:])
	return b
}

// KeyIDFromDotNetBytes is the inverse of [KeyID.DotNetBytes]. It panics if b is shorter than 16
// bytes.
func KeyIDFromDotNetBytes(b []byte) KeyID {
	_ = b[15]
	var id KeyID
	id[0], id[1], id[2], id[3] = b[3], b[2], b[1], b[0]
	id[4], id[5] = b[5], b[4]
	id[6], id[7] = b[7], b[6]
	copy(id[8:], b[8:16])
	return id
}

// Compare orders key ids as .NET's System.Guid.CompareTo does (field by field: the 32-bit,
// then the two 16-bit fields as unsigned numbers, then the remaining bytes in order). It returns
// -1, 0 or +1.
func (id KeyID) Compare(other KeyID) int {
	// In RFC 4122 byte order each field is big-endian, so a bytewise comparison is the same as
	// comparing the fields as unsigned numbers in order.
	for i := range id {
		switch {
		case id[i] < other[i]:
			return -1
		case id[i] > other[i]:
			return 1
		}
	}
	return 0
}

// MarshalText implements encoding.TextMarshaler with the "D" form.
func (id KeyID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with [ParseKeyID].
func (id *KeyID) UnmarshalText(b []byte) error {
	v, err := ParseKeyID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}
