package keyring

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// vector is one entry of ../testdata/aspnetcore.json (fields used by the payload tests).
type vector struct {
	Name           string            `json:"name"`
	Kind           string            `json:"kind"`
	KDKHex         *string           `json:"kdk_hex"`
	KDKPattern     string            `json:"kdk_pattern"`
	KDKLen         int               `json:"kdk_len"`
	LabelHex       string            `json:"label_hex"`
	ContextHdrHex  string            `json:"context_header_hex"`
	ContextHex     string            `json:"context_hex"`
	NumBytes       int               `json:"num_bytes"`
	ExpectedBase64 string            `json:"expected_base64"`
	ExpectedHex    string            `json:"expected_hex"`
	Expected       string            `json:"expected"`
	EncKeyBytes    int               `json:"enc_key_bytes"`
	HMAC           string            `json:"hmac"`
	PlaintextHex   string            `json:"plaintext_hex"`
	AADHex         string            `json:"aad_hex"`
	KeyModifierHex string            `json:"key_modifier_hex"`
	IVHex          string            `json:"iv_hex"`
	NonceHex       string            `json:"nonce_hex"`
	PreBufferLen   int               `json:"pre_buffer_len"`
	PostBufferLen  int               `json:"post_buffer_len"`
	ExpectedLayout map[string]string `json:"expected_layout"`
	Intermediate   map[string]string `json:"intermediate"`
	KeyID          string            `json:"key_id"`
	GUID           string            `json:"guid"`
	Purposes       []string          `json:"purposes"`
	Cases          [][2]uint64       `json:"cases"`
	InputHex       string            `json:"input_hex"`
}

// vectorKindsHandledElsewhere are vector kinds tested by other files of the package.
var vectorKindsHandledElsewhere = map[string]string{
	"key_ring_revocation": "the key ring XML tests",
}

func loadVectors(tb testing.TB) []vector {
	tb.Helper()
	b, err := os.ReadFile("../testdata/aspnetcore.json")
	if err != nil {
		tb.Fatal(err)
	}
	var vs []vector
	if err := json.Unmarshal(b, &vs); err != nil {
		tb.Fatal(err)
	}
	if len(vs) == 0 {
		tb.Fatal("no vectors in ../testdata/aspnetcore.json")
	}
	return vs
}

func mustVectorHex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		tb.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func mustVectorBase64(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		tb.Fatalf("bad base64 %q: %v", s, err)
	}
	return b
}

func mustVectorKeyID(tb testing.TB, s string) KeyID {
	tb.Helper()
	id, err := ParseKeyID(s)
	if err != nil {
		tb.Fatal(err)
	}
	return id
}

// vectorKDK returns the key-derivation key of a vector.
func vectorKDK(t *testing.T, v vector) []byte {
	t.Helper()
	switch {
	case v.KDKPattern != "":
		if v.KDKPattern != "i mod 256 for i in 0..kdk_len-1" {
			t.Fatalf("unknown kdk_pattern %q", v.KDKPattern)
		}
		kdk := make([]byte, v.KDKLen)
		for i := range kdk {
			kdk[i] = byte(i)
		}
		return kdk
	case v.KDKHex != nil:
		return mustVectorHex(t, *v.KDKHex)
	}
	t.Fatal("vector has no kdk")
	return nil
}

// vectorDescriptor returns the descriptor for a cbc_encrypt or gcm_encrypt vector.
func vectorDescriptor(t *testing.T, v vector) *Descriptor {
	t.Helper()
	d := vectorAlgorithms(t, v)
	d.MasterKey = NewSecret(vectorKDK(t, v))
	return d
}

