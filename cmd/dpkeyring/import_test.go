package main

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/dpkeyring/dpkeyring/internal/storespec"
	"github.com/dpkeyring/dpkeyring/keyring"
	"github.com/dpkeyring/dpkeyring/store"
)

// medium is one place a key ring can live, for the import round-trip matrix.
type medium struct {
	name string
	// spec is the store spec (or path) import reads from / writes to.
	spec string
	// store is true when spec is a store spec (a valid --to).
	store bool
}

func uniqueName(tb testing.TB) string {
	tb.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		tb.Fatal(err)
	}
	return "t" + hex.EncodeToString(b[:])
}

// storeMedia returns the stores to test: always a file store; Redis and Vault when their test
// servers are configured (required under CI=true).
func storeMedia(t *testing.T) []medium {
	t.Helper()
	ms := []medium{{name: "file", spec: "file:" + t.TempDir(), store: true}}
	need := func(v string) string {
		s := os.Getenv(v)
		if s == "" && os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set (CI=true needs the real server)", v)
		}
		return s
	}
	if addr := need("KEYRING_TEST_REDIS_ADDR"); addr != "" {
		ms = append(ms, medium{name: "redis", spec: "redis://" + addr + "/0?prefix=" + uniqueName(t), store: true})
	} else {
		t.Log("KEYRING_TEST_REDIS_ADDR is not set: Redis left out of the matrix")
	}
	if addr := need("KEYRING_TEST_VAULT_ADDR"); addr != "" {
		tokenFile := filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(tokenFile, []byte(os.Getenv("KEYRING_TEST_VAULT_TOKEN")), 0o600); err != nil {
			t.Fatal(err)
		}
		host := strings.TrimPrefix(strings.TrimPrefix(addr, "http://"), "https://")
		ms = append(ms, medium{name: "vault", spec: "vault://" + host + "/secret/" + uniqueName(t) + "?token_file=" + tokenFile, store: true})
	} else {
		t.Log("KEYRING_TEST_VAULT_ADDR is not set: Vault left out of the matrix")
	}
	return ms
}

