package keyring_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dpkeyring/dpkeyring/keyring"
)

// algorithmCase is one supported encryption/validation combination.
type algorithmCase struct {
	enc keyring.EncryptionAlgorithm
	val keyring.ValidationAlgorithm
}

func (c algorithmCase) String() string {
	if c.enc.IsGCM() {
		return c.enc.String()
	}
	return c.enc.String() + "+" + c.val.String()
}

// allAlgorithms lists every supported combination.
func allAlgorithms() []algorithmCase {
	var cs []algorithmCase
	for _, enc := range []keyring.EncryptionAlgorithm{keyring.AES128CBC, keyring.AES192CBC, keyring.AES256CBC} {
		for _, val := range []keyring.ValidationAlgorithm{keyring.HMACSHA256, keyring.HMACSHA512, keyring.HMACSHA1, keyring.HMACSHA384} {
			cs = append(cs, algorithmCase{enc, val})
		}
	}
	for _, enc := range []keyring.EncryptionAlgorithm{keyring.AES128GCM, keyring.AES192GCM, keyring.AES256GCM} {
		cs = append(cs, algorithmCase{enc, keyring.ValidationUnknown})
	}
	return cs
}

func mustRandomBytes(tb testing.TB, n int) []byte {
	tb.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return b
}

func mustRandomKeyID(tb testing.TB) keyring.KeyID {
	tb.Helper()
	id, err := keyring.NewKeyID()
	if err != nil {
		tb.Fatal(err)
	}
	return id
}

// newPayloadKey returns a key with a fresh id and a random 64-byte master key.
func newPayloadKey(tb testing.TB, enc keyring.EncryptionAlgorithm, val keyring.ValidationAlgorithm) keyring.Key {
	tb.Helper()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return keyring.Key{
		ID:         mustRandomKeyID(tb),
		Created:    now,
		Activation: now,
		Expiration: now.AddDate(0, 0, 90),
		Descriptor: &keyring.Descriptor{Encryption: enc, Validation: val, MasterKey: keyring.NewSecret(mustRandomBytes(tb, 64))},
	}
}

