package vaultstore_test

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/vault/api"

	"github.com/dpkeyring/dpkeyring/keyring"
	"github.com/dpkeyring/dpkeyring/store"
	"github.com/dpkeyring/dpkeyring/store/vaultstore"
)

// server returns the address and root token of the test Vault (.ci/vault-server.sh), skipping
// the test when none is configured (failing it under CI=true).
func server(tb testing.TB) (addr, token string) {
	tb.Helper()
	addr, token = os.Getenv("KEYRING_TEST_VAULT_ADDR"), os.Getenv("KEYRING_TEST_VAULT_TOKEN")
	if addr == "" || token == "" {
		const why = "KEYRING_TEST_VAULT_ADDR and KEYRING_TEST_VAULT_TOKEN are not set (start a dev server with: eval \"$(.ci/vault-server.sh start DIR)\")"
		if os.Getenv("CI") == "true" {
			tb.Fatal(why)
		}
		tb.Skip(why)
	}
	return addr, token
}

// transitKey returns the test Transit key name, skipping (failing under CI) when unset.
func transitKey(tb testing.TB) string {
	tb.Helper()
	server(tb)
	k := os.Getenv("KEYRING_TEST_VAULT_TRANSIT_KEY")
	if k == "" {
		const why = "KEYRING_TEST_VAULT_TRANSIT_KEY is not set"
		if os.Getenv("CI") == "true" {
			tb.Fatal(why)
		}
		tb.Skip(why)
	}
	return k
}

