package vaultstore_test

import (
	"context"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/dpkeyring/dpkeyring/store/storetest"
	"github.com/dpkeyring/dpkeyring/store/vaultstore"
)

var _ storetest.Store = (*vaultstore.Store)(nil)

func TestMain(m *testing.M) {
	storetest.MaybeRunChild(openSpec)
	os.Exit(m.Run())
}

// testEnv maps the store's environment variables to the test server's, so that specs carry no
// secret: child processes of the race find the token the same way.
func testEnv(k string) string {
	if k == vaultstore.EnvToken {
		return os.Getenv("KEYRING_TEST_VAULT_TOKEN")
	}
	return ""
}

// openSpec opens the store a vault:// spec names.
func openSpec(ctx context.Context, spec string) (storetest.Store, error) {
	u, err := url.Parse(spec)
	if err != nil {
		return nil, err
	}
	cfg, err := vaultstore.ParseURL(u, testEnv)
	if err != nil {
		return nil, err
	}
	return vaultstore.Open(ctx, cfg)
}

// newSpec returns a spec for a fresh random prefix on the test server.
func newSpec(t *testing.T, transit string) string {
	addr, _ := server(t)
	u, err := url.Parse(addr)
	if err != nil {
		t.Fatal(err)
	}
	spec := "vault://" + u.Host + "/secret/dpkeyring-test/" + randomHex(t, 8)
	if u.Scheme == "https" {
		spec = "vaults://" + u.Host + "/secret/dpkeyring-test/" + randomHex(t, 8)
	}
	if transit != "" {
		spec += "?transit=" + url.QueryEscape(transit)
	}
	return spec
}

// writeForeign writes an element secret the way another program would: just the XML, no
// sequence number, no name field.
func writeForeign(t *testing.T, spec, ring, name string, xml []byte) {
	t.Helper()
	u, err := url.Parse(spec)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := vaultstore.ParseURL(u, testEnv)
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Mount + "/data/" + cfg.Prefix + "/rings/" + ring + "/elements/" + name
	if _, err := rootClient(t).Logical().WriteWithContext(t.Context(), p, map[string]any{
		"options": map[string]any{"cas": 0},
		"data":    map[string]any{"xml": string(xml)},
	}); err != nil {
		t.Fatalf("foreign write %s: %v", p, err)
	}
}

func TestConformance(t *testing.T) {
	server(t)
	t.Run("plain", func(t *testing.T) {
		storetest.Run(t, storetest.Harness{
			NewSpec:      func(t *testing.T) string { return newSpec(t, "") },
			Open:         openSpec,
			LeaseTTL:     2 * time.Second,
			WriteForeign: writeForeign,
		})
	})
	t.Run("transit", func(t *testing.T) {
		key := transitKey(t)
		storetest.Run(t, storetest.Harness{
			NewSpec:      func(t *testing.T) string { return newSpec(t, key) },
			Open:         openSpec,
			LeaseTTL:     2 * time.Second,
			WriteForeign: writeForeign,
		})
	})
}