func mustPayloadRing(tb testing.TB, keys []keyring.Key, revocations ...keyring.Revocation) *keyring.Ring {
	tb.Helper()
	r, err := keyring.NewRing(keys, revocations, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

func mustProtectWithKey(tb testing.TB, k keyring.Key, plaintext []byte, purposes []string) []byte {
	tb.Helper()
	p, err := keyring.ProtectWithKey(k, plaintext, purposes)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// wantPayloadLen is the payload size ASP.NET Core produces for n plaintext bytes.
func wantPayloadLen(c algorithmCase, n int) int {
	if c.enc.IsGCM() {
		return 20 + 16 + 12 + n + 16
	}
	return 20 + 16 + 16 + (n/16+1)*16 + c.val.DigestSize()
}

func TestRoundTripEveryAlgorithm(t *testing.T) {
	purposes := keyring.Purposes("/app/", "Microsoft.AspNetCore.Authentication.Cookies.CookieAuthenticationMiddleware", "Cookies", "v2")
	for _, c := range allAlgorithms() {
		t.Run(c.String(), func(t *testing.T) {
			k := newPayloadKey(t, c.enc, c.val)
			other := newPayloadKey(t, keyring.AES256CBC, keyring.HMACSHA256)
			r := mustPayloadRing(t, []keyring.Key{other, k})
			for _, n := range []int{0, 1, 15, 16, 17, 31, 32, 33, 1500} {
				plaintext := mustRandomBytes(t, n)
				payload := mustProtectWithKey(t, k, plaintext, purposes)
				if len(payload) != wantPayloadLen(c, n) {
					t.Errorf("len(payload) = %d for %d bytes, want %d", len(payload), n, wantPayloadLen(c, n))
				}
				if s := keyring.Base64URLEncode(payload); !strings.HasPrefix(s, "CfDJ8") {
					t.Errorf("base64url payload starts with %q, want CfDJ8", s[:5])
				}
				id, err := keyring.PayloadKeyID(payload)
				if err != nil || id != k.ID {
					t.Errorf("PayloadKeyID = %s, %v; want %s", id, err, k.ID)
				}
				got, used, err := r.Unprotect(payload, purposes)
				if err != nil {
					t.Fatalf("Unprotect(%d bytes): %v", n, err)
				}
				if !bytes.Equal(got, plaintext) {
					t.Errorf("Unprotect(%d bytes) = %x, want %x", n, got, plaintext)
				}
				if used.ID != k.ID {
					t.Errorf("Unprotect used key %s, want %s", used.ID, k.ID)
				}
				again := mustProtectWithKey(t, k, plaintext, purposes)
				if bytes.Equal(again, payload) {
					t.Errorf("two protections of the same plaintext are identical; key modifier and IV must be random")
				}
			}
		})
	}
}

func TestDescriptorEncryptDecrypt(t *testing.T) {
	aad := []byte("additional data")
	for _, c := range allAlgorithms() {
		t.Run(c.String(), func(t *testing.T) {
			d := newPayloadKey(t, c.enc, c.val).Descriptor
			plaintext := []byte("hello, world")
			ct, err := d.Encrypt(plaintext, aad)
			if err != nil {
				t.Fatal(err)
			}
			if len(ct) != wantPayloadLen(c, len(plaintext))-20 {
				t.Errorf("len = %d, want %d", len(ct), wantPayloadLen(c, len(plaintext))-20)
			}
			got, err := d.Decrypt(ct, aad)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, plaintext) {
				t.Errorf("Decrypt = %q, want %q", got, plaintext)
			}
			if _, err := d.Decrypt(ct, []byte("other data")); err != keyring.ErrDecryptionFailed {
				t.Errorf("Decrypt with other AAD: err = %v, want exactly ErrDecryptionFailed", err)
			}
			wrongKey := *d
			wrongKey.MasterKey = keyring.NewSecret(mustRandomBytes(t, 64))
			if _, err := wrongKey.Decrypt(ct, aad); err != keyring.ErrDecryptionFailed {
				t.Errorf("Decrypt with other master key: err = %v, want exactly ErrDecryptionFailed", err)
			}
			for n := range ct {
				if _, err := d.Decrypt(ct[:n], aad); err != keyring.ErrDecryptionFailed {
					t.Fatalf("Decrypt of %d-byte prefix: err = %v, want exactly ErrDecryptionFailed", n, err)
				}
			}
		})
	}
}

func TestDecryptShortMasterKeys(t *testing.T) {
	// ASP.NET Core accepts master keys of any length (its tests use 10 bytes).
	for _, n := range []int{0, 1, 10, 64, 200} {
		d := &keyring.Descriptor{Encryption: keyring.AES256CBC, Validation: keyring.HMACSHA256, MasterKey: keyring.NewSecret(mustRandomBytes(t, n))}
		ct, err := d.Encrypt([]byte("x"), nil)
		if err != nil {
			t.Fatalf("%d-byte master key: %v", n, err)
		}
		if got, err := d.Decrypt(ct, nil); err != nil || string(got) != "x" {
			t.Errorf("%d-byte master key: Decrypt = %q, %v", n, got, err)
		}
	}
}

func TestUnprotectTamper(t *testing.T) {
	purposes := []string{"purpose"}
	for _, c := range []algorithmCase{{keyring.AES256CBC, keyring.HMACSHA256}, {keyring.AES128CBC, keyring.HMACSHA512}, {keyring.AES256GCM, keyring.ValidationUnknown}} {
		t.Run(c.String(), func(t *testing.T) {
			k := newPayloadKey(t, c.enc, c.val)
			sibling := newPayloadKey(t, c.enc, c.val)
			r := mustPayloadRing(t, []keyring.Key{k, sibling})
			payload := mustProtectWithKey(t, k, []byte("a plaintext of forty bytes, more or les"), purposes)
			ivLen, tagLen := 16, c.val.DigestSize()
			if c.enc.IsGCM() {
				ivLen, tagLen = 12, 16
			}
			bodyStart := 20 + 16 + ivLen
			regions := []struct {
				name       string
				start, end int
				want       error
			}{
				{"magic", 0, 4, keyring.ErrMalformedPayload},
				{"key id", 4, 20, keyring.ErrKeyNotFound},
				{"key modifier", 20, 36, keyring.ErrDecryptionFailed},
				{"iv", 36, 36 + ivLen, keyring.ErrDecryptionFailed},
				{"ciphertext", bodyStart, len(payload) - tagLen, keyring.ErrDecryptionFailed},
				{"mac", len(payload) - tagLen, len(payload), keyring.ErrDecryptionFailed},
			}
			for _, reg := range regions {
				for i := reg.start; i < reg.end; i++ {
					for _, bit := range []byte{0x01, 0x80} {
						tampered := bytes.Clone(payload)
						tampered[i] ^= bit
						want := reg.want
						if reg.name == "magic" && i == 3 && bit == 0x01 {
							want = keyring.ErrNewerPayloadVersion // the low nibble is the version
						}
						_, _, err := r.Unprotect(tampered, purposes)
						if !errors.Is(err, want) {
							t.Fatalf("%s byte %d ^ %#x: err = %v, want %v", reg.name, i, bit, err, want)
						}
						if want == keyring.ErrDecryptionFailed && err != keyring.ErrDecryptionFailed {
							t.Fatalf("%s byte %d: err = %#v, want exactly ErrDecryptionFailed (opaque)", reg.name, i, err)
						}
					}
				}
			}

			t.Run("key id of another key in the ring", func(t *testing.T) {
				swapped := bytes.Clone(payload)
				sid := sibling.ID.DotNetBytes()
				copy(swapped[4:20], sid[:])
				_, used, err := r.Unprotect(swapped, purposes)
				if err != keyring.ErrDecryptionFailed {
					t.Errorf("err = %v, want exactly ErrDecryptionFailed", err)
				}
				if used.ID != sibling.ID {
					t.Errorf("returned key %s, want %s", used.ID, sibling.ID)
				}
			})
			t.Run("truncated and extended", func(t *testing.T) {
				for _, p := range [][]byte{payload[:len(payload)-1], append(bytes.Clone(payload), 0), payload[:20]} {
					if _, _, err := r.Unprotect(p, purposes); err != keyring.ErrDecryptionFailed {
						t.Errorf("%d bytes: err = %v, want exactly ErrDecryptionFailed", len(p), err)
					}
				}
			})
			t.Run("input not modified", func(t *testing.T) {
				before := bytes.Clone(payload)
				if _, _, err := r.Unprotect(payload, purposes); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(before, payload) {
					t.Error("Unprotect modified its input")
				}
			})
		})
	}
}

func TestUnprotectWrongPurposes(t *testing.T) {
	k := newPayloadKey(t, keyring.AES256CBC, keyring.HMACSHA256)
	r := mustPayloadRing(t, []keyring.Key{k})
	protected := keyring.Purposes("MyApp", "a", "b")
	payload := mustProtectWithKey(t, k, []byte("secret"), protected)
	if got, _, err := r.Unprotect(payload, []string{"MyApp", "a", "b"}); err != nil || string(got) != "secret" {
		t.Fatalf("Unprotect with the right purposes = %q, %v", got, err)
	}
	tests := []struct {
		name     string
		purposes []string
	}{
		{"no app name", keyring.Purposes("", "a", "b")},
		{"other app name", keyring.Purposes("OtherApp", "a", "b")},
		{"app name case", keyring.Purposes("myapp", "a", "b")},
		{"app name trailing slash", keyring.Purposes("MyApp/", "a", "b")},
		{"missing purpose", keyring.Purposes("MyApp", "a")},
		{"extra purpose", keyring.Purposes("MyApp", "a", "b", "c")},
		{"reordered", keyring.Purposes("MyApp", "b", "a")},
		{"joined", keyring.Purposes("MyApp", "ab")},
		{"nil", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, used, err := r.Unprotect(payload, tc.purposes)
			if err != keyring.ErrDecryptionFailed {
				t.Errorf("err = %v, want exactly ErrDecryptionFailed", err)
			}
			if used.ID != k.ID {
				t.Errorf("returned key %s, want %s", used.ID, k.ID)
			}
		})
	}
}

func TestUnprotectKeyStatus(t *testing.T) {
	purposes := []string{"p"}
	k := newPayloadKey(t, keyring.AES256GCM, keyring.ValidationUnknown)
	payload := mustProtectWithKey(t, k, []byte("data"), purposes)

	t.Run("revoked by id", func(t *testing.T) {
		r := mustPayloadRing(t, []keyring.Key{k}, keyring.Revocation{Date: k.Created, KeyID: k.ID})
		got, used, err := r.Unprotect(payload, purposes)
		if !errors.Is(err, keyring.ErrKeyRevoked) {
			t.Fatalf("err = %v, want ErrKeyRevoked", err)
		}
		if got != nil || used.ID != k.ID {
			t.Errorf("got %q, key %s; want nil plaintext and key %s", got, used.ID, k.ID)
		}
		if !strings.Contains(err.Error(), k.ID.String()) {
			t.Errorf("error %q does not name the key", err)
		}
	})
	t.Run("revoked by revoke-all after creation", func(t *testing.T) {
		r := mustPayloadRing(t, []keyring.Key{k}, keyring.Revocation{Date: k.Created.Add(time.Second), All: true})
		if _, _, err := r.Unprotect(payload, purposes); !errors.Is(err, keyring.ErrKeyRevoked) {
			t.Fatalf("err = %v, want ErrKeyRevoked", err)
		}
	})
	t.Run("revoke-all at creation does not revoke", func(t *testing.T) {
		r := mustPayloadRing(t, []keyring.Key{k}, keyring.Revocation{Date: k.Created, All: true})
		if got, _, err := r.Unprotect(payload, purposes); err != nil || string(got) != "data" {
			t.Fatalf("Unprotect = %q, %v", got, err)
		}
	})
	t.Run("revocation of another key", func(t *testing.T) {
		r := mustPayloadRing(t, []keyring.Key{k}, keyring.Revocation{KeyID: mustRandomKeyID(t)})
		if got, _, err := r.Unprotect(payload, purposes); err != nil || string(got) != "data" {
			t.Fatalf("Unprotect = %q, %v", got, err)
		}
	})
	t.Run("expired key still decrypts", func(t *testing.T) {
		expired := k
		expired.Activation = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
		expired.Expiration = expired.Activation.AddDate(0, 0, 1)
		r := mustPayloadRing(t, []keyring.Key{expired})
		if got, _, err := r.Unprotect(payload, purposes); err != nil || string(got) != "data" {
			t.Fatalf("Unprotect = %q, %v", got, err)
		}
	})
	t.Run("unknown key", func(t *testing.T) {
		r := mustPayloadRing(t, []keyring.Key{newPayloadKey(t, keyring.AES256CBC, keyring.HMACSHA256)})
		_, _, err := r.Unprotect(payload, purposes)
		var nf *keyring.KeyNotFoundError
		if !errors.As(err, &nf) {
			t.Fatalf("err = %v, want *KeyNotFoundError", err)
		}
		if nf.ID != k.ID {
			t.Errorf("KeyNotFoundError.ID = %s, want %s", nf.ID, k.ID)
		}
		if !errors.Is(err, keyring.ErrKeyNotFound) {
			t.Errorf("err does not wrap ErrKeyNotFound")
		}
	})
	t.Run("empty ring", func(t *testing.T) {
		var nf *keyring.KeyNotFoundError
		if _, _, err := mustPayloadRing(t, nil).Unprotect(payload, purposes); !errors.As(err, &nf) {
			t.Fatalf("err = %v, want *KeyNotFoundError", err)
		}
	})
	t.Run("unreadable descriptor", func(t *testing.T) {
		errProtected := fmt.Errorf("key is protected with DPAPI: %w", keyring.ErrUnsupportedProtection)
		broken := k
		broken.Descriptor, broken.DescriptorErr = nil, errProtected
		r := mustPayloadRing(t, []keyring.Key{broken})
		_, used, err := r.Unprotect(payload, purposes)
		if !errors.Is(err, keyring.ErrUnsupportedProtection) {
			t.Fatalf("err = %v, want it to wrap the descriptor error", err)
		}
		if used.ID != k.ID {
			t.Errorf("returned key %s, want %s", used.ID, k.ID)
		}
		if _, err := keyring.ProtectWithKey(broken, []byte("x"), purposes); !errors.Is(err, keyring.ErrUnsupportedProtection) {
			t.Errorf("ProtectWithKey: err = %v, want it to wrap the descriptor error", err)
		}
		broken.DescriptorErr = nil
		if _, err := keyring.ProtectWithKey(broken, []byte("x"), purposes); err == nil {
			t.Error("ProtectWithKey with a nil descriptor succeeded")
		}
	})
	t.Run("unsupported algorithm", func(t *testing.T) {
		odd := k
		odd.Descriptor = &keyring.Descriptor{Encryption: keyring.EncryptionAlgorithm(42), MasterKey: k.Descriptor.MasterKey}
		r := mustPayloadRing(t, []keyring.Key{odd})
		if _, _, err := r.Unprotect(payload, purposes); !errors.Is(err, keyring.ErrUnsupportedAlgorithm) {
			t.Fatalf("err = %v, want ErrUnsupportedAlgorithm", err)
		}
		if _, err := keyring.ProtectWithKey(odd, []byte("x"), purposes); !errors.Is(err, keyring.ErrUnsupportedAlgorithm) {
			t.Errorf("ProtectWithKey: err = %v, want ErrUnsupportedAlgorithm", err)
		}
	})
}

func TestUnprotectMalformed(t *testing.T) {
	r := mustPayloadRing(t, []keyring.Key{newPayloadKey(t, keyring.AES256CBC, keyring.HMACSHA256)})
	header := []byte{0x09, 0xF0, 0xC9, 0xF0}
	tests := []struct {
		name    string
		payload []byte
		want    error
	}{
		{"nil", nil, keyring.ErrMalformedPayload},
		{"magic only", header, keyring.ErrMalformedPayload},
		{"19 bytes", append(bytes.Clone(header), make([]byte, 15)...), keyring.ErrMalformedPayload},
		{"text", []byte("CfDJ8AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), keyring.ErrMalformedPayload},
		{"zeros", make([]byte, 100), keyring.ErrMalformedPayload},
		{"byte-swapped magic", append([]byte{0xF0, 0xC9, 0xF0, 0x09}, make([]byte, 60)...), keyring.ErrMalformedPayload},
		{"version 1", append([]byte{0x09, 0xF0, 0xC9, 0xF1}, make([]byte, 60)...), keyring.ErrNewerPayloadVersion},
		{"version 15", append([]byte{0x09, 0xF0, 0xC9, 0xFF}, make([]byte, 60)...), keyring.ErrNewerPayloadVersion},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := keyring.PayloadKeyID(tc.payload); !errors.Is(err, tc.want) {
				t.Errorf("PayloadKeyID: err = %v, want %v", err, tc.want)
			}
			got, k, err := r.Unprotect(tc.payload, nil)
			if !errors.Is(err, tc.want) {
				t.Errorf("Unprotect: err = %v, want %v", err, tc.want)
			}
			if got != nil || !k.ID.IsZero() {
				t.Errorf("Unprotect returned plaintext %q and key %s with an error", got, k.ID)
			}
		})
	}
}

func TestPayloadKeyID(t *testing.T) {
	// Example from the format notes: ba73c9ce-d322-4e45-af90-341307e11c38 in .NET byte order.
	payload := []byte{0x09, 0xF0, 0xC9, 0xF0, 0xCE, 0xC9, 0x73, 0xBA, 0x22, 0xD3, 0x45, 0x4E, 0xAF, 0x90, 0x34, 0x13, 0x07, 0xE1, 0x1C, 0x38}
	id, err := keyring.PayloadKeyID(payload)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := id.String(), "ba73c9ce-d322-4e45-af90-341307e11c38"; got != want {
		t.Errorf("PayloadKeyID = %s, want %s", got, want)
	}
}

func TestAADErrorsAndPurposes(t *testing.T) {
	id := mustRandomKeyID(t)
	for _, bad := range []string{"\xff", "ok\xc3", "\xed\xa0\x80" /* UTF-8 of a lone surrogate */} {
		if _, err := keyring.AAD(id, []string{"fine", bad}); !errors.Is(err, keyring.ErrInvalidPurpose) {
			t.Errorf("AAD(%q): err = %v, want ErrInvalidPurpose", bad, err)
		}
	}
	k := newPayloadKey(t, keyring.AES256CBC, keyring.HMACSHA256)
	if _, err := keyring.ProtectWithKey(k, nil, []string{"\xff"}); !errors.Is(err, keyring.ErrInvalidPurpose) {
		t.Errorf("ProtectWithKey: err = %v, want ErrInvalidPurpose", err)
	}
	if _, _, err := mustPayloadRing(t, []keyring.Key{k}).Unprotect(mustProtectWithKey(t, k, nil, nil), []string{"\xff"}); !errors.Is(err, keyring.ErrInvalidPurpose) {
		t.Errorf("Unprotect: err = %v, want ErrInvalidPurpose", err)
	}

	tests := []struct {
		app      string
		purposes []string
		want     []string
	}{
		{"", nil, []string{}},
		{"", []string{"a", "b"}, []string{"a", "b"}},
		{"app", nil, []string{"app"}},
		{"/app/", []string{"a", "b"}, []string{"/app/", "a", "b"}},
		{"app", []string{""}, []string{"app", ""}},
	}
	for _, tc := range tests {
		if diff := cmp.Diff(tc.want, keyring.Purposes(tc.app, tc.purposes...)); diff != "" {
			t.Errorf("Purposes(%q, %q) mismatch (-want +got):\n%s", tc.app, tc.purposes, diff)
		}
	}
	in := []string{"a"}
	out := keyring.Purposes("", in...)
	out[0] = "changed"
	if in[0] != "a" {
		t.Error("Purposes aliases its input")
	}

	// An empty purpose is encoded as a zero length and differs from no purpose at all.
	withEmpty, err := keyring.AAD(id, []string{""})
	if err != nil {
		t.Fatal(err)
	}
	without, err := keyring.AAD(id, nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(append(append(without[:20:20], 0, 0, 0, 1), 0), withEmpty); diff != "" {
		t.Errorf("AAD with one empty purpose (-want +got):\n%s", diff)
	}
}

func TestContextHeader(t *testing.T) {
	for _, c := range allAlgorithms() {
		t.Run(c.String(), func(t *testing.T) {
			h, err := keyring.ContextHeader(c.enc, c.val)
			if err != nil {
				t.Fatal(err)
			}
			want := 2 + 16 + 16 + c.val.DigestSize()
			if c.enc.IsGCM() {
				want = 2 + 16 + 16
			}
			if len(h) != want {
				t.Errorf("len = %d, want %d", len(h), want)
			}
			h[len(h)-1] ^= 0xFF
			again, err := keyring.ContextHeader(c.enc, c.val)
			if err != nil {
				t.Fatal(err)
			}
			if again[len(again)-1] == h[len(h)-1] {
				t.Error("ContextHeader returned its cached slice: modifying it changed the cache")
			}
		})
	}
	// GCM ignores the validation algorithm.
	a, _ := keyring.ContextHeader(keyring.AES256GCM, keyring.ValidationUnknown)
	b, _ := keyring.ContextHeader(keyring.AES256GCM, keyring.HMACSHA512)
	if !bytes.Equal(a, b) {
		t.Error("GCM context header depends on the validation algorithm")
	}
	for _, bad := range []algorithmCase{
		{keyring.EncryptionUnknown, keyring.HMACSHA256},
		{keyring.EncryptionAlgorithm(-1), keyring.HMACSHA256},
		{keyring.EncryptionAlgorithm(99), keyring.HMACSHA256},
		{keyring.AES256CBC, keyring.ValidationUnknown},
		{keyring.AES256CBC, keyring.ValidationAlgorithm(99)},
	} {
		if _, err := keyring.ContextHeader(bad.enc, bad.val); !errors.Is(err, keyring.ErrUnsupportedAlgorithm) {
			t.Errorf("ContextHeader(%d, %d): err = %v, want ErrUnsupportedAlgorithm", bad.enc, bad.val, err)
		}
	}
	var nilDescriptor *keyring.Descriptor
	if _, err := nilDescriptor.Encrypt(nil, nil); err == nil {
		t.Error("Encrypt on a nil descriptor succeeded")
	}
	if _, err := nilDescriptor.Decrypt(make([]byte, 100), nil); err == nil {
		t.Error("Decrypt on a nil descriptor succeeded")
	}
}

func TestBase64URL(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []byte // nil means an error is expected
	}{
		{"empty", "", []byte{}},
		{"url alphabet", "-_8AAf4", []byte{0xFB, 0xFF, 0x00, 0x01, 0xFE}},
		{"standard alphabet", "+/8AAf4", []byte{0xFB, 0xFF, 0x00, 0x01, 0xFE}},
		{"padded url", "-_8AAf4=", []byte{0xFB, 0xFF, 0x00, 0x01, 0xFE}},
		{"padded standard", "+/8AAf4=", []byte{0xFB, 0xFF, 0x00, 0x01, 0xFE}},
		{"two pad", "AQ==", []byte{0x01}},
		{"no pad needed", "AQID", []byte{1, 2, 3}},
		{"one byte unpadded", "AQ", []byte{0x01}},
		{"mixed alphabets", "-/8AAf4", nil},
		{"mixed alphabets 2", "+_8AAf4", nil},
		{"length 1 mod 4", "AQIDB", nil},
		{"single char", "A", nil},
		{"wrong padding count", "AQ=", nil},
		{"too much padding", "AQ===", nil},
		{"pad only", "==", nil},
		{"padding inside", "AQ==AQ", nil},
		{"bad char", "AQ*D", nil},
		{"space", "AQ ID", nil},
		{"unicode", "AQé", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := keyring.Base64URLDecode(tc.in)
			if tc.want == nil {
				if err == nil {
					t.Fatalf("Base64URLDecode(%q) = %x, want an error", tc.in, got)
				}
				if !errors.Is(err, keyring.ErrMalformedPayload) {
					t.Errorf("err = %v, want it to wrap ErrMalformedPayload", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Base64URLDecode(%q): %v", tc.in, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Base64URLDecode(%q) mismatch (-want +got):\n%s", tc.in, diff)
			}
		})
	}
	encodeTests := []struct {
		in   []byte
		want string
	}{
		{nil, ""},
		{[]byte{0}, "AA"},
		{[]byte{0, 0}, "AAA"},
		{[]byte{0, 0, 0}, "AAAA"},
		{[]byte{0xFB, 0xFF, 0x00, 0x01, 0xFE}, "-_8AAf4"},
		{[]byte{0x09, 0xF0, 0xC9, 0xF0}, "CfDJ8A"},
	}
	for _, tc := range encodeTests {
		if got := keyring.Base64URLEncode(tc.in); got != tc.want {
			t.Errorf("Base64URLEncode(%x) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestDecryptCBCIndependent builds CBC payloads by hand from the format description (KDF with the
// context header, AES-CBC, HMAC over IV || ciphertext) and checks that Decrypt accepts the one
// with PKCS#7 padding and refuses, with the opaque error, those whose MAC is right but whose
// padding is not.
func TestDecryptCBCIndependent(t *testing.T) {
	kdk := mustRandomBytes(t, 64)
	d := &keyring.Descriptor{Encryption: keyring.AES256CBC, Validation: keyring.HMACSHA256, MasterKey: keyring.NewSecret(kdk)}
	header, err := keyring.ContextHeader(d.Encryption, d.Validation)
	if err != nil {
		t.Fatal(err)
	}
	aad := []byte("label")
	keyModifier, iv := mustRandomBytes(t, 16), mustRandomBytes(t, 16)
	keys := keyring.DeriveKey(kdk, aad, header, keyModifier, 32+32)
	build := func(padded []byte) []byte {
		block, err := aes.NewCipher(keys[:32])
		if err != nil {
			t.Fatal(err)
		}
		ct := make([]byte, len(padded))
		cipher.NewCBCEncrypter(block, iv).CryptBlocks(ct, padded)
		mac := hmac.New(sha256.New, keys[32:])
		mac.Write(iv)
		mac.Write(ct)
		return append(append(append(bytes.Clone(keyModifier), iv...), ct...), mac.Sum(nil)...)
	}
	good := append([]byte("0123456789ab"), 4, 4, 4, 4)
	got, err := d.Decrypt(build(good), aad)
	if err != nil || string(got) != "0123456789ab" {
		t.Fatalf("Decrypt of a hand-built payload = %q, %v", got, err)
	}
	twoBlocks := append([]byte("0123456789abcdef"), bytes.Repeat([]byte{16}, 16)...)
	if got, err := d.Decrypt(build(twoBlocks), aad); err != nil || string(got) != "0123456789abcdef" {
		t.Fatalf("Decrypt of a full pad block = %q, %v", got, err)
	}
	for _, bad := range [][]byte{
		append([]byte("0123456789abcde"), 0),
		append([]byte("0123456789abcde"), 17),
		append([]byte("0123456789ab"), 3, 4, 4, 4),
		append([]byte("0123456789ab"), 4, 4, 5, 4),
		append([]byte("0123456789abcdef"), bytes.Repeat([]byte{16}, 15)...), // not a whole block
	} {
		if len(bad)%16 != 0 {
			// The MAC is right but the ciphertext is not whole blocks.
			p := append(append(bytes.Clone(keyModifier), iv...), bad...)
			mac := hmac.New(sha256.New, keys[32:])
			mac.Write(p[16:])
			if _, err := d.Decrypt(mac.Sum(p), aad); err != keyring.ErrDecryptionFailed {
				t.Errorf("partial block: err = %v, want exactly ErrDecryptionFailed", err)
			}
			continue
		}
		if _, err := d.Decrypt(build(bad), aad); err != keyring.ErrDecryptionFailed {
			t.Errorf("padding % x: err = %v, want exactly ErrDecryptionFailed", bad[len(bad)-4:], err)
		}
	}
}

// TestRingConcurrentUseSharesKDFPool protects and unprotects from many goroutines with one ring,
// whose per-key pool of keyed HMACs they share, under every algorithm; with -race it also checks
// that the pool hands each derivation its own instance. Every payload must come back to its own
// plaintext, and the ring must agree with a bare descriptor, which derives from scratch.
func TestRingConcurrentUseSharesKDFPool(t *testing.T) {
	for _, alg := range []struct {
		enc keyring.EncryptionAlgorithm
		val keyring.ValidationAlgorithm
	}{
		{keyring.AES256CBC, keyring.HMACSHA256}, {keyring.AES128CBC, keyring.HMACSHA512},
		{keyring.AES256GCM, keyring.ValidationUnknown},
	} {
		ring := mustRingWith(t, alg.enc, alg.val)
		k := ring.Keys()[0]
		purposes := []string{"app", "purpose"}
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for g := range 8 {
			wg.Go(func() {
				for i := range 50 {
					plaintext := fmt.Appendf(nil, "goroutine %d message %d", g, i)
					p, err := ring.Protect(k.Created, plaintext, purposes)
					if err != nil {
						errs <- err
						return
					}
					got, _, err := ring.Unprotect(p, purposes)
					if err != nil || !bytes.Equal(got, plaintext) {
						errs <- fmt.Errorf("%s: Unprotect = %q, %v; want %q", alg.enc, got, err, plaintext)
						return
					}
					aad, err := keyring.AAD(k.ID, purposes)
					if err != nil {
						errs <- err
						return
					}
					if got, err := k.Descriptor.Decrypt(p[20:], aad); err != nil || !bytes.Equal(got, plaintext) {
						errs <- fmt.Errorf("%s: Descriptor.Decrypt = %q, %v; want %q", alg.enc, got, err, plaintext)
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	}
}