// vectorAlgorithms returns a descriptor with the algorithms a vector names and no master key.
func vectorAlgorithms(t *testing.T, v vector) *Descriptor {
	t.Helper()
	d := &Descriptor{}
	gcm := v.Kind == "gcm_encrypt" || v.Kind == "context_header_gcm"
	switch {
	case gcm && v.EncKeyBytes == 16:
		d.Encryption = AES128GCM
	case gcm && v.EncKeyBytes == 24:
		d.Encryption = AES192GCM
	case gcm && v.EncKeyBytes == 32:
		d.Encryption = AES256GCM
	case v.EncKeyBytes == 16:
		d.Encryption = AES128CBC
	case v.EncKeyBytes == 24:
		d.Encryption = AES192CBC
	case v.EncKeyBytes == 32:
		d.Encryption = AES256CBC
	default:
		t.Fatalf("unexpected enc_key_bytes %d", v.EncKeyBytes)
	}
	if !gcm {
		switch v.HMAC {
		case "HMACSHA256":
			d.Validation = HMACSHA256
		case "HMACSHA512":
			d.Validation = HMACSHA512
		default:
			t.Fatalf("unexpected hmac %q", v.HMAC)
		}
	}
	return d
}

func TestVectors(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			switch v.Kind {
			case "sp800_108":
				testVectorKDF(t, v)
			case "cbc_encrypt", "gcm_encrypt":
				testVectorEncrypt(t, v)
			case "context_header_gcm", "context_header_cbc":
				testVectorContextHeader(t, v)
			case "aad_template", "aad":
				testVectorAAD(t, v)
			case "seven_bit_len":
				testVectorSevenBit(t, v)
			case "guid_bytes":
				id := mustVectorKeyID(t, v.GUID)
				got := id.DotNetBytes()
				if diff := cmp.Diff(mustVectorHex(t, v.ExpectedHex), got[:]); diff != "" {
					t.Errorf("DotNetBytes mismatch (-want +got):\n%s", diff)
				}
				if back := KeyIDFromDotNetBytes(got[:]); back != id {
					t.Errorf("KeyIDFromDotNetBytes = %s, want %s", back, id)
				}
			case "base64url":
				in := mustVectorHex(t, v.InputHex)
				if got := Base64URLEncode(in); got != v.Expected {
					t.Errorf("Base64URLEncode = %q, want %q", got, v.Expected)
				}
				got, err := Base64URLDecode(v.Expected)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, in) {
					t.Errorf("Base64URLDecode = %x, want %x", got, in)
				}
			default:
				if where, ok := vectorKindsHandledElsewhere[v.Kind]; ok {
					t.Skipf("kind %s is tested by %s", v.Kind, where)
				}
				t.Fatalf("unknown vector kind %q: add a test for it", v.Kind)
			}
		})
	}
}

func testVectorKDF(t *testing.T, v vector) {
	got := DeriveKey(vectorKDK(t, v), mustVectorHex(t, v.LabelHex), mustVectorHex(t, v.ContextHdrHex), mustVectorHex(t, v.ContextHex), v.NumBytes)
	if diff := cmp.Diff(mustVectorBase64(t, v.ExpectedBase64), got); diff != "" {
		t.Errorf("DeriveKey mismatch (-want +got):\n%s", diff)
	}
}

