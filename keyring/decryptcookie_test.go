package keyring_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dpkeyring/dpkeyring/keyring"
)

// TestDecryptCookieAlgorithms decrypts a cookie protected with each algorithm combination, with
// the right application name as the last of three candidates: the payload must be left intact by
// the candidates whose MAC fails (DecryptCookie decrypts CBC payloads in place), and the ticket,
// whose strings share the decrypted buffer, must not change when other cookies are decrypted.
func TestDecryptCookieAlgorithms(t *testing.T) {
	combos := []struct {
		enc keyring.EncryptionAlgorithm
		val keyring.ValidationAlgorithm
	}{
		{keyring.AES128CBC, keyring.HMACSHA1}, {keyring.AES192CBC, keyring.HMACSHA256},
		{keyring.AES256CBC, keyring.HMACSHA256}, {keyring.AES256CBC, keyring.HMACSHA384},
		{keyring.AES256CBC, keyring.HMACSHA512}, {keyring.AES128GCM, keyring.ValidationUnknown},
		{keyring.AES256GCM, keyring.ValidationUnknown},
	}
	want := mustRoundTrip(t, umbracoTicket(umbracoIssued))
	for _, c := range combos {
		t.Run(fmt.Sprintf("%s/%s", c.enc, c.val), func(t *testing.T) {
			ring := mustRingWith(t, c.enc, c.val)
			value, err := ring.EncryptCookie(umbracoIssued, umbracoTicket(umbracoIssued), "app", keyring.UmbracoScheme)
			if err != nil {
				t.Fatal(err)
			}
			opts := keyring.CookieOptions{Scheme: keyring.UmbracoScheme, AppNames: []string{"", "other", "app"}}
			res, err := ring.DecryptCookie(value, umbracoIssued, opts)
			if err != nil {
				t.Fatal(err)
			}
			if res.AppName != "app" {
				t.Errorf("AppName = %q, want %q", res.AppName, "app")
			}
			// Decrypt other cookies; the first ticket must not change.
			other := umbracoTicket(umbracoIssued.Add(time.Hour))
			other.Identities[0].Claims[0].Value = "someone else"
			otherValue, err := ring.EncryptCookie(umbracoIssued, other, "app", keyring.UmbracoScheme)
			if err != nil {
				t.Fatal(err)
			}
			for range 3 {
				if _, err := ring.DecryptCookie(otherValue, umbracoIssued, opts); err != nil {
					t.Fatal(err)
				}
			}
			if diff := cmp.Diff(want, res.Ticket); diff != "" {
				t.Errorf("ticket (-want +got):\n%s", diff)
			}
			// A tampered payload fails to authenticate with every candidate.
			b, err := keyring.Base64URLDecode(value)
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)-1] ^= 1
			if _, err := ring.DecryptCookie(keyring.Base64URLEncode(b), umbracoIssued, opts); !errors.Is(err, keyring.ErrDecryptionFailed) {
				t.Errorf("tampered cookie: error %v, want ErrDecryptionFailed", err)
			}
		})
	}
}

// mustRingWith returns a ring with one key of the given algorithms, created at keyCreated.
func mustRingWith(tb testing.TB, enc keyring.EncryptionAlgorithm, val keyring.ValidationAlgorithm) *keyring.Ring {
	tb.Helper()
	id, err := keyring.NewKeyID()
	if err != nil {
		tb.Fatal(err)
	}
	master := make([]byte, 64)
	for i := range master {
		master[i] = byte(3 * i)
	}
	k := keyring.Key{
		ID: id, Created: keyCreated, Activation: keyCreated, Expiration: keyCreated.Add(90 * 24 * time.Hour),
		Descriptor: &keyring.Descriptor{Encryption: enc, Validation: val, MasterKey: keyring.NewSecret(master)},
	}
	r, err := keyring.NewRing([]keyring.Key{k}, nil, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// mustRoundTrip returns t as DecryptCookie gives it back: serialized and parsed again.
func mustRoundTrip(tb testing.TB, t *keyring.Ticket) *keyring.Ticket {
	tb.Helper()
	b, err := t.MarshalBinary()
	if err != nil {
		tb.Fatal(err)
	}
	back, err := keyring.ParseTicket(b)
	if err != nil {
		tb.Fatal(err)
	}
	return back
}