// mustBigRing writes a 200-key ring with revocations into a node-style key folder and returns the
// folder and the ring's elements in compact form, sorted by name.
func mustBigRing(t *testing.T) (string, []store.Element) {
	t.Helper()
	dir := t.TempDir()
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	var want []store.Element
	add := func(xml []byte) {
		name, err := keyring.ElementName(xml)
		if err != nil {
			t.Fatal(err)
		}
		mustWriteElement(t, dir, name, xml)
		want = append(want, store.Element{Name: name, XML: xml})
	}
	var ids []keyring.KeyID
	for i := range 200 {
		created := base.Add(time.Duration(i) * 24 * time.Hour)
		k, err := keyring.NewKey(created, created.Add(48*time.Hour), created.Add(90*24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, k.ID)
		add(k.XML)
	}
	for i, id := range ids[:3] {
		x, err := keyring.MarshalRevocation(keyring.Revocation{Date: base.Add(time.Duration(i) * time.Hour), KeyID: id, Reason: "test"})
		if err != nil {
			t.Fatal(err)
		}
		add(x)
	}
	x, err := keyring.MarshalRevocation(keyring.Revocation{Date: base.Add(12 * time.Hour), All: true})
	if err != nil {
		t.Fatal(err)
	}
	add(x)
	return dir, sortedElements(want)
}

// mustStoreElements lists ring "default" of a store spec, sorted by name.
func mustStoreElements(t *testing.T, spec string) []store.Element {
	t.Helper()
	s, err := storespec.Open(t.Context(), spec, func(string) string { return "" })
	if err != nil {
		t.Fatalf("Open %s: %v", storespec.Redact(spec), err)
	}
	defer s.Close()
	snap, err := s.List(t.Context(), "default")
	if err != nil {
		t.Fatalf("List %s: %v", storespec.Redact(spec), err)
	}
	return sortedElements(snap.Elements)
}

func mustImport(t *testing.T, from, to string, extra ...string) importSummary {
	t.Helper()
	res := runCLI(t, time.Now(), "", append([]string{"import", "--from", from, "--to", to, "--json"}, extra...)...)
	if res.code != 0 {
		t.Fatalf("import --from %s --to %s: exit %d: %s", from, storespec.Redact(to), res.code, res.stderr)
	}
	var sum importSummary
	if err := json.Unmarshal([]byte(res.stdout), &sum); err != nil {
		t.Fatalf("import --json output %q: %v", res.stdout, err)
	}
	return sum
}

// TestImportRoundTripsEveryMedium copies a 200-key ring from each medium (a node's key folder,
// a <repository> document, and every store) into every store, and checks each copy holds
// exactly the original elements.
func TestImportRoundTripsEveryMedium(t *testing.T) {
	dir, want := mustBigRing(t)
	docPath := filepath.Join(t.TempDir(), "keys.xml")
	res := runCLI(t, time.Now(), "", "export", "--from", dir, "--plaintext", "--out", docPath)
	if res.code != 0 {
		t.Fatalf("export: %s", res.stderr)
	}
	sources := []medium{{name: "folder", spec: dir}, {name: "repository-document", spec: docPath}}
	stores := storeMedia(t)
	// Fill each store once from the folder, so each can also serve as a source.
	for _, m := range stores {
		sum := mustImport(t, dir, m.spec)
		if sum.Added != len(want) || sum.Present != 0 {
			t.Errorf("import into %s: added %d, present %d; want %d, 0", m.name, sum.Added, sum.Present, len(want))
		}
		if diff := cmp.Diff(want, mustStoreElements(t, m.spec)); diff != "" {
			t.Fatalf("%s after import (-want +got):\n%s", m.name, diff)
		}
		sources = append(sources, m)
	}
	for _, src := range sources {
		for _, dst := range stores {
			t.Run(src.name+"-to-"+dst.name, func(t *testing.T) {
				// A fresh namespace of the destination's kind.
				fresh := freshLike(t, dst)
				mustImport(t, src.spec, fresh)
				if diff := cmp.Diff(want, mustStoreElements(t, fresh)); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
				if src.name != "folder" {
					return
				}
				// Importing again changes nothing.
				again := mustImport(t, src.spec, fresh)
				if again.Added != 0 || again.Present != len(want) {
					t.Errorf("second import: added %d, present %d; want 0, %d", again.Added, again.Present, len(want))
				}
			})
		}
	}
}

// freshLike returns an empty namespace of the same kind of store as m.
func freshLike(t *testing.T, m medium) string {
	t.Helper()
	switch m.name {
	case "file":
		return "file:" + t.TempDir()
	case "redis":
		i := strings.Index(m.spec, "prefix=")
		return m.spec[:i] + "prefix=" + uniqueName(t)
	case "vault":
		i := strings.Index(m.spec, "/secret/")
		j := strings.Index(m.spec, "?")
		return m.spec[:i] + "/secret/" + uniqueName(t) + m.spec[j:]
	}
	t.Fatalf("unknown medium %s", m.name)
	return ""
}

// TestImportDotNetRedisList imports a list filled the way ASP.NET Core's
// PersistKeysToStackExchangeRedis fills it (plain RPUSH of compact elements to
// "DataProtection-Keys"-style keys), with no dpkeyring bookkeeping beside it.
func TestImportDotNetRedisList(t *testing.T) {
	addr := os.Getenv("KEYRING_TEST_REDIS_ADDR")
	if addr == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("KEYRING_TEST_REDIS_ADDR is not set (CI=true needs a real Redis)")
		}
		t.Skip("KEYRING_TEST_REDIS_ADDR is not set: no real Redis to test against")
	}
	_, want := mustBigRing(t)
	listKey := "DataProtection-Keys-" + uniqueName(t)
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	for _, e := range want {
		if err := rdb.RPush(t.Context(), listKey, e.XML).Err(); err != nil {
			t.Fatal(err)
		}
	}
	dst := "file:" + t.TempDir()
	sum := mustImport(t, "redis://"+addr+"/0?key="+listKey, dst)
	if sum.Added != len(want) {
		t.Errorf("added %d, want %d", sum.Added, len(want))
	}
	if diff := cmp.Diff(want, mustStoreElements(t, dst)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestImportDecryptsCertificateProtectedKeys(t *testing.T) {
	certFile, key := mustCertFiles(t)
	dir := t.TempDir()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	k, err := keyring.NewKey(now, now, now.Add(90*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	enc, err := keyring.EncryptKeyWithCertificate(k.XML, key.Certificate)
	if err != nil {
		t.Fatal(err)
	}
	mustWriteElement(t, dir, "key-"+k.ID.String(), enc)
	dst := "file:" + t.TempDir()

	// Without --cert the key is copied encrypted, with a warning.
	res := runCLI(t, now, "", "import", "--from", dir, "--to", dst)
	if res.code != 0 || !strings.Contains(res.stderr, "cannot be used here") {
		t.Fatalf("import without --cert: exit %d, stderr %q", res.code, res.stderr)
	}
	got := mustStoreElements(t, dst)
	if len(got) != 1 || !strings.Contains(string(got[0].XML), "encryptedSecret") {
		t.Fatalf("without --cert the stored key should stay encrypted: %s", got)
	}

	dst2dir := t.TempDir()
	dst2 := "file:" + dst2dir
	sum := mustImport(t, dir, dst2, "--cert", certFile)
	// The import is in the audit log the server keeps beside a file store, without secrets.
	log, err := os.ReadFile(filepath.Join(dst2dir, "audit.log"))
	if err != nil {
		t.Fatalf("audit log: %v", err)
	}
	if !strings.Contains(string(log), `"action":"import"`) || !strings.Contains(string(log), "1 decrypted") {
		t.Errorf("audit log lacks the import record: %s", log)
	}
	if strings.Contains(string(log), "<value>") || strings.Contains(string(log), "masterKey") {
		t.Errorf("audit log holds key material: %s", log)
	}
	if diff := cmp.Diff([]keyring.KeyID{k.ID}, sum.Decrypted); diff != "" {
		t.Errorf("decrypted (-want +got):\n%s", diff)
	}
	got = mustStoreElements(t, dst2)
	parsed, err := keyring.ParseKey(got[0].XML, keyring.ParseOptions{})
	if err != nil || parsed.Descriptor == nil {
		t.Fatalf("imported key does not load without the certificate: %v / %v", err, parsed.DescriptorErr)
	}
	if diff := cmp.Diff(k.Descriptor.MasterKey.Bytes(), parsed.Descriptor.MasterKey.Bytes()); diff != "" {
		t.Error("decrypted master key differs from the original")
	}
	if !parsed.Created.Equal(k.Created) || !parsed.Activation.Equal(k.Activation) || !parsed.Expiration.Equal(k.Expiration) || parsed.ID != k.ID {
		t.Errorf("decrypted key changed id or dates: %+v", parsed)
	}
}

func TestExportRequiresAChoiceAboutSecrets(t *testing.T) {
	dir, want := mustBigRing(t)
	res := runCLI(t, time.Now(), "", "export", "--from", dir)
	if res.code != exitUsage || !strings.Contains(res.stderr, "--plaintext") {
		t.Fatalf("export without --plaintext/--encrypt-cert: exit %d, %q", res.code, res.stderr)
	}
	certFile, key := mustCertFiles(t)
	out := filepath.Join(t.TempDir(), "enc.xml")
	res = runCLI(t, time.Now(), "", "export", "--from", dir, "--encrypt-cert", certFile, "--out", out)
	if res.code != 0 {
		t.Fatalf("export --encrypt-cert: %s", res.stderr)
	}
	mustMode(t, out, 0o600)
	doc, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(doc), "<value>") {
		t.Error("an encrypted export still holds a plaintext <value>")
	}
	// With the private key the document loads to the same keys.
	ring, err := keyring.ParseRepository(doc, keyring.ParseOptions{Certificates: []keyring.CertificateKey{key}})
	if err != nil {
		t.Fatal(err)
	}
	if ring.Len() != 200 {
		t.Fatalf("ring has %d keys, want 200", ring.Len())
	}
	for _, k := range ring.Keys() {
		if k.Descriptor == nil {
			t.Fatalf("key %s does not open with the certificate: %v", k.ID, k.DescriptorErr)
		}
	}
	// And imported back with the certificate it equals the original ring.
	dst := "file:" + t.TempDir()
	mustImport(t, out, dst, "--cert", certFile)
	if diff := cmp.Diff(want, mustStoreElements(t, dst)); diff != "" {
		t.Errorf("export --encrypt-cert then import --cert (-want +got):\n%s", diff)
	}
}

func TestImportErrors(t *testing.T) {
	dir, _ := mustBigRing(t)
	bad := t.TempDir()
	mustWriteElement(t, bad, "revocation-x", []byte(`<revocation version="1"><revocationDate>nope</revocationDate><key id="*" /></revocation>`))
	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no from", []string{"import", "--to", "file:x"}, exitUsage, "--from is required"},
		{"no to", []string{"import", "--from", dir}, exitUsage, "--to is required"},
		{"to a path", []string{"import", "--from", dir, "--to", "./somewhere"}, exitUsage, "not a store spec"},
		{"bad ring", []string{"import", "--from", dir, "--to", "file:" + t.TempDir(), "--ring", "Bad/Ring"}, exitUsage, "--ring"},
		{"bad spec", []string{"import", "--from", dir, "--to", "redis://"}, exitFailure, "invalid store spec"},
		{"missing source", []string{"import", "--from", filepath.Join(dir, "nope"), "--to", "file:" + t.TempDir()}, exitFailure, "no such file"},
		{"malformed revocation", []string{"import", "--from", bad, "--to", "file:" + t.TempDir()}, exitFailure, "cannot be loaded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := runCLI(t, time.Now(), "", tc.args...)
			if res.code != tc.code || !strings.Contains(res.stderr, tc.msg) {
				t.Errorf("exit %d, stderr %q; want exit %d containing %q", res.code, res.stderr, tc.code, tc.msg)
			}
			if strings.Count(strings.TrimSpace(res.stderr), "\n") > 0 {
				t.Errorf("stderr is more than one line: %q", res.stderr)
			}
		})
	}
}

