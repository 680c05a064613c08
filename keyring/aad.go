package keyring

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"unicode/utf8"
)

// ErrInvalidPurpose reports a purpose string that .NET could not have produced (not valid UTF-8),
// so no ASP.NET Core payload can carry it.
var ErrInvalidPurpose = errors.New("keyring: purpose is not valid UTF-8")

// magicHeader is the big-endian uint32 that starts every protected payload and every AAD
// (KeyRingBasedDataProtector.MAGIC_HEADER_V0). The low nibble is the format version, 0.
const magicHeader uint32 = 0x09F0C9F0

// headerSize is the length of the payload envelope: magic header and key id.
const headerSize = 4 + 16

// AAD returns the additional authenticated data ASP.NET Core uses for a payload protected with
// key id and the purpose chain purposes:
//
//	MAGIC(09 F0 C9 F0) || key id (.NET Guid byte order) || BE32(len(purposes)) ||
//	for each purpose: 7-bit-encoded UTF-8 length || UTF-8 bytes
//
// It is the KDF label of [DeriveKey], not hashed. Build the purpose chain with [Purposes] to
// include the application name. It returns an error wrapping [ErrInvalidPurpose] if a purpose is
// not valid UTF-8.
func AAD(id KeyID, purposes []string) ([]byte, error) {
	size := headerSize + 4
	for i, p := range purposes {
		if !utf8.ValidString(p) || len(p) > math.MaxInt32 {
			return nil, fmt.Errorf("%w (purpose %d)", ErrInvalidPurpose, i)
		}
		size += sevenBitLen(uint32(len(p))) + len(p)
	}
	b := make([]byte, 0, size)
	b = binary.BigEndian.AppendUint32(b, magicHeader)
	idBytes := id.DotNetBytes()
	b = append(b, idBytes[:]...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(purposes)))
	for _, p := range purposes {
		b = appendSevenBit(b, uint32(len(p)))
		b = append(b, p...)
	}
	return b, nil
}

// Purposes returns the purpose chain of a protector that an ASP.NET Core application obtains
// from dependency injection: the application name (DataProtectionOptions.ApplicationDiscriminator,
// set by SetApplicationName or defaulting to the content root path) first when it is non-empty,
// then purposes. The result is a new slice.
func Purposes(appName string, purposes ...string) []string {
	out := make([]string, 0, len(purposes)+1)
	if appName != "" {
		out = append(out, appName)
	}
	return append(out, purposes...)
}

// appendSevenBit appends v as .NET's BinaryWriter.Write7BitEncodedInt does: seven bits at a time,
// low bits first, the high bit set on every byte but the last.
func appendSevenBit(b []byte, v uint32) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// sevenBitLen returns the number of bytes appendSevenBit writes for v (1 to 5).
func sevenBitLen(v uint32) int {
	n := 1
	for v >= 0x80 {
		n++
		v >>= 7
	}
	return n
}
