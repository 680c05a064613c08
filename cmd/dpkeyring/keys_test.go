package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dpkeyring/dpkeyring/keyring"
	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the goldens in ../../testdata/cli")

// t0 is the fixed clock of the golden tests.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// mustKey returns a CBC key with a fixed id and a master key of 64 copies of seed.
func mustKey(tb testing.TB, id string, created, activation, expiration time.Time, seed byte) keyring.Key {
	tb.Helper()
	kid, err := keyring.ParseKeyID(id)
	if err != nil {
		tb.Fatal(err)
	}
	return keyring.Key{
		ID:         kid,
		Created:    created,
		Activation: activation,
		Expiration: expiration,
		Descriptor: &keyring.Descriptor{
			Encryption: keyring.AES256CBC,
			Validation: keyring.HMACSHA256,
			MasterKey:  keyring.NewSecret(bytes.Repeat([]byte{seed}, 64)),
		},
		Protection: keyring.ProtectionNone,
	}
}

// mustWriteKey writes k into dir as key-{id}.xml in the form FileSystemXmlRepository writes.
func mustWriteKey(tb testing.TB, dir string, k keyring.Key) {
	tb.Helper()
	el, err := keyring.MarshalKey(k)
	if err != nil {
		tb.Fatal(err)
	}
	mustWriteElement(tb, dir, "key-"+k.ID.String(), el)
}

// mustWriteRevocation writes r into dir under its friendly name.
func mustWriteRevocation(tb testing.TB, dir string, r keyring.Revocation) {
	tb.Helper()
	el, err := keyring.MarshalRevocation(r)
	if err != nil {
		tb.Fatal(err)
	}
	mustWriteElement(tb, dir, keyring.RevocationName(r), el)
}

func mustWriteElement(tb testing.TB, dir, name string, el []byte) {
	tb.Helper()
	f, err := keyring.FileXML(el)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".xml"), f, 0o600); err != nil {
		tb.Fatal(err)
	}
}

// mustCopy copies a testdata file into dir under name.
func mustCopy(tb testing.TB, src, dir, name string) {
	tb.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
		tb.Fatal(err)
	}
}

// mustLoadDir parses the key files in dir with the keyring API, independently of the CLI.
func mustLoadDir(tb testing.TB, dir string) *keyring.Ring {
	tb.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*.xml"))
	if err != nil {
		tb.Fatal(err)
	}
	var elements [][]byte
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		elements = append(elements, b)
	}
	r, err := keyring.ParseElements(elements, keyring.ParseOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// Fixed keys of the golden ring (see goldenRing).
const (
	idOld     = "11111111-1111-4111-8111-111111111111" // expired
	idCurrent = "22222222-2222-4222-8222-222222222222" // active, default
	idNext    = "33333333-3333-4333-8333-333333333333" // not yet active
	idRevoked = "44444444-4444-4444-8444-444444444444" // revoked
)

// goldenRing writes a ring with an expired, an active (default), a future and a revoked key, a
// revocation, and a key element that ASP.NET Core skips, and returns its directory.
func goldenRing(tb testing.TB) string {
	tb.Helper()
	dir := tb.TempDir()
	day := 24 * time.Hour
	mustWriteKey(tb, dir, mustKey(tb, idOld, t0.Add(-200*day), t0.Add(-200*day), t0.Add(-110*day), 1))
	mustWriteKey(tb, dir, mustKey(tb, idCurrent, t0.Add(-30*day), t0.Add(-30*day), t0.Add(60*day), 2))
	mustWriteKey(tb, dir, mustKey(tb, idNext, t0.Add(-day), t0.Add(60*day), t0.Add(150*day), 3))
	mustWriteKey(tb, dir, mustKey(tb, idRevoked, t0.Add(-50*day), t0.Add(-50*day), t0.Add(40*day), 4))
	rid, _ := keyring.ParseKeyID(idRevoked)
	mustWriteRevocation(tb, dir, keyring.Revocation{KeyID: rid, Date: t0.Add(-10 * day), Reason: "leaked in a log"})
	mustCopy(tb, "../../testdata/keyxml/malformed-date.xml", dir, "key-malformed.xml")
	// Files ASP.NET Core does not read: not *.xml, or in a subdirectory.
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not a key"), 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o700); err != nil {
		tb.Fatal(err)
	}
	mustWriteKey(tb, filepath.Join(dir, "sub"), mustKey(tb, "55555555-5555-4555-8555-555555555555", t0, t0, t0.Add(90*day), 5))
	return dir
}

// checkGolden compares got with testdata/cli/name, or rewrites the file with -update.
func checkGolden(t *testing.T, name string, got string) {
	t.Helper()
	path := filepath.Join("..", "..", "testdata", "cli", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s differs from the golden (-want +got; go test -update rewrites it):\n%s", name, diff)
	}
}