func randomHex(tb testing.TB, n int) string {
	tb.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// testConfig returns a root-token Config on a fresh random prefix.
func testConfig(tb testing.TB) vaultstore.Config {
	tb.Helper()
	addr, token := server(tb)
	return vaultstore.Config{
		Address: addr,
		Token:   token,
		Mount:   "secret",
		Prefix:  "dpkeyring-test/" + randomHex(tb, 8),
	}
}

func mustOpen(tb testing.TB, cfg vaultstore.Config) *vaultstore.Store {
	tb.Helper()
	s, err := vaultstore.Open(tb.Context(), cfg)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return s
}

// rootClient is a plain vault/api client with the root token, for raw reads and writes that
// bypass the store.
func rootClient(tb testing.TB) *api.Client {
	tb.Helper()
	addr, token := server(tb)
	c, err := api.NewClient(&api.Config{Address: addr})
	if err != nil {
		tb.Fatal(err)
	}
	c.SetToken(token)
	return c
}

const keyTemplate = `<key id="%s" version="1"><creationDate>2026-01-02T03:04:05.6Z</creationDate>` +
	`<activationDate>2026-01-02T03:04:05.6Z</activationDate><expirationDate>2026-04-02T03:04:05.6Z</expirationDate>` +
	`<descriptor deserializerType="Microsoft.AspNetCore.DataProtection.AuthenticatedEncryption.ConfigurationModel.AuthenticatedEncryptorDescriptorDeserializer, Microsoft.AspNetCore.DataProtection, Version=8.0.0.0, Culture=neutral, PublicKeyToken=adb9793829ddae60">` +
	`<descriptor><encryption algorithm="AES_256_CBC" /><validation algorithm="HMACSHA256" />` +
	`<masterKey p4:requiresEncryption="true" xmlns:p4="http://schemas.asp.net/2015/03/dataProtection">` +
	`<!-- Warning: the key below is in an unencrypted form. --><value>%s</value></masterKey>` +
	`</descriptor></descriptor></key>`

// keyElement returns a compact key element with a fresh id and its master key (test data).
func keyElement(tb testing.TB) (store.Element, string) {
	tb.Helper()
	id, err := keyring.NewKeyID()
	if err != nil {
		tb.Fatal(err)
	}
	sum := sha256.Sum256([]byte("vaultstore test " + id.String()))
	master := base64.StdEncoding.EncodeToString(append(sum[:], sum[:]...))
	compact, err := keyring.CompactXML(fmt.Appendf(nil, keyTemplate, id, master))
	if err != nil {
		tb.Fatal(err)
	}
	return store.Element{Name: "key-" + id.String(), XML: compact}, master
}

func mustAppend(tb testing.TB, s *vaultstore.Store, ring string, e store.Element) uint64 {
	tb.Helper()
	v, err := s.Append(tb.Context(), ring, e, 0)
	if err != nil {
		tb.Fatalf("Append(%s, %s): %v", ring, e.Name, err)
	}
	return v
}

func mustList(tb testing.TB, s *vaultstore.Store, ring string) store.Snapshot {
	tb.Helper()
	snap, err := s.List(tb.Context(), ring)
	if err != nil {
		tb.Fatalf("List(%s): %v", ring, err)
	}
	return snap
}

// rawElement reads an element secret's data with a plain client.
func rawElement(tb testing.TB, c *api.Client, cfg vaultstore.Config, ring, name string) map[string]any {
	tb.Helper()
	p := cfg.Mount + "/data/" + cfg.Prefix + "/rings/" + ring + "/elements/" + name
	sec, err := c.Logical().ReadWithContext(tb.Context(), p)
	if err != nil || sec == nil {
		tb.Fatalf("raw read %s: %v, %v", p, sec, err)
	}
	data, _ := sec.Data["data"].(map[string]any)
	if data == nil {
		tb.Fatalf("raw read %s: no data", p)
	}
	return data
}

// TestBasics checks the contract on the real server; the full suite is TestConformance.
func TestBasics(t *testing.T) {
	s := mustOpen(t, testConfig(t))
	ctx := t.Context()
	if _, err := s.List(ctx, "r"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("List of a missing ring: %v, want ErrNotFound", err)
	}
	e1, _ := keyElement(t)
	e2, _ := keyElement(t)
	v1 := mustAppend(t, s, "r", e1)
	v2 := mustAppend(t, s, "r", e2)
	if v2 <= v1 {
		t.Errorf("versions %d then %d, want growing", v1, v2)
	}
	if v := mustAppend(t, s, "r", e1); v != v2 {
		t.Errorf("idempotent re-Append = version %d, want %d", v, v2)
	}
	other, _ := keyElement(t)
	if _, err := s.Append(ctx, "r", store.Element{Name: e1.Name, XML: other.XML}, 0); !errors.Is(err, store.ErrExists) {
		t.Errorf("Append of different bytes under an existing name: %v, want ErrExists", err)
	}
	snap := mustList(t, s, "r")
	if diff := cmp.Diff(store.Snapshot{Elements: []store.Element{e1, e2}, Version: v2}, snap); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}
	if _, err := s.Append(ctx, "r", store.Element{Name: "key-x", XML: []byte("<a><b></a>")}, 0); !errors.Is(err, vaultstore.ErrInvalidElement) {
		t.Errorf("Append of broken XML: %v, want ErrInvalidElement", err)
	}

	l, err := s.Lock(ctx, "r", "alice", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lock(ctx, "r", "bob", time.Minute); !errors.Is(err, store.ErrLocked) || !strings.Contains(err.Error(), "alice") {
		t.Errorf("Lock by bob: %v, want ErrLocked naming alice", err)
	}
	e3, _ := keyElement(t)
	if _, err := s.Append(ctx, "r", e3, l.Token+1); !errors.Is(err, store.ErrFenced) {
		t.Errorf("Append with a stale fence: %v, want ErrFenced", err)
	}
	if _, err := s.Append(ctx, "r", e3, l.Token); err != nil {
		t.Errorf("Append with the current fence: %v", err)
	}
	if err := s.Unlock(ctx, l); err != nil {
		t.Fatal(err)
	}
	l2, err := s.Lock(ctx, "r", "bob", time.Minute)
	if err != nil || l2.Token != l.Token+1 {
		t.Errorf("Lock after Unlock = %+v, %v; want token %d", l2, err, l.Token+1)
	}

	if _, err := s.Meta(ctx, "r"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Meta before PutMeta: %v, want ErrNotFound", err)
	}
	mv, err := s.PutMeta(ctx, "r", []byte(`{"a":1}`), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutMeta(ctx, "r", []byte(`{"a":2}`), 0, 0); !errors.Is(err, store.ErrConflict) {
		t.Errorf("PutMeta expecting none: %v, want ErrConflict", err)
	}
	m, err := s.Meta(ctx, "r")
	if err != nil || m.Version != mv || string(m.Data) != `{"a":1}` {
		t.Errorf("Meta = %+v, %v; want version %d", m, err, mv)
	}
	rings, err := s.Rings(ctx)
	if err != nil || !cmp.Equal(rings, []string{"r"}) {
		t.Errorf("Rings = %q, %v", rings, err)
	}
}

// TestCreateOnly proves that Vault itself refuses to overwrite an element: a raw KV write with
// cas=0 to an existing element fails, and the element is unchanged.
func TestCreateOnly(t *testing.T) {
	cfg := testConfig(t)
	s := mustOpen(t, cfg)
	e, _ := keyElement(t)
	mustAppend(t, s, "r", e)
	p := cfg.Mount + "/data/" + cfg.Prefix + "/rings/r/elements/" + e.Name
	_, err := rootClient(t).Logical().WriteWithContext(t.Context(), p, map[string]any{
		"options": map[string]any{"cas": 0},
		"data":    map[string]any{"name": e.Name, "xml": "<key id=\"evil\"/>"},
	})
	var re *api.ResponseError
	if !errors.As(err, &re) || re.StatusCode != 400 || !strings.Contains(err.Error(), "check-and-set") {
		t.Fatalf("raw cas=0 write over an element: %v, want a check-and-set refusal", err)
	}
	if got := mustList(t, s, "r").Elements; !cmp.Equal(got, []store.Element{e}) {
		t.Errorf("element changed after the refused write: %s", cmp.Diff([]store.Element{e}, got))
	}
}

// TestTransitAtRest checks that with Transit an element secret holds only ciphertext (no XML,
// no master key in the clear) plus clear listing fields, and that List returns the exact bytes.
func TestTransitAtRest(t *testing.T) {
	cfg := testConfig(t)
	cfg.TransitKey = transitKey(t)
	s := mustOpen(t, cfg)
	e, master := keyElement(t)
	mustAppend(t, s, "r", e)
	if v := mustAppend(t, s, "r", e); v == 0 {
		t.Errorf("idempotent re-Append under Transit returned version 0")
	}
	snap := mustList(t, s, "r")
	if !cmp.Equal(snap.Elements, []store.Element{e}) {
		t.Errorf("List under Transit (-want +got):\n%s", cmp.Diff([]store.Element{e}, snap.Elements))
	}
	data := rawElement(t, rootClient(t), cfg, "r", e.Name)
	raw, _ := json.Marshal(data)
	if strings.Contains(string(raw), master) || strings.Contains(string(raw), "masterKey") {
		t.Errorf("stored secret contains the master key or descriptor in the clear: %s", raw)
	}
	if _, ok := data["xml"]; ok {
		t.Errorf("stored secret has an xml field under Transit")
	}
	if c, _ := data["ciphertext"].(string); !strings.HasPrefix(c, "vault:v") {
		t.Errorf("ciphertext = %q, want vault:vN:...", c)
	}
	want := map[string]any{"kind": "key", "id": strings.TrimPrefix(e.Name, "key-"), "name": e.Name,
		"creationDate": "2026-01-02T03:04:05.6Z", "activationDate": "2026-01-02T03:04:05.6Z", "expirationDate": "2026-04-02T03:04:05.6Z"}
	for k, v := range want {
		if data[k] != v {
			t.Errorf("clear field %s = %v, want %v", k, data[k], v)
		}
	}
	// A store without the Transit key cannot read the ring, and says why.
	plain := cfg
	plain.TransitKey = ""
	if _, err := mustOpen(t, plain).List(t.Context(), "r"); !errors.Is(err, vaultstore.ErrNoTransit) {
		t.Errorf("List without the Transit key: %v, want ErrNoTransit", err)
	}
}

// TestRewrap rotates a dedicated Transit key and checks that Rewrap moves every element to the
// new key version while List returns the same bytes.
func TestRewrap(t *testing.T) {
	transitKey(t)
	root := rootClient(t)
	key := "dpkeyring-rewrap-" + randomHex(t, 4)
	if _, err := root.Logical().WriteWithContext(t.Context(), "transit/keys/"+key, nil); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	cfg.TransitKey = key
	s := mustOpen(t, cfg)
	var want []store.Element
	for range 3 {
		e, _ := keyElement(t)
		mustAppend(t, s, "r", e)
		want = append(want, e)
	}
	before := mustList(t, s, "r")
	if _, err := root.Logical().WriteWithContext(t.Context(), "transit/keys/"+key+"/rotate", nil); err != nil {
		t.Fatal(err)
	}
	n, err := s.Rewrap(t.Context(), "r")
	if err != nil || n != 3 {
		t.Fatalf("Rewrap = %d, %v; want 3", n, err)
	}
	after := mustList(t, s, "r")
	if !cmp.Equal(after.Elements, want) || !cmp.Equal(before.Elements, want) {
		t.Errorf("List changed across Rewrap:\n%s", cmp.Diff(before, after))
	}
	for _, e := range want {
		c, _ := rawElement(t, root, cfg, "r", e.Name)["ciphertext"].(string)
		if !strings.HasPrefix(c, "vault:v2:") {
			t.Errorf("%s ciphertext after Rewrap = %.12s..., want vault:v2:", e.Name, c)
		}
	}
	if n, err := s.Rewrap(t.Context(), "r"); err != nil || n != 0 {
		t.Errorf("second Rewrap = %d, %v; want 0", n, err)
	}
}

func TestNewMasterKey(t *testing.T) {
	cfg := testConfig(t)
	cfg.TransitKey = transitKey(t)
	s := mustOpen(t, cfg)
	a, err := s.NewMasterKey(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.NewMasterKey(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if a.Len() != 64 || b.Len() != 64 || string(a.Bytes()) == string(b.Bytes()) {
		t.Errorf("master keys of %d and %d bytes, equal=%v; want two different 64-byte keys", a.Len(), b.Len(), string(a.Bytes()) == string(b.Bytes()))
	}
	if got := fmt.Sprint(a); got != "REDACTED" {
		t.Errorf("master key prints as %q", got)
	}
	// Without Transit the capability still works (crypto/rand), so callers that find it by type
	// assertion need no special case.
	plain := mustOpen(t, testConfig(t))
	c, err := plain.NewMasterKey(t.Context())
	if err != nil || c.Len() != 64 || string(c.Bytes()) == string(a.Bytes()) {
		t.Errorf("NewMasterKey without Transit: %d bytes, %v; want a fresh 64-byte key", c.Len(), err)
	}
}

// TestAppRole logs in with the AppRole of .ci/vault-server.sh, whose policy allows only
// secret/*/approle-test/*: the store works there and a prefix outside fails with
// store.ErrPermission naming the path and the capability.
func TestAppRole(t *testing.T) {
	addr, _ := server(t)
	roleID, secretID := os.Getenv("KEYRING_TEST_VAULT_APPROLE_ROLE_ID"), os.Getenv("KEYRING_TEST_VAULT_APPROLE_SECRET_ID")
	if roleID == "" || secretID == "" {
		const why = "KEYRING_TEST_VAULT_APPROLE_ROLE_ID / _SECRET_ID not set"
		if os.Getenv("CI") == "true" {
			t.Fatal(why)
		}
		t.Skip(why)
	}
	dir := t.TempDir()
	secretFile := dir + "/secret-id"
	if err := os.WriteFile(secretFile, []byte(secretID+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := vaultstore.Config{Address: addr, Auth: vaultstore.AuthAppRole, RoleID: roleID, SecretIDFile: secretFile,
		Mount: "secret", Prefix: "approle-test/" + randomHex(t, 8)}
	s := mustOpen(t, cfg)
	e, _ := keyElement(t)
	mustAppend(t, s, "r", e)
	if got := mustList(t, s, "r").Elements; !cmp.Equal(got, []store.Element{e}) {
		t.Errorf("List through AppRole: %s", cmp.Diff([]store.Element{e}, got))
	}

	out := cfg
	out.Prefix = "forbidden-" + randomHex(t, 4)
	so := mustOpen(t, out)
	_, err := so.Append(t.Context(), "r", e, 0)
	wantPath := "secret/data/" + out.Prefix + "/rings/r/elements/" + e.Name
	if !errors.Is(err, store.ErrPermission) || !strings.Contains(err.Error(), wantPath) || !strings.Contains(err.Error(), `"read"`) {
		t.Errorf("Append outside the policy: %v\nwant ErrPermission naming %s and the read capability", err, wantPath)
	}
	_, err = so.Rings(t.Context())
	if !errors.Is(err, store.ErrPermission) || !strings.Contains(err.Error(), "secret/metadata/"+out.Prefix+"/rings") || !strings.Contains(err.Error(), `"list"`) {
		t.Errorf("Rings outside the policy: %v, want ErrPermission naming the path and list", err)
	}

	bad := cfg
	bad.SecretIDFile, bad.SecretID = "", "00000000-0000-0000-0000-000000000000"
	if _, err := vaultstore.Open(t.Context(), bad); !errors.Is(err, store.ErrPermission) || !strings.Contains(err.Error(), "approle") {
		t.Errorf("Open with a wrong secret id: %v, want ErrPermission naming approle", err)
	}
}

// createToken makes a child token of root with the given TTLs.
func createToken(t *testing.T, ttl, maxTTL string) string {
	t.Helper()
	sec, err := rootClient(t).Auth().Token().CreateWithContext(t.Context(), &api.TokenCreateRequest{
		TTL: ttl, ExplicitMaxTTL: maxTTL, Renewable: new(true),
	})
	if err != nil || sec == nil || sec.Auth == nil {
		t.Fatalf("token create: %v", err)
	}
	return sec.Auth.ClientToken
}

// TestTokenRenewal opens a store with a 2-second token and checks that it still works well past
// that TTL (the LifetimeWatcher renews it), and that a token reaching its max TTL is reported
// by Err.
func TestTokenRenewal(t *testing.T) {
	t.Parallel() // mostly sleeps
	if testing.Short() {
		t.Skip("waits several seconds")
	}
	cfg := testConfig(t)
	cfg.Token = createToken(t, "2s", "1h")
	s := mustOpen(t, cfg)
	e, _ := keyElement(t)
	mustAppend(t, s, "r", e)
	time.Sleep(5 * time.Second)
	if _, err := s.List(t.Context(), "r"); err != nil {
		t.Errorf("List 5 s after opening with a 2 s token: %v (token not renewed)", err)
	}
	if err := s.Err(); err != nil {
		t.Errorf("Err = %v, want nil while renewing", err)
	}

	short := testConfig(t)
	short.Token = createToken(t, "2s", "3s")
	ss := mustOpen(t, short)
	deadline := time.Now().Add(10 * time.Second)
	for ss.Err() == nil && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if err := ss.Err(); !errors.Is(err, store.ErrPermission) {
		t.Errorf("Err after the max TTL = %v, want ErrPermission", err)
	}
}

// TestOpenErrors checks the errors of a wrong token and an unreachable server.
func TestOpenErrors(t *testing.T) {
	cfg := testConfig(t)
	cfg.Token = "hvs.not-a-token"
	if _, err := vaultstore.Open(t.Context(), cfg); !errors.Is(err, store.ErrPermission) {
		t.Errorf("Open with a wrong token: %v, want ErrPermission", err)
	}
	_, err := vaultstore.Open(t.Context(), vaultstore.Config{Address: "http://127.0.0.1:1", Token: "x", Timeout: 2 * time.Second})
	if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("Open of a closed port: %v, want ErrUnavailable naming the address", err)
	}
}

// createOnlyPolicy is the hardened policy of docs/backends.md: element secrets may be created
// and read, never updated, so not even a raw write can replace a key.
func createOnlyPolicy(prefix string) string {
	return `path "secret/data/` + prefix + `/rings/+/elements/*" { capabilities = ["create", "read"] }
path "secret/data/` + prefix + `/rings/+/version" { capabilities = ["create", "update", "read"] }
path "secret/data/` + prefix + `/rings/+/lease" { capabilities = ["create", "update", "read"] }
path "secret/data/` + prefix + `/rings/+/meta" { capabilities = ["create", "update", "read"] }
path "secret/metadata/` + prefix + `/rings/*" { capabilities = ["list", "read"] }
path "secret/metadata/` + prefix + `/rings" { capabilities = ["list"] }
`
}

// TestCreateOnlyPolicy runs the store under a policy without "update" on elements and checks
// that everything works and that Vault then refuses any overwrite of a key, with or without cas.
func TestCreateOnlyPolicy(t *testing.T) {
	root := rootClient(t)
	cfg := testConfig(t)
	name := "dpkeyring-create-only-" + randomHex(t, 4)
	if err := root.Sys().PutPolicyWithContext(t.Context(), name, createOnlyPolicy(cfg.Prefix)); err != nil {
		t.Fatal(err)
	}
	sec, err := root.Auth().Token().CreateWithContext(t.Context(), &api.TokenCreateRequest{
		Policies: []string{name}, TTL: "10m", NoParent: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Token = sec.Auth.ClientToken
	s := mustOpen(t, cfg)
	ctx := t.Context()
	e, _ := keyElement(t)
	v := mustAppend(t, s, "r", e)
	if v2 := mustAppend(t, s, "r", e); v2 != v {
		t.Errorf("idempotent re-Append = %d, want %d", v2, v)
	}
	other, _ := keyElement(t)
	if _, err := s.Append(ctx, "r", store.Element{Name: e.Name, XML: other.XML}, 0); !errors.Is(err, store.ErrExists) {
		t.Errorf("Append of other bytes: %v, want ErrExists", err)
	}
	l, err := s.Lock(ctx, "r", "a", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutMeta(ctx, "r", []byte("m"), 0, l.Token); err != nil {
		t.Fatal(err)
	}
	if err := s.Unlock(ctx, l); err != nil {
		t.Fatal(err)
	}
	if rings, err := s.Rings(ctx); err != nil || len(rings) != 1 {
		t.Errorf("Rings = %q, %v", rings, err)
	}

	raw, err := api.NewClient(&api.Config{Address: cfg.Address})
	if err != nil {
		t.Fatal(err)
	}
	raw.SetToken(cfg.Token)
	p := cfg.Mount + "/data/" + cfg.Prefix + "/rings/r/elements/" + e.Name
	for _, body := range []map[string]any{
		{"data": map[string]any{"xml": "<evil/>"}},
		{"options": map[string]any{"cas": 1}, "data": map[string]any{"xml": "<evil/>"}},
	} {
		_, err := raw.Logical().WriteWithContext(ctx, p, body)
		var re *api.ResponseError
		if !errors.As(err, &re) || re.StatusCode != 403 {
			t.Errorf("raw overwrite %v under the create-only policy: %v, want 403", body["options"], err)
		}
	}
	if got := mustList(t, mustOpen(t, cfg), "r").Elements; !cmp.Equal(got, []store.Element{e}) {
		t.Errorf("element changed: %s", cmp.Diff([]store.Element{e}, got))
	}
}

// TestAppRoleRelogin uses an AppRole whose tokens live 3 seconds at most: past that the store
// must have logged in again by itself.
func TestAppRoleRelogin(t *testing.T) {
	t.Parallel() // mostly sleeps
	if testing.Short() {
		t.Skip("waits several seconds")
	}
	addr, _ := server(t)
	if os.Getenv("KEYRING_TEST_VAULT_APPROLE_ROLE_ID") == "" {
		t.Skip("no AppRole configured (KEYRING_TEST_VAULT_APPROLE_ROLE_ID)")
	}
	root := rootClient(t)
	ctx := t.Context()
	role := "auth/approle/role/dpkeyring-relogin-" + randomHex(t, 4)
	if _, err := root.Logical().WriteWithContext(ctx, role, map[string]any{
		"token_policies": "dpkeyring-approle-test", "token_ttl": "2s", "token_max_ttl": "3s",
	}); err != nil {
		t.Fatal(err)
	}
	rid, err := root.Logical().ReadWithContext(ctx, role+"/role-id")
	if err != nil {
		t.Fatal(err)
	}
	sid, err := root.Logical().WriteWithContext(ctx, role+"/secret-id", nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := vaultstore.Config{Address: addr, Auth: vaultstore.AuthAppRole,
		RoleID: rid.Data["role_id"].(string), SecretID: sid.Data["secret_id"].(string),
		Prefix: "approle-test/" + randomHex(t, 8)}
	s := mustOpen(t, cfg)
	e, _ := keyElement(t)
	mustAppend(t, s, "r", e)
	time.Sleep(7 * time.Second)
	if _, err := s.List(ctx, "r"); err != nil {
		t.Errorf("List 7 s after login with 3 s max-TTL tokens: %v (no re-login)", err)
	}
	if err := s.Err(); err != nil {
		t.Errorf("Err = %v after re-login", err)
	}
}

// TestForeignIndented checks that an element secret written by another program in file form
// (declaration, indentation) is listed in compact form under its ASP.NET Core name.
func TestForeignIndented(t *testing.T) {
	cfg := testConfig(t)
	s := mustOpen(t, cfg)
	e, _ := keyElement(t)
	file, err := keyring.FileXML(e.XML)
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Mount + "/data/" + cfg.Prefix + "/rings/r/elements/some-other-name"
	if _, err := rootClient(t).Logical().WriteWithContext(t.Context(), p, map[string]any{
		"data": map[string]any{"xml": string(file)},
	}); err != nil {
		t.Fatal(err)
	}
	if got := mustList(t, s, "r").Elements; !cmp.Equal(got, []store.Element{e}) {
		t.Errorf("foreign file-form element (-want +got):\n%s", cmp.Diff([]store.Element{e}, got))
	}
}
