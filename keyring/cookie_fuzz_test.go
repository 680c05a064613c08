package keyring_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dpkeyring/dpkeyring/keyring"
)

// canonical is what MarshalBinary keeps of a parsed ticket: an empty bootstrap context is not
// written, so it reads back as none.
func canonical(t *keyring.Ticket) *keyring.Ticket {
	c := *t
	c.Identities = make([]keyring.Identity, len(t.Identities))
	for i := range t.Identities {
		c.Identities[i] = canonicalIdentity(t.Identities[i])
	}
	return &c
}

func canonicalIdentity(id keyring.Identity) keyring.Identity {
	if id.BootstrapContext != nil && *id.BootstrapContext == "" {
		id.BootstrapContext = nil
	}
	if id.Actor != nil {
		a := canonicalIdentity(*id.Actor)
		id.Actor = &a
	}
	return id
}

// FuzzParseTicket checks that parsing never panics and that whatever parses survives
// MarshalBinary and a second parse unchanged (and re-marshals to the same bytes).
func FuzzParseTicket(f *testing.F) {
	for _, name := range []string{"minimal.hex", "nondefault.hex", "umbraco.hex"} {
		f.Add(mustReadHex(f, name))
	}
	f.Add([]byte{})
	f.Add([]byte{5, 0, 0, 0, 1, 'S', 0, 0, 0, 0, 2, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		t1, err := keyring.ParseTicket(b)
		if err != nil {
			return
		}
		m1, err := t1.MarshalBinary()
		if err != nil {
			t.Fatalf("MarshalBinary of a parsed ticket: %v", err)
		}
		t2, err := keyring.ParseTicket(m1)
		if err != nil {
			t.Fatalf("ParseTicket of MarshalBinary output: %v", err)
		}
		if diff := cmp.Diff(canonical(t1), t2, cmpTicket); diff != "" {
			t.Fatalf("round trip mismatch (-first +second):\n%s", diff)
		}
		m2, err := t2.MarshalBinary()
		if err != nil || !bytes.Equal(m1, m2) {
			t.Fatalf("second MarshalBinary differs: %v", err)
		}
	})
}

// FuzzParseCookieHeader checks that header parsing never panics and returns only names that
// are HTTP tokens.
func FuzzParseCookieHeader(f *testing.F) {
	f.Add("a=1; b=2")
	f.Add(`UMB_UCONTEXT=chunks-2; UMB_UCONTEXTC1="ab"; UMB_UCONTEXTC2=c%44, x`)
	f.Add(" ;;= =; \t\"")
	f.Fuzz(func(t *testing.T, header string) {
		for _, p := range keyring.ParseCookieHeader(header) {
			if p.Name == "" || strings.ContainsAny(p.Name, " \t;,=\"") {
				t.Fatalf("bad cookie name %q", p.Name)
			}
		}
	})
}

// FuzzReassembleCookie checks that reassembly never panics and that a successful result is made
// only of the cookie values present.
func FuzzReassembleCookie(f *testing.F) {
	f.Add("c", "c=chunks-2; cC1=ab; cC2=cd")
	f.Add("c", "c=chunks-3; cC1=ab; cC3=cd")
	f.Add("c", "c=chunks-0")
	f.Add("UMB_UCONTEXT", "UMB_UCONTEXT=CfDJ8")
	f.Fuzz(func(t *testing.T, name, header string) {
		pairs := keyring.ParseCookieHeader(header)
		v, err := keyring.ReassembleCookie(name, keyring.LookupCookies(pairs))
		if err != nil {
			return
		}
		total := 0
		for _, p := range pairs {
			total += len(p.Value)
		}
		if len(v) > total {
			t.Fatalf("reassembled %d bytes from %d bytes of values", len(v), total)
		}
	})
}

// FuzzDecryptCookie checks that decrypting arbitrary cookie text never panics, that every
// failure is a *CookieError, and that the diagnosis never repeats the input.
func FuzzDecryptCookie(f *testing.F) {
	ring, _ := mustRing(f, 1, keyCreated)
	value, err := ring.EncryptCookie(umbracoIssued, umbracoTicket(umbracoIssued), "app", keyring.UmbracoScheme)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(value)
	f.Add(value[:len(value)/2])
	f.Add("CfDJ8" + strings.Repeat("A", 100))
	f.Add("%43fDJ8")
	opts := keyring.CookieOptions{Scheme: keyring.UmbracoScheme, AppNames: []string{"", "app"}}
	f.Fuzz(func(t *testing.T, v string) {
		res, err := ring.DecryptCookie(v, umbracoIssued, opts)
		if err == nil {
			if res.Ticket == nil {
				t.Fatal("nil ticket without error")
			}
			return
		}
		var ce *keyring.CookieError
		if !errors.As(err, &ce) {
			t.Fatalf("error %T is not a *CookieError", err)
		}
		if len(v) >= 8 && strings.Contains(ce.Error(), v) {
			t.Fatalf("error repeats the cookie value")
		}
	})
}