func TestKeysListGolden(t *testing.T) {
	dir := goldenRing(t)
	for _, tc := range []struct {
		golden string
		args   []string
	}{
		{"keys-list.txt", []string{"keys", "list", "--keys", dir}},
		{"keys-list.json", []string{"keys", "list", "--keys", dir, "--json"}},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			r := runCLI(t, t0, "", tc.args...)
			if r.code != exitOK || r.stderr != "" {
				t.Fatalf("exit code %d, stderr %q", r.code, r.stderr)
			}
			checkGolden(t, tc.golden, strings.ReplaceAll(r.stdout, dir, "$KEYS"))
		})
	}
}

// TestKeysListFixtures lists key elements of every kind ASP.NET Core writes (testdata/keyxml):
// old and new versions, GCM, protected master keys that cannot be opened here, a revocation of
// all keys.
func TestKeysListFixtures(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"v1-prerelease-names.xml", "v2-file-form.xml", "v8-compact.xml", "gcm.xml",
		"unencrypted-key.xml", "dpapi.xml", "azure-keyvault.xml", "revocation-all.xml"} {
		mustCopy(t, "../../testdata/keyxml/"+name, dir, name)
	}
	r := runCLI(t, t0, "", "keys", "list", "--keys", dir)
	if r.code != exitOK || r.stderr != "" {
		t.Fatalf("exit code %d, stderr %q", r.code, r.stderr)
	}
	checkGolden(t, "keys-list-fixtures.txt", strings.ReplaceAll(r.stdout, dir, "$KEYS"))
}

