package keyring_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"testing"

	"github.com/dpkeyring/dpkeyring/keyring"
)

// referenceKDF is a direct transcription of the SP800-108 counter-mode formula, for comparison.
func referenceKDF(kdk, label, contextHeader, context []byte, n int) []byte {
	var out []byte
	for i := uint32(1); len(out) < n; i++ {
		var msg []byte
		msg = binary.BigEndian.AppendUint32(msg, i)
		msg = append(msg, label...)
		msg = append(msg, 0)
		msg = append(msg, contextHeader...)
		msg = append(msg, context...)
		msg = binary.BigEndian.AppendUint32(msg, uint32(n*8))
		mac := hmac.New(sha512.New, kdk)
		mac.Write(msg)
		out = mac.Sum(out)
	}
	return out[:n]
}

func TestDeriveKey(t *testing.T) {
	kdk := mustRandomBytes(t, 64)
	label, header, context := []byte("label"), []byte("header"), mustRandomBytes(t, 16)
	for _, n := range []int{1, 16, 32, 63, 64, 65, 96, 128, 129, 300} {
		got := keyring.DeriveKey(kdk, label, header, context, n)
		if want := referenceKDF(kdk, label, header, context, n); !bytes.Equal(got, want) {
			t.Errorf("DeriveKey(n=%d) = %x, want %x", n, got, want)
		}
	}
	for _, n := range []int{0, -1} {
		if got := keyring.DeriveKey(kdk, label, header, context, n); len(got) != 0 {
			t.Errorf("DeriveKey(n=%d) returned %d bytes", n, len(got))
		}
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("DeriveKey(MaxDerivedKeySize) did not panic")
			}
		}()
		keyring.DeriveKey(kdk, label, header, context, keyring.MaxDerivedKeySize)
	}()
	// The output length is an input of the PRF, so a shorter output is not a prefix.
	if a, b := keyring.DeriveKey(kdk, label, header, context, 32), keyring.DeriveKey(kdk, label, header, context, 64); bytes.Equal(a, b[:32]) {
		t.Error("DeriveKey(32) is a prefix of DeriveKey(64): the length is not mixed in")
	}
	// Label and context are separated, so moving a byte across the separator changes the key.
	if a, b := keyring.DeriveKey(kdk, []byte("ab"), []byte("c"), nil, 32), keyring.DeriveKey(kdk, []byte("a"), []byte("bc"), nil, 32); bytes.Equal(a, b) {
		t.Error("label/context boundary does not change the output")
	}
}

func BenchmarkDeriveKey(b *testing.B) {
	kdk := make([]byte, 64)
	label := make([]byte, 120)
	header, _ := keyring.ContextHeader(keyring.AES256CBC, keyring.HMACSHA256)
	context := make([]byte, 16)
	for _, n := range []int{64, 96} {
		b.Run(map[int]string{64: "64B", 96: "96B"}[n], func(b *testing.B) {
			for b.Loop() {
				keyring.DeriveKey(kdk, label, header, context, n)
			}
		})
	}
}

// benchmarkPayload returns a ring with one AES-256-CBC/HMACSHA256 key and a 1.5 KB payload.
func benchmarkPayload(b *testing.B) (*keyring.Ring, keyring.Key, []byte, []string) {
	k := newPayloadKey(b, keyring.AES256CBC, keyring.HMACSHA256)
	purposes := keyring.Purposes("/app/", "Microsoft.AspNetCore.Authentication.Cookies.CookieAuthenticationMiddleware", "UmbracoBackOffice", "v2")
	payload := mustProtectWithKey(b, k, bytes.Repeat([]byte("x"), 1500), purposes)
	return mustPayloadRing(b, []keyring.Key{k}), k, payload, purposes
}

func BenchmarkUnprotect1500(b *testing.B) {
	r, _, payload, purposes := benchmarkPayload(b)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := r.Unprotect(payload, purposes); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRawPrimitives1500 does the same cryptographic work as BenchmarkUnprotect1500 with the
// primitives alone (KDF, HMAC check, AES-CBC decrypt), to measure the overhead of the API.
func BenchmarkRawPrimitives1500(b *testing.B) {
	_, k, payload, purposes := benchmarkPayload(b)
	aad, err := keyring.AAD(k.ID, purposes)
	if err != nil {
		b.Fatal(err)
	}
	header, _ := keyring.ContextHeader(keyring.AES256CBC, keyring.HMACSHA256)
	kdk := k.Descriptor.MasterKey.Bytes()
	body := payload[20:]
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		keys := keyring.DeriveKey(kdk, aad, header, body[:16], 64)
		mac := hmac.New(sha256.New, keys[32:])
		mac.Write(body[16 : len(body)-32])
		if !hmac.Equal(mac.Sum(nil), body[len(body)-32:]) {
			b.Fatal("bad mac")
		}
		block, _ := aes.NewCipher(keys[:32])
		out := make([]byte, len(body)-64)
		cipher.NewCBCDecrypter(block, body[16:32]).CryptBlocks(out, body[32:len(body)-32])
	}
}

func BenchmarkProtect1500(b *testing.B) {
	_, k, _, purposes := benchmarkPayload(b)
	plaintext := bytes.Repeat([]byte("x"), 1500)
	b.SetBytes(int64(len(plaintext)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := keyring.ProtectWithKey(k, plaintext, purposes); err != nil {
			b.Fatal(err)
		}
	}
}
