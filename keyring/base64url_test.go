package keyring_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/dpkeyring/dpkeyring/keyring"
)

// referenceBase64URLDecode is Base64URLDecode as it was before the one-pass decoder, on top of
// encoding/base64: padding checks, then the URL alphabet if the text contains '-' or '_', else
// the standard one.
func referenceBase64URLDecode(s string) ([]byte, error) {
	t := strings.TrimRight(s, "=")
	if pad := len(s) - len(t); pad > 0 && (pad > 2 || len(s)%4 != 0) {
		return nil, fmt.Errorf("%w: bad base64 padding", keyring.ErrMalformedPayload)
	}
	if len(t)%4 == 1 {
		return nil, fmt.Errorf("%w: base64url text has an impossible length", keyring.ErrMalformedPayload)
	}
	enc := base64.RawStdEncoding
	if strings.ContainsAny(t, "-_") {
		enc = base64.RawURLEncoding
	}
	b, err := enc.DecodeString(t)
	if err != nil {
		return nil, fmt.Errorf("%w: invalid base64url text", keyring.ErrMalformedPayload)
	}
	return b, nil
}

// checkBase64Agrees fails if Base64URLDecode and the encoding/base64 reference disagree on s.
func checkBase64Agrees(t *testing.T, s string) {
	t.Helper()
	got, err := keyring.Base64URLDecode(s)
	want, wantErr := referenceBase64URLDecode(s)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("Base64URLDecode(%q) error = %v, reference error = %v", s, err, wantErr)
	}
	if err != nil {
		if !errors.Is(err, keyring.ErrMalformedPayload) {
			t.Fatalf("Base64URLDecode(%q) error %v does not wrap ErrMalformedPayload", s, err)
		}
		return
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Base64URLDecode(%q) = %x, reference %x", s, got, want)
	}
}

func TestBase64URLDecodeAgreesWithStdlib(t *testing.T) {
	long := make([]byte, 300)
	for i := range long {
		long[i] = byte(i * 7)
	}
	inputs := []string{
		"", "A", "AQ", "AQI", "AQID", "AQIDBA", "AQ==", "AQ=", "AQI=", "==", "=", "AQID====",
		"-_8AAf4", "+/8AAf4", "-/8AAf4", "+_8AAf4", "AQ\nID", "AQID\r\nBA", "AQID\n", "\nAQID",
		"AQ ID", "AQ=ID", "AQ==AQ==", "AB", "AC", "AD", "ABC", "ABD", "A\x80BC", "\xff\xff\xff\xff",
		"CfDJ8AAAAAAAAAAAAAAAAAAAAAA", "CfDJ8-_-_-_-_-_-_", "CfDJ8+/+/+/+/+/+/", "CfDJ8+/+/+/+/+/+_",
	}
	for n := range len(long) {
		inputs = append(inputs, base64.RawURLEncoding.EncodeToString(long[:n]),
			base64.StdEncoding.EncodeToString(long[:n]), base64.URLEncoding.EncodeToString(long[:n]))
	}
	mixed := base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb, 0xff}, 40))
	inputs = append(inputs, mixed+"+", mixed[:len(mixed)-1]+"/", "+"+mixed[1:], mixed[:20]+"\n"+mixed[20:])
	for _, s := range inputs {
		checkBase64Agrees(t, s)
	}
}

// FuzzBase64URLDecodeDifferential checks that the fast decoder accepts and rejects exactly what
// the encoding/base64 reference does, with the same bytes.
func FuzzBase64URLDecodeDifferential(f *testing.F) {
	for _, s := range []string{"", "-_8AAf4", "+/8AAf4", "AQ==", "AQ=", "A", "CfDJ8AAA", "-/", "AQ\nID", "==",
		"CfDJ8AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA"} {
		f.Add(s)
	}
	f.Fuzz(checkBase64Agrees)
}

// TestBase64URLDecodeOddCharacterAnywhere puts each character that is not in the URL alphabet
// (or only in the standard one, or padding, or a line break, or non-ASCII) at every position of
// texts long enough for the SIMD decoder, whose blocks must hand such text to the scalar path.
func TestBase64URLDecodeOddCharacterAnywhere(t *testing.T) {
	raw := make([]byte, 200)
	for i := range raw {
		raw[i] = byte(i*37 + 11)
	}
	for _, n := range []int{24, 48, 49, 50, 96, 150, 200} {
		s := base64.RawURLEncoding.EncodeToString(raw[:n])
		checkBase64Agrees(t, s)
		for _, odd := range []byte{'+', '/', '=', '\n', '\r', ' ', '.', '!', 0x00, 0x7f, 0x80, 0xff, '-', '_'} {
			for i := range len(s) {
				b := []byte(s)
				b[i] = odd
				checkBase64Agrees(t, string(b))
			}
		}
		// The whole text in the standard alphabet, which the URL decoder refuses.
		checkBase64Agrees(t, base64.RawStdEncoding.EncodeToString(raw[:n]))
	}
}
