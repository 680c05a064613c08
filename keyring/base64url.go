package keyring

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strings"
	"unsafe"

	simdbase64 "github.com/segmentio/asm/base64"
)

// Base64URLEncode encodes b with the base64url alphabet (RFC 4648 §5) and no padding, as ASP.NET
// Core's WebEncoders.Base64UrlEncode does for protected strings and cookies.
func Base64URLEncode(b []byte) string {
	return base64.RawURLEncoding.EncodeToString(b)
}

// Base64URLDecode decodes base64url text as ASP.NET Core's WebEncoders.Base64UrlDecode accepts
// it: without padding, or with correct '=' padding; and, if the text contains no '-' or '_',
// also in the standard alphabet ('+', '/'). Text mixing both alphabets is refused, as .NET 9+
// does. A length of 1 modulo 4 (after removing padding) is an error. Errors wrap
// [ErrMalformedPayload].
//
// Text in the URL alphabet (the case of every cookie and protected string) is decoded with SIMD
// instructions where the CPU has them (AVX2 on amd64, NEON on arm64) into a buffer of the exact
// size. Text the URL decoder refuses is decoded again in one scalar pass with both alphabets;
// anything else (line breaks, which encoding/base64 skips, or invalid characters) goes through
// encoding/base64, which gives the same result more slowly.
func Base64URLDecode(s string) ([]byte, error) {
	t, err := trimBase64Padding(s)
	if err != nil {
		return nil, err
	}
	out := make([]byte, len(t)/4*3+len(t)%4*3/4)
	// The SIMD decoder only reads its source, so it may read the string's bytes in place. It
	// also takes '/' for 63, which would let text mixing the alphabets through: such text goes
	// the scalar way, which refuses it.
	if n, err := simdbase64.RawURLEncoding.Decode(out, unsafe.Slice(unsafe.StringData(t), len(t))); err == nil && n == len(out) &&
		strings.IndexByte(t, '/') < 0 {
		return out, nil
	}
	flags := decodeBase64Union(out, t)
	switch {
	case flags&b64Invalid != 0:
		return decodeBase64Stdlib(t)
	case flags&(b64URLOnly|b64StdOnly) == b64URLOnly|b64StdOnly:
		return nil, errInvalidBase64
	}
	return out, nil
}

var errInvalidBase64 = fmt.Errorf("%w: invalid base64url text", ErrMalformedPayload)

// trimBase64Padding removes correct '=' padding from s and rejects impossible lengths.
func trimBase64Padding(s string) (string, error) {
	t := strings.TrimRight(s, "=")
	if pad := len(s) - len(t); pad > 0 && (pad > 2 || len(s)%4 != 0) {
		return "", fmt.Errorf("%w: bad base64 padding", ErrMalformedPayload)
	}
	if len(t)%4 == 1 {
		return "", fmt.Errorf("%w: base64url text has an impossible length", ErrMalformedPayload)
	}
	return t, nil
}

// decodeBase64Stdlib decodes unpadded text with encoding/base64: the URL alphabet if t contains
// '-' or '_', else the standard one. It is the reference the fast decoder must agree with.
func decodeBase64Stdlib(t string) ([]byte, error) {
	enc := base64.RawStdEncoding
	if strings.ContainsAny(t, "-_") {
		enc = base64.RawURLEncoding
	}
	b, err := enc.DecodeString(t)
	if err != nil {
		return nil, errInvalidBase64
	}
	return b, nil
}

// Flags of the decoding tables, above the 24 bits of a decoded quantum.
const (
	b64Invalid = 1 << 24 // not a character of either alphabet
	b64URLOnly = 1 << 25 // '-' or '_'
	b64StdOnly = 1 << 26 // '+' or '/'
	b64Bits    = 1<<24 - 1
)

// b64Tables[i][c] is the value of character c at position i of a 4-character quantum, shifted to
// its place in the 24 decoded bits, with the flags above. Both alphabets decode: '-' and '+' are
// 62, '_' and '/' are 63.
var b64Tables = func() (t [4][256]uint32) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	for i := range t {
		shift := 18 - 6*i
		for c := range t[i] {
			t[i][c] = b64Invalid
		}
		for v, c := range []byte(alphabet) {
			t[i][c] = uint32(v) << shift
		}
		t[i]['-'] = 62<<shift | b64URLOnly
		t[i]['_'] = 63<<shift | b64URLOnly
		t[i]['+'] = 62<<shift | b64StdOnly
		t[i]['/'] = 63<<shift | b64StdOnly
	}
	return t
}()

// decodeBase64Union decodes t (no padding, len(t)%4 != 1) into dst, which must hold exactly the
// decoded length, with both alphabets, and returns the OR of the flags of all characters. When
// the result has b64Invalid set, dst holds garbage. Trailing bits of a partial quantum are
// ignored, as encoding/base64 does when not strict.
func decodeBase64Union(dst []byte, t string) uint32 {
	d0, d1, d2, d3 := &b64Tables[0], &b64Tables[1], &b64Tables[2], &b64Tables[3]
	var flags uint32
	si, di := 0, 0
	// Eight characters give six bytes, stored with one 8-byte write while dst has room for it.
	for len(t)-si >= 8 && len(dst)-di >= 8 {
		s := t[si : si+8]
		x := d0[s[0]] | d1[s[1]] | d2[s[2]] | d3[s[3]]
		y := d0[s[4]] | d1[s[5]] | d2[s[6]] | d3[s[7]]
		flags |= x | y
		binary.BigEndian.PutUint64(dst[di:], uint64(x&b64Bits)<<40|uint64(y&b64Bits)<<16)
		si += 8
		di += 6
	}
	for len(t)-si >= 4 {
		s := t[si : si+4]
		x := d0[s[0]] | d1[s[1]] | d2[s[2]] | d3[s[3]]
		flags |= x
		d := dst[di : di+3]
		d[0], d[1], d[2] = byte(x>>16), byte(x>>8), byte(x)
		si += 4
		di += 3
	}
	switch s := t[si:]; len(s) {
	case 2:
		x := d0[s[0]] | d1[s[1]]
		flags |= x
		dst[di] = byte(x >> 16)
	case 3:
		x := d0[s[0]] | d1[s[1]] | d2[s[2]]
		flags |= x
		d := dst[di : di+2]
		d[0], d[1] = byte(x>>16), byte(x>>8)
	}
	return flags
}