func TestKeysListJSON(t *testing.T) {
	dir := goldenRing(t)
	r := runCLI(t, t0, "", "keys", "list", "--keys", dir, "--json")
	if r.code != exitOK {
		t.Fatalf("exit code %d, stderr %q", r.code, r.stderr)
	}
	var got struct {
		DefaultKeyID string `json:"default_key_id"`
		Keys         []struct {
			ID      string `json:"id"`
			Status  string `json:"status"`
			Default bool   `json:"default"`
		} `json:"keys"`
		Skipped []struct {
			Source string `json:"source"`
			Reason string `json:"reason"`
		} `json:"skipped"`
		Revocations []struct {
			KeyID  string `json:"key_id"`
			Reason string `json:"reason"`
		} `json:"revocations"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, r.stdout)
	}
	if got.DefaultKeyID != idCurrent {
		t.Errorf("default_key_id %q, want %q", got.DefaultKeyID, idCurrent)
	}
	status := map[string]string{}
	for _, k := range got.Keys {
		status[k.ID] = k.Status
		if k.Default != (k.ID == idCurrent) {
			t.Errorf("key %s default %v", k.ID, k.Default)
		}
	}
	want := map[string]string{idOld: "expired", idCurrent: "active", idNext: "not-yet-active", idRevoked: "revoked"}
	if diff := cmp.Diff(want, status); diff != "" {
		t.Errorf("key statuses (-want +got):\n%s", diff)
	}
	if len(got.Skipped) != 1 || got.Skipped[0].Source != "key-malformed.xml" || got.Skipped[0].Reason == "" {
		t.Errorf("skipped = %+v, want key-malformed.xml with a reason", got.Skipped)
	}
	if len(got.Revocations) != 1 || got.Revocations[0].KeyID != idRevoked || got.Revocations[0].Reason != "leaked in a log" {
		t.Errorf("revocations = %+v", got.Revocations)
	}
}

func TestKeysListPaths(t *testing.T) {
	dir := goldenRing(t)
	ring := mustLoadDir(t, dir)
	var elements [][]byte
	for _, k := range ring.Keys() {
		elements = append(elements, k.XML)
	}
	for _, rv := range ring.Revocations() {
		elements = append(elements, rv.XML)
	}
	doc, err := keyring.MarshalRepository(elements)
	if err != nil {
		t.Fatal(err)
	}
	other := t.TempDir()
	repo := filepath.Join(other, "keys.xml")
	if err := os.WriteFile(repo, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	single := filepath.Join(dir, "key-"+idCurrent+".xml")

	tests := []struct {
		name     string
		path     string
		wantKeys []string
	}{
		{"directory", dir, []string{idOld, idCurrent, idNext, idRevoked}},
		{"repository document", repo, []string{idOld, idCurrent, idNext, idRevoked}},
		{"one element file", single, []string{idCurrent}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, t0, "", "keys", "list", "--keys", tc.path, "--json")
			if r.code != exitOK {
				t.Fatalf("exit code %d, stderr %q", r.code, r.stderr)
			}
			var got struct {
				Keys []struct {
					ID string `json:"id"`
				} `json:"keys"`
			}
			if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, k := range got.Keys {
				ids = append(ids, k.ID)
			}
			if diff := cmp.Diff(tc.wantKeys, ids); diff != "" {
				t.Errorf("keys (-want +got):\n%s", diff)
			}
		})
	}
}

func TestKeysListFailures(t *testing.T) {
	dup := t.TempDir()
	k := mustKey(t, idCurrent, t0, t0, t0.Add(90*24*time.Hour), 1)
	mustWriteKey(t, dup, k)
	el, _ := keyring.MarshalKey(k)
	mustWriteElement(t, dup, "copy-of-key", el)

	badRevocation := t.TempDir()
	mustCopy(t, "../../testdata/keyxml/revocation-malformed.xml", badRevocation, "revocation-x.xml")

	notXML := t.TempDir()
	if err := os.WriteFile(filepath.Join(notXML, "key-x.xml"), []byte("<key"), 0o600); err != nil {
		t.Fatal(err)
	}

	dirNamedXML := t.TempDir()
	if err := os.Mkdir(filepath.Join(dirNamedXML, "old.xml"), 0o700); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name, path, want string
	}{
		{"missing path", filepath.Join(t.TempDir(), "nope"), "no such file or directory"},
		{"directory named *.xml", dirNamedXML, "old.xml is a directory, not an element file"},
		{"duplicate key id", dup, "duplicate key id"},
		{"malformed revocation", badRevocation, "malformed revocation"},
		{"not XML", notXML, "key-x.xml is not well-formed XML"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, t0, "", "keys", "list", "--keys", tc.path)
			if r.code != exitFailure {
				t.Errorf("exit code %d, want %d", r.code, exitFailure)
			}
			if !strings.HasPrefix(r.stderr, "dpkeyring: keys list: ") || !strings.Contains(r.stderr, tc.want) || strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("stderr %q, want one line containing %q", r.stderr, tc.want)
			}
		})
	}
}

func TestKeysNew(t *testing.T) {
	day := 24 * time.Hour
	dir := filepath.Join(t.TempDir(), "data", "keys") // does not exist yet

	// Empty ring: the key activates now.
	r := runCLI(t, t0, "", "keys", "new", "--dir", dir)
	if r.code != exitOK || r.stderr != "" {
		t.Fatalf("keys new: exit code %d, stderr %q", r.code, r.stderr)
	}
	first := strings.TrimSpace(r.stdout)
	if _, err := keyring.ParseKeyID(first); err != nil || strings.Count(r.stdout, "\n") != 1 {
		t.Fatalf("keys new printed %q, want one key id line", r.stdout)
	}
	file := filepath.Join(dir, "key-"+first+".xml")
	mustMode(t, file, 0o600)
	mustMode(t, dir, 0o700)
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("the directory holds %d entries, want only the key file (no temporary file left)", len(entries))
	}

	// The file is exactly what keyring writes for that key (which keyring's tests compare with
	// ASP.NET Core), and it has the dates of an immediate key.
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	k, err := keyring.ParseKey(data, keyring.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	el, err := keyring.MarshalKey(k)
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := keyring.FileXML(el); !bytes.Equal(data, want) {
		t.Errorf("key file is not in the form FileXML(MarshalKey) writes:\n%s", data)
	}
	// Element for element, the file is keyring's golden key file (checked there against what
	// ASP.NET Core writes) with this key's id, dates and master key.
	golden, err := os.ReadFile("../../testdata/keyxml/golden-key.file.xml")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := maskKeyFile(data), maskKeyFile(golden); got != want {
		t.Errorf("key file differs from testdata/keyxml/golden-key.file.xml beyond id, dates and master key:\n%s", cmp.Diff(want, got))
	}
	if !k.Created.Equal(t0) || !k.Activation.Equal(t0) || !k.Expiration.Equal(t0.Add(90*day)) {
		t.Errorf("first key dates %v %v %v, want created = activation = now, expiration +90d", k.Created, k.Activation, k.Expiration)
	}
	if k.Descriptor == nil || k.Descriptor.Encryption != keyring.AES256CBC || k.Descriptor.Validation != keyring.HMACSHA256 || k.Descriptor.MasterKey.Len() != 64 {
		t.Errorf("descriptor %+v, want AES-256-CBC + HMACSHA256 with a 64-byte master key", k.Descriptor)
	}
	if strings.Contains(r.stdout+r.stderr, base64Of(k.Descriptor.MasterKey.Bytes())) {
		t.Error("keys new printed the master key")
	}

	// keys list sees it as the active default key.
	r = runCLI(t, t0, "", "keys", "list", "--keys", dir)
	if r.code != exitOK || !strings.Contains(r.stdout, "*  "+first+"  active") {
		t.Errorf("keys list (exit %d) does not show %s as the active default:\n%s%s", r.code, first, r.stdout, r.stderr)
	}

	// Second key, a day later: the successor, activating when the first expires.
	r = runCLI(t, t0.Add(day), "", "keys", "new", "--dir", dir, "--lifetime", "30d")
	if r.code != exitOK {
		t.Fatalf("second keys new: exit code %d, stderr %q", r.code, r.stderr)
	}
	second := mustKeyFile(t, dir, strings.TrimSpace(r.stdout))
	if !second.Created.Equal(t0.Add(day)) || !second.Activation.Equal(t0.Add(90*day)) || !second.Expiration.Equal(t0.Add(120*day)) {
		t.Errorf("successor dates %v %v %v, want created now, activation = first's expiration, +30d", second.Created, second.Activation, second.Expiration)
	}

	// Third key: queued after the second.
	r = runCLI(t, t0.Add(2*day), "", "keys", "new", "--dir", dir, "--lifetime", "2160h")
	third := mustKeyFile(t, dir, strings.TrimSpace(r.stdout))
	if !third.Activation.Equal(t0.Add(120*day)) || !third.Expiration.Equal(t0.Add(210*day)) {
		t.Errorf("third key dates %v %v, want activation = second's expiration, +90d", third.Activation, third.Expiration)
	}

	// --activate-now: activation now whatever the ring holds.
	r = runCLI(t, t0.Add(3*day), "", "keys", "new", "--dir", dir, "--activate-now", "--lifetime", "7d")
	now := mustKeyFile(t, dir, strings.TrimSpace(r.stdout))
	if !now.Activation.Equal(t0.Add(3*day)) || !now.Expiration.Equal(t0.Add(10*day)) {
		t.Errorf("--activate-now dates %v %v, want now and +7d", now.Activation, now.Expiration)
	}

	// All keys expired: the next key activates now.
	later := t0.Add(400 * day)
	r = runCLI(t, later, "", "keys", "new", "--dir", dir)
	fresh := mustKeyFile(t, dir, strings.TrimSpace(r.stdout))
	if !fresh.Activation.Equal(later) {
		t.Errorf("key after every key expired activates %v, want now (%v)", fresh.Activation, later)
	}
}

func TestKeysNewRefusals(t *testing.T) {
	protected := t.TempDir()
	mustCopy(t, "../../testdata/keyxml/dpapi.xml", protected, "key-dpapi.xml")
	unreadable := t.TempDir()
	mustCopy(t, "../../testdata/keyxml/revocation-malformed.xml", unreadable, "revocation-x.xml")
	notADir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notADir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, dir, want string
	}{
		{"protected ring", protected, "writes unprotected keys only"},
		{"unreadable ring", unreadable, "refusing to add a key"},
		{"not a directory", notADir, "keys new: "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := os.ReadDir(tc.dir)
			r := runCLI(t, t0, "", "keys", "new", "--dir", tc.dir)
			if r.code != exitFailure || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("exit code %d, stderr %q; want 1 and %q", r.code, r.stderr, tc.want)
			}
			if after, _ := os.ReadDir(tc.dir); len(after) != len(before) {
				t.Errorf("the directory changed from %d to %d entries", len(before), len(after))
			}
		})
	}
}

// maskKeyFile replaces the id, the dates and the master key of a key file with placeholders.
func maskKeyFile(b []byte) string {
	s := regexp.MustCompile(`id="[0-9a-f-]{36}"`).ReplaceAllString(string(b), `id="ID"`)
	s = regexp.MustCompile(`>\d{4}-\d\d-\d\dT[0-9:.]+Z<`).ReplaceAllString(s, ">DATE<")
	return regexp.MustCompile(`<value>[A-Za-z0-9+/=]{88}</value>`).ReplaceAllString(s, "<value>MASTERKEY</value>")
}

func mustMode(tb testing.TB, path string, want os.FileMode) {
	tb.Helper()
	info, err := os.Stat(path)
	if err != nil {
		tb.Fatal(err)
	}
	if got := info.Mode().Perm(); got != want {
		tb.Errorf("%s has mode %o, want %o", path, got, want)
	}
}

func mustKeyFile(tb testing.TB, dir, id string) keyring.Key {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "key-"+id+".xml"))
	if err != nil {
		tb.Fatalf("reading the key file of %q: %v", id, err)
	}
	k, err := keyring.ParseKey(data, keyring.ParseOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	mustMode(tb, filepath.Join(dir, "key-"+id+".xml"), 0o600)
	return k
}