func testVectorEncrypt(t *testing.T, v vector) {
	d := vectorDescriptor(t, v)
	plaintext, aad := mustVectorHex(t, v.PlaintextHex), mustVectorHex(t, v.AADHex)
	iv := v.IVHex
	if v.Kind == "gcm_encrypt" {
		iv = v.NonceHex
	}
	got, err := d.encryptDeterministic(plaintext, aad, mustVectorHex(t, v.KeyModifierHex), mustVectorHex(t, iv))
	if err != nil {
		t.Fatal(err)
	}
	want := mustVectorBase64(t, v.ExpectedBase64)
	if v.PreBufferLen+v.PostBufferLen > 0 {
		// The upstream test surrounds the payload with zero pre/post buffers.
		if len(want) < v.PreBufferLen+v.PostBufferLen {
			t.Fatalf("expected bytes shorter than the buffers")
		}
		if !allZero(want[:v.PreBufferLen]) || !allZero(want[len(want)-v.PostBufferLen:]) {
			t.Fatalf("pre/post buffers of the expected bytes are not zero")
		}
		want = want[v.PreBufferLen : len(want)-v.PostBufferLen]
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("encryptor payload mismatch (-want +got):\n%s", diff)
	}
	if l := v.ExpectedLayout; l != nil {
		var layout []byte
		for _, part := range []string{"key_modifier", "iv", "nonce", "ciphertext", "mac", "tag"} {
			if s, ok := l[part]; ok {
				layout = append(layout, mustVectorHex(t, s)...)
			}
		}
		if !bytes.Equal(layout, got) {
			t.Errorf("payload %X does not match expected_layout %X", got, layout)
		}
	}
	pt, err := d.Decrypt(got, aad)
	if err != nil {
		t.Fatalf("Decrypt of the known answer: %v", err)
	}
	if !bytes.Equal(pt, plaintext) {
		t.Errorf("Decrypt = %x, want %x", pt, plaintext)
	}
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func testVectorContextHeader(t *testing.T, v vector) {
	d := vectorAlgorithms(t, v)
	got, err := ContextHeader(d.Encryption, d.Validation)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(mustVectorHex(t, v.ExpectedHex), got); diff != "" {
		t.Errorf("ContextHeader(%s, %s) mismatch (-want +got):\n%s", d.Encryption, d.Validation, diff)
	}
	if len(v.Intermediate) == 0 {
		return
	}
	macLen := d.Validation.DigestSize()
	for name, want := range v.Intermediate {
		var part []byte
		switch {
		case name == "K_E||K_H":
			part = DeriveKey(nil, nil, nil, nil, d.Encryption.KeySize()+macLen)
		case strings.HasPrefix(name, "Enc_CBC("):
			part = got[18 : 18+16]
		case strings.HasPrefix(name, "HMAC"):
			part = got[18+16:]
		default:
			t.Fatalf("unknown intermediate value %q", name)
		}
		if diff := cmp.Diff(mustVectorHex(t, want), part); diff != "" {
			t.Errorf("intermediate %s mismatch (-want +got):\n%s", name, diff)
		}
	}
}

func testVectorAAD(t *testing.T, v vector) {
	got, err := AAD(mustVectorKeyID(t, v.KeyID), v.Purposes)
	if err != nil {
		t.Fatal(err)
	}
	var want []byte
	if v.ExpectedHex != "" {
		want = mustVectorHex(t, v.ExpectedHex)
	} else {
		want = mustVectorBase64(t, v.ExpectedBase64)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("AAD mismatch (-want +got):\n%s", diff)
	}
}

func testVectorSevenBit(t *testing.T, v vector) {
	if len(v.Cases) == 0 {
		t.Fatal("no cases")
	}
	for _, c := range v.Cases {
		value, wantLen := uint32(c[0]), int(c[1])
		if uint64(value) != c[0] {
			t.Fatalf("case value %d does not fit in uint32", c[0])
		}
		if got := sevenBitLen(value); got != wantLen {
			t.Errorf("sevenBitLen(%d) = %d, want %d", value, got, wantLen)
		}
		enc := appendSevenBit(nil, value)
		if len(enc) != wantLen {
			t.Errorf("appendSevenBit(%d) wrote %d bytes, want %d", value, len(enc), wantLen)
		}
		if got := decodeSevenBit(t, enc); got != value {
			t.Errorf("appendSevenBit(%d) decodes to %d", value, got)
		}
	}
}

// decodeSevenBit is the reader side of appendSevenBit (BinaryReader.Read7BitEncodedInt).
func decodeSevenBit(t *testing.T, b []byte) uint32 {
	t.Helper()
	var v uint32
	for i, c := range b {
		v |= uint32(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			if i != len(b)-1 {
				t.Fatalf("7-bit encoding %x ends early", b)
			}
			return v
		}
	}
	t.Fatalf("7-bit encoding %x has no final byte", b)
	return 0
}
