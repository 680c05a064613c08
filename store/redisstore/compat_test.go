package redisstore_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dpkeyring/dpkeyring/keyring"
	"github.com/dpkeyring/dpkeyring/store"
	"github.com/dpkeyring/dpkeyring/store/redisstore"
)

// TestWireCompatible proves that a ring written through the store is, element by element,
// what ASP.NET Core's RedisXmlRepository stores: one list entry per element, in append order,
// each the compact XML (XElement.ToString(SaveOptions.DisableFormatting)), under the list key
// .NET reads with LRANGE 0 -1. Elements given in file form (declaration, indentation) are
// stored compact too.
func TestWireCompatible(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			ctx := ctxT(t)
			cfg := m.cfg(t)
			s := mustOpen(t, cfg)
			raw := rawClient(t, cfg)
			var want []string
			for i := range 5 {
				name, xml := keyElement(t)
				in := xml
				if i%2 == 1 {
					in = indented(xml) // as a key file holds it
				}
				if _, err := s.Append(ctx, redisstore.DefaultRing, store.Element{Name: name, XML: []byte(in)}, 0); err != nil {
					t.Fatal(err)
				}
				want = append(want, xml)
			}
			// ASP.NET Core's default list key is the configured prefix for ring "default".
			got, err := raw.LRange(ctx, cfg.KeyPrefix, 0, -1).Result()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("raw list (-want +got):\n%s", diff)
			}
			for _, x := range got {
				c, err := keyring.CompactXML([]byte(x))
				if err != nil || string(c) != x {
					t.Errorf("stored element is not in compact form: %v\n%s", err, x)
				}
				if strings.HasPrefix(x, "<?xml") || strings.ContainsAny(x, "\n") {
					t.Errorf("stored element has a declaration or line breaks: %s", x)
				}
			}
			// Nothing of the store has an expiry.
			for _, k := range []string{cfg.KeyPrefix, "{" + cfg.KeyPrefix + "}:names", "{" + cfg.KeyPrefix + "}:version"} {
				if ttl, err := raw.PTTL(ctx, k).Result(); err != nil || ttl != -1 {
					t.Errorf("PTTL(%s) = %v, %v; want -1 (no expiry)", k, ttl, err)
				}
			}
		})
	}
}

// TestForeignElements fills the list with plain RPUSH, as a .NET node does, and checks that the
// store lists those elements under their names and appends idempotently around them.
func TestForeignElements(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			ctx := ctxT(t)
			cfg := m.cfg(t)
			s := mustOpen(t, cfg)
			raw := rawClient(t, cfg)
			list := cfg.ListKey("shop")

			n1, x1 := keyElement(t)
			n2, x2 := keyElement(t)
			revocation := `<revocation version="1"><revocationDate>2015-03-01T19:13:19.7573854-08:00</revocationDate>` +
				`<!-- All keys created before the revocation date are revoked. --><key id="*" /><reason>Here's some reason text.</reason></revocation>`
			junk := `<something-else />`
			for _, x := range []string{x1, x2, revocation, junk} {
				if err := raw.RPush(ctx, list, x).Err(); err != nil {
					t.Fatal(err)
				}
			}
			snap, err := s.List(ctx, "shop")
			if err != nil {
				t.Fatal(err)
			}
			want := []store.Element{
				{Name: n1, XML: []byte(x1)},
				{Name: n2, XML: []byte(x2)},
				{Name: "revocation-20150302T0313197573854Z", XML: []byte(revocation)},
				{Name: snap.Elements[3].Name, XML: []byte(junk)},
			}
			if diff := cmp.Diff(want, snap.Elements); diff != "" {
				t.Errorf("List of a .NET-written list (-want +got):\n%s", diff)
			}
			if !strings.HasPrefix(snap.Elements[3].Name, "unknown-") || len(snap.Elements[3].Name) != len("unknown-")+16 {
				t.Errorf("unnamed element got name %q, want unknown-<16 hex>", snap.Elements[3].Name)
			}
			v0 := snap.Version

			// Appending what .NET already pushed is a no-op; other bytes under its name fail.
			if v, err := s.Append(ctx, "shop", store.Element{Name: n2, XML: []byte(indented(x2))}, 0); err != nil || v != v0 {
				t.Errorf("Append(element .NET pushed) = %d, %v; want %d, nil", v, err, v0)
			}
			_, other := keyElement(t)
			if _, err := s.Append(ctx, "shop", store.Element{Name: n1, XML: []byte(other)}, 0); !errors.Is(err, store.ErrExists) {
				t.Errorf("Append(other XML under a .NET element's name) error = %v, want ErrExists", err)
			}
			n3, x3 := keyElement(t)
			v3, err := s.Append(ctx, "shop", store.Element{Name: n3, XML: []byte(x3)}, 0)
			if err != nil || v3 <= v0 {
				t.Fatalf("Append(new) = %d, %v; want a version above %d", v3, err, v0)
			}
			// .NET pushes another key behind the store's back: the version still grows.
			n4, x4 := keyElement(t)
			if err := raw.RPush(ctx, list, x4).Err(); err != nil {
				t.Fatal(err)
			}
			snap, err = s.List(ctx, "shop")
			if err != nil {
				t.Fatal(err)
			}
			if snap.Version <= v3 {
				t.Errorf("version after a foreign RPUSH = %d, want above %d", snap.Version, v3)
			}
			var names []string
			for _, e := range snap.Elements {
				names = append(names, e.Name)
			}
			wantNames := []string{n1, n2, "revocation-20150302T0313197573854Z", want[3].Name, n3, n4}
			if diff := cmp.Diff(wantNames, names); diff != "" {
				t.Errorf("names (-want +got):\n%s", diff)
			}
			if _, err := s.Append(ctx, "shop", store.Element{Name: n4, XML: []byte(x4)}, 0); err != nil {
				t.Errorf("Append(element .NET pushed last): %v", err)
			}
			if n, err := raw.LLen(ctx, list).Result(); err != nil || n != 6 {
				t.Errorf("LLEN = %d, %v; want 6 (no duplicates)", n, err)
			}
		})
	}
}

// TestKeySlots checks with CLUSTER KEYSLOT that each ring's companion keys live in the list's
// slot, for plain list keys and for list keys with a hash tag of their own.
func TestKeySlots(t *testing.T) {
	cfg := clusterConfig(t)
	ctx := ctxT(t)
	raw := rawClient(t, cfg)
	for _, list := range []string{"DataProtection-Keys", "DataProtection-Keys:shop", "{app}keys", "a{b}c{d}"} {
		cfg := cfg
		cfg.Keys = map[string]string{"r": list}
		want, err := raw.ClusterKeySlot(ctx, list).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range redisstore.CompanionKeys(cfg.ListKey("r")) {
			got, err := raw.ClusterKeySlot(ctx, k).Result()
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("slot(%q) = %d, slot(%q) = %d; want equal", k, got, list, want)
			}
		}
	}
}
