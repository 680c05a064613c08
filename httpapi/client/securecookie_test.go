package client_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/dpkeyring/dpkeyring/httpapi/client"
	"github.com/dpkeyring/dpkeyring/keyring"
	"github.com/gorilla/securecookie"
)

// TestSecureCookieCodecsRotation: a cookie encoded before a rotation still decodes after it, new
// cookies use the new key (the old key's codec cannot read them), and after a revocation the old
// cookies stop decoding.
func TestSecureCookieCodecsRotation(t *testing.T) {
	s := startServer(t, nil)
	c := mustClient(t, s.URL)
	const name, purpose = "session", "shop/session"
	before := mustFetch(t, c, "")
	oldCodecs, err := before.SecureCookieCodecs(purpose)
	if err != nil {
		t.Fatal(err)
	}
	if len(oldCodecs) != 1 {
		t.Fatalf("%d codecs for a ring of one key", len(oldCodecs))
	}
	oldCookie, err := securecookie.EncodeMulti(name, "alice", oldCodecs...)
	if err != nil {
		t.Fatal(err)
	}

	s.rotate(t, `{"immediate":true,"reason":"rotation test"}`)
	after := mustFetch(t, c, before.ETag)
	if after.Version == before.Version {
		t.Fatal("the rotation did not change the ring")
	}
	codecs, err := after.SecureCookieCodecs(purpose)
	if err != nil {
		t.Fatal(err)
	}
	if len(codecs) != 2 {
		t.Fatalf("%d codecs after the rotation, want 2", len(codecs))
	}
	var v string
	if err := securecookie.DecodeMulti(name, oldCookie, &v, codecs...); err != nil || v != "alice" {
		t.Errorf("old cookie after the rotation: %q %v", v, err)
	}
	newCookie, err := securecookie.EncodeMulti(name, "bob", codecs...)
	if err != nil {
		t.Fatal(err)
	}
	if err := securecookie.DecodeMulti(name, newCookie, &v, oldCodecs...); err == nil {
		t.Error("a new cookie decodes with the old key's codec: it was not encoded with the new key")
	}
	if err := securecookie.DecodeMulti(name, newCookie, &v, codecs[0]); err != nil || v != "bob" {
		t.Errorf("new cookie with the default key's codec: %q %v", v, err)
	}
	// Another purpose gives other keys.
	other, err := after.SecureCookieCodecs("other")
	if err != nil {
		t.Fatal(err)
	}
	if err := securecookie.DecodeMulti(name, newCookie, &v, other...); err == nil {
		t.Error("a cookie decodes with the codecs of another purpose")
	}

	// Emergency rotation revoking every previous key: old cookies stop decoding.
	s.rotate(t, `{"immediate":true,"revoke_previous":true,"reason":"leak"}`)
	revoked := mustFetch(t, c, after.ETag)
	codecs, err = revoked.SecureCookieCodecs(purpose)
	if err != nil {
		t.Fatal(err)
	}
	if len(codecs) != 1 {
		t.Errorf("%d codecs after revoking all previous keys, want 1", len(codecs))
	}
	for _, ck := range []string{oldCookie, newCookie} {
		if err := securecookie.DecodeMulti(name, ck, &v, codecs...); err == nil {
			t.Errorf("a cookie of a revoked key still decodes (%q)", v)
		}
	}
	fresh, err := securecookie.EncodeMulti(name, "carol", codecs...)
	if err != nil {
		t.Fatal(err)
	}
	if err := securecookie.DecodeMulti(name, fresh, &v, codecs...); err != nil || v != "carol" {
		t.Errorf("cookie after the revocation: %q %v", v, err)
	}
}

// TestSecureCookieCodecsExpiredKeysDecode checks the key selection on a ring built in memory: an
// expired key still decodes, a not-yet-active successor is a decoder, a key without a
// descriptor is left out, and the default key comes first.
func TestSecureCookieCodecsExpiredKeysDecode(t *testing.T) {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	expired := mustKey(t, now.Add(-120*day), now.Add(-120*day), now.Add(-30*day))
	current := mustKey(t, now.Add(-40*day), now.Add(-40*day), now.Add(50*day))
	next := mustKey(t, now.Add(-1*day), now.Add(45*day), now.Add(135*day))
	broken := mustKey(t, now.Add(-50*day), now.Add(-50*day), now.Add(40*day))
	broken.Descriptor, broken.DescriptorErr = nil, keyring.ErrUnsupportedProtection
	ring, err := keyring.NewRing([]keyring.Key{expired, current, next, broken}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	doc := &client.RingDoc{Ring: "default", Keys: ring}
	codecs, err := doc.SecureCookieCodecsAt(now, "p")
	if err != nil {
		t.Fatal(err)
	}
	if len(codecs) != 3 {
		t.Fatalf("%d codecs, want 3 (current, next, expired)", len(codecs))
	}
	for i, k := range []keyring.Key{current, next, expired} {
		hashKey, blockKey, err := client.DeriveSecureCookieKeys(k, "p")
		if err != nil {
			t.Fatal(err)
		}
		enc, err := securecookie.New(hashKey, blockKey).Encode("c", "v")
		if err != nil {
			t.Fatal(err)
		}
		var v string
		if err := codecs[i].Decode("c", enc, &v); err != nil || v != "v" {
			t.Errorf("codec %d is not key %s's: %v", i, k.ID, err)
		}
	}
	empty, _ := keyring.NewRing(nil, nil, nil)
	if _, err := (&client.RingDoc{Keys: empty}).SecureCookieCodecsAt(now, "p"); !errors.Is(err, keyring.ErrNoDefaultKey) {
		t.Errorf("empty ring: %v, want ErrNoDefaultKey", err)
	}
	if _, err := doc.SecureCookieCodecsAt(now, ""); !errors.Is(err, client.ErrInvalidOption) {
		t.Errorf("empty purpose: %v, want ErrInvalidOption", err)
	}
}

// TestDeriveSecureCookieKeys checks the documented derivation with an independent SP800-108
// counter-mode HMAC-SHA512 computation.
func TestDeriveSecureCookieKeys(t *testing.T) {
	k := mustKey(t, time.Now(), time.Now(), time.Now().Add(time.Hour))
	master := k.Descriptor.MasterKey.Bytes()
	const purpose = "shop/session"
	var want []byte
	for i := uint32(1); len(want) < 96; i++ {
		m := hmac.New(sha512.New, master)
		_ = binary.Write(m, binary.BigEndian, i)
		m.Write([]byte("dpkeyring/securecookie/v1"))
		m.Write([]byte{0})
		m.Write([]byte(purpose))
		_ = binary.Write(m, binary.BigEndian, uint32(96*8))
		want = m.Sum(want)
	}
	hashKey, blockKey, err := client.DeriveSecureCookieKeys(k, purpose)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(hashKey, want[:64]) || !bytes.Equal(blockKey, want[64:96]) {
		t.Error("derived keys differ from SP800-108(master key, label, purpose)")
	}
	if _, _, err := client.DeriveSecureCookieKeys(k, "\xff"); !errors.Is(err, client.ErrInvalidOption) {
		t.Errorf("invalid UTF-8 purpose: %v", err)
	}
}

func mustKey(tb testing.TB, created, activation, expiration time.Time) keyring.Key {
	tb.Helper()
	k, err := keyring.NewKey(created, activation, expiration)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}