// mustCertFiles writes a PEM file with a fresh certificate and its private key and returns its
// path and the parsed certificate key.
func mustCertFiles(t *testing.T) (string, keyring.CertificateKey) {
	t.Helper()
	cert, key := mustCertificate(t)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	path := mustWriteFile(t, filepath.Join(t.TempDir(), "cert.pem"), append(
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})...))
	return path, keyring.CertificateKey{Certificate: cert, PrivateKey: key}
}

// TestKeysAcceptStoreSpecs reads a ring through a store spec with every --keys command.
func TestKeysAcceptStoreSpecs(t *testing.T) {
	now := time.Now().UTC()
	spec := "file:" + t.TempDir()
	k, err := keyring.NewKey(now.Add(-time.Hour), now.Add(-time.Hour), now.Add(90*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	keyDir := t.TempDir()
	mustWriteElement(t, keyDir, "key-"+k.ID.String(), k.XML)
	mustImport(t, keyDir, spec, "--ring", "web")

	res := runCLI(t, now, "", "keys", "list", "--keys", spec, "--ring", "web", "--json")
	if res.code != 0 || !strings.Contains(res.stdout, k.ID.String()) {
		t.Fatalf("keys list --keys %s --ring web: exit %d, %s %s", spec, res.code, res.stdout, res.stderr)
	}
	res = runCLI(t, now, "", "keys", "list", "--keys", spec)
	if res.code != exitFailure || !strings.Contains(res.stderr, "ring default") {
		t.Errorf("keys list of a missing ring: exit %d, %q", res.code, res.stderr)
	}

	ring, err := keyring.NewRing([]keyring.Key{k}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := ring.Protect(now, []byte("hello"), keyring.Purposes("app", "p"))
	if err != nil {
		t.Fatal(err)
	}
	res = runCLI(t, now, "", "unprotect", "--keys", spec, "--ring", "web", "--app-name", "app", "--purpose", "p", keyring.Base64URLEncode(payload))
	if res.code != 0 || res.stdout != "hello" {
		t.Errorf("unprotect via a store spec: exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}

	ticket := &keyring.Ticket{Scheme: "Cookies", Identities: []keyring.Identity{{AuthenticationType: "Cookies",
		NameClaimType: keyring.DefaultNameClaimType, RoleClaimType: keyring.DefaultRoleClaimType}}}
	cookie, err := ring.EncryptCookie(now, ticket, "", "Cookies")
	if err != nil {
		t.Fatal(err)
	}
	res = runCLI(t, now, "", "decrypt-cookie", "--keys", spec, "--ring", "web", "--json", cookie)
	if res.code != 0 || !strings.Contains(res.stdout, `"key_id": "`+k.ID.String()) {
		t.Errorf("decrypt-cookie via a store spec: exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}
}
