package keyring_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/dpkeyring/dpkeyring/keyring"
)

// fuzzRing returns a fixed ring: one key per algorithm family, a revoked key, a key with an
// unreadable descriptor, and a key with the master key of the upstream known-answer tests.
func fuzzRing(tb testing.TB) (*keyring.Ring, []keyring.Key) {
	tb.Helper()
	fixed := func(i byte, enc keyring.EncryptionAlgorithm, val keyring.ValidationAlgorithm, kdk []byte) keyring.Key {
		id := mustRandomKeyID(tb)
		for j := range id {
			id[j] = i
		}
		if kdk == nil {
			sum := sha256.Sum256([]byte{i})
			kdk = sum[:]
		}
		return keyring.Key{ID: id, Descriptor: &keyring.Descriptor{Encryption: enc, Validation: val, MasterKey: keyring.NewSecret(kdk)}}
	}
	keys := []keyring.Key{
		fixed(1, keyring.AES256CBC, keyring.HMACSHA256, nil),
		fixed(2, keyring.AES128CBC, keyring.HMACSHA512, nil),
		fixed(3, keyring.AES192CBC, keyring.HMACSHA1, nil),
		fixed(4, keyring.AES256GCM, keyring.ValidationUnknown, nil),
		fixed(5, keyring.AES128GCM, keyring.ValidationUnknown, []byte("master key")),
		fixed(6, keyring.AES256CBC, keyring.HMACSHA256, []byte("master key")),
		fixed(7, keyring.AES256CBC, keyring.HMACSHA256, nil), // revoked below
		{ID: keyring.KeyID{8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8}, DescriptorErr: keyring.ErrUnsupportedProtection},
	}
	r := mustPayloadRing(tb, keys, keyring.Revocation{KeyID: keys[6].ID})
	return r, keys
}

// knownAnswerPayloads returns the encryptor payloads of the upstream known-answer vectors.
func knownAnswerPayloads(tb testing.TB) [][]byte {
	tb.Helper()
	b, err := os.ReadFile("../testdata/aspnetcore.json")
	if err != nil {
		tb.Fatal(err)
	}
	var vs []struct {
		Kind           string `json:"kind"`
		ExpectedBase64 string `json:"expected_base64"`
		Pre            int    `json:"pre_buffer_len"`
		Post           int    `json:"post_buffer_len"`
	}
	if err := json.Unmarshal(b, &vs); err != nil {
		tb.Fatal(err)
	}
	var out [][]byte
	for _, v := range vs {
		if v.Kind != "cbc_encrypt" && v.Kind != "gcm_encrypt" {
			continue
		}
		p, err := base64.StdEncoding.DecodeString(v.ExpectedBase64)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, p[v.Pre:len(p)-v.Post])
	}
	return out
}

func FuzzUnprotect(f *testing.F) {
	r, keys := fuzzRing(f)
	purposes := []string{"", "p", "Microsoft.AspNetCore.Authentication.Cookies.CookieAuthenticationMiddleware"}
	for i, k := range keys {
		for _, n := range []int{0, 1, 16, 100} {
			var p []byte
			if k.Descriptor != nil {
				p = mustProtectWithKey(f, k, bytes.Repeat([]byte{byte(n)}, n), []string{purposes[i%len(purposes)]})
			} else {
				id := k.ID.DotNetBytes()
				p = append(append([]byte{0x09, 0xF0, 0xC9, 0xF0}, id[:]...), make([]byte, 64)...)
			}
			f.Add(p, purposes[i%len(purposes)])
		}
	}
	for _, body := range knownAnswerPayloads(f) {
		for _, k := range keys[4:6] {
			id := k.ID.DotNetBytes()
			f.Add(append(append([]byte{0x09, 0xF0, 0xC9, 0xF0}, id[:]...), body...), "p")
		}
	}
	f.Add([]byte{}, "")
	f.Add([]byte{0x09, 0xF0, 0xC9, 0xF1}, "p")
	f.Add([]byte("CfDJ8AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), "\xff")

	f.Fuzz(func(t *testing.T, payload []byte, purpose string) {
		purposes := []string{purpose}
		plaintext, k, err := r.Unprotect(payload, purposes)
		if err != nil {
			if plaintext != nil {
				t.Fatalf("plaintext returned with error %v", err)
			}
			for _, want := range []error{
				keyring.ErrMalformedPayload, keyring.ErrNewerPayloadVersion, keyring.ErrKeyNotFound,
				keyring.ErrKeyRevoked, keyring.ErrDecryptionFailed, keyring.ErrInvalidPurpose,
				keyring.ErrUnsupportedProtection,
			} {
				if errors.Is(err, want) {
					return
				}
			}
			t.Fatalf("unexpected error class: %v", err)
		}
		id, err := keyring.PayloadKeyID(payload)
		if err != nil || id != k.ID {
			t.Fatalf("decrypted with key %s but PayloadKeyID = %s, %v", k.ID, id, err)
		}
		again, err := keyring.ProtectWithKey(k, plaintext, purposes)
		if err != nil {
			t.Fatal(err)
		}
		back, _, err := r.Unprotect(again, purposes)
		if err != nil || !bytes.Equal(back, plaintext) {
			t.Fatalf("round trip: %x, %v; want %x", back, err, plaintext)
		}
	})
}

func FuzzBase64URLDecode(f *testing.F) {
	for _, s := range []string{"", "-_8AAf4", "+/8AAf4", "AQ==", "AQ=", "A", "CfDJ8AAA", "-/", "AQ\nID", "=="} {
		f.Add(s)
	}
	for _, p := range knownAnswerPayloads(f) {
		f.Add(keyring.Base64URLEncode(p))
		f.Add(base64.StdEncoding.EncodeToString(p))
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := keyring.Base64URLDecode(s)
		if err != nil {
			if !errors.Is(err, keyring.ErrMalformedPayload) {
				t.Fatalf("error %v does not wrap ErrMalformedPayload", err)
			}
			return
		}
		if strings.ContainsAny(s, "-_") && strings.ContainsAny(s, "+/") {
			t.Fatalf("accepted %q, which mixes both alphabets", s)
		}
		enc := keyring.Base64URLEncode(b)
		if strings.ContainsAny(enc, "+/=") {
			t.Fatalf("Base64URLEncode(%x) = %q uses the standard alphabet or padding", b, enc)
		}
		back, err := keyring.Base64URLDecode(enc)
		if err != nil || !bytes.Equal(back, b) {
			t.Fatalf("round trip of %x: %x, %v", b, back, err)
		}
	})
}
