package keyring

import (
	"encoding/base64"
	"fmt"
	"strings"
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
func Base64URLDecode(s string) ([]byte, error) {
	t := strings.TrimRight(s, "=")
	if pad := len(s) - len(t); pad > 0 && (pad > 2 || len(s)%4 != 0) {
		return nil, fmt.Errorf("%w: bad base64 padding", ErrMalformedPayload)
	}
	if len(t)%4 == 1 {
		return nil, fmt.Errorf("%w: base64url text has an impossible length", ErrMalformedPayload)
	}
	enc := base64.RawStdEncoding
	if strings.ContainsAny(t, "-_") {
		enc = base64.RawURLEncoding
	}
	b, err := enc.DecodeString(t)
	if err != nil {
		return nil, fmt.Errorf("%w: invalid base64url text", ErrMalformedPayload)
	}
	return b, nil
}
