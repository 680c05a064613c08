package main

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/dpkeyring/dpkeyring/keyring"
)

func base64Of(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// mustProtect protects plaintext with the key of ring that has id, for appName and purposes,
// through the keyring API.
func mustProtect(tb testing.TB, ring *keyring.Ring, id string, plaintext, appName string, purposes ...string) string {
	tb.Helper()
	kid, err := keyring.ParseKeyID(id)
	if err != nil {
		tb.Fatal(err)
	}
	k, err := ring.Key(kid)
	if err != nil {
		tb.Fatal(err)
	}
	p, err := keyring.ProtectWithKey(k, []byte(plaintext), keyring.Purposes(appName, purposes...))
	if err != nil {
		tb.Fatal(err)
	}
	return keyring.Base64URLEncode(p)
}

func TestUnprotect(t *testing.T) {
	dir := goldenRing(t)
	ring := mustLoadDir(t, dir)
	plaintext := "hello, \x00 binary \xff world"
	current := mustProtect(t, ring, idCurrent, plaintext, "/var/www/site", "Purpose.A", "Purpose.B")
	expired := mustProtect(t, ring, idOld, plaintext, "", "P")
	revoked := mustProtect(t, ring, idRevoked, plaintext, "", "P")
	other := mustProtect(t, mustRing(t, mustKey(t, "66666666-6666-4666-8666-666666666666", t0, t0, t0.Add(time.Hour), 9)),
		"66666666-6666-4666-8666-666666666666", plaintext, "", "P")
	raw, _ := keyring.Base64URLDecode(current)
	padded := base64.URLEncoding.EncodeToString(raw)
	standard := base64.StdEncoding.EncodeToString(raw)
	tampered := []byte(current)
	tampered[len(tampered)-5] ^= 'A' ^ 'B'

	ok := []struct {
		name  string
		stdin string
		args  []string
	}{
		{"argument", "", []string{"--app-name", "/var/www/site", "--purpose", "Purpose.A", "--purpose", "Purpose.B", current}},
		{"stdin", current + "\n", []string{"--app-name", "/var/www/site", "--purpose", "Purpose.A", "--purpose", "Purpose.B", "-"}},
		{"flags after the payload", "", []string{current, "--purpose", "Purpose.A", "--purpose", "Purpose.B", "--app-name=/var/www/site"}},
		{"padded base64url", "", []string{"--app-name", "/var/www/site", "--purpose", "Purpose.A", "--purpose", "Purpose.B", padded}},
		{"standard base64", "", []string{"--app-name", "/var/www/site", "--purpose", "Purpose.A", "--purpose", "Purpose.B", standard}},
		{"expired key", "", []string{"--purpose", "P", expired}},
	}
	for _, tc := range ok {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"unprotect", "--keys", dir}, tc.args...)
			r := runCLI(t, t0, tc.stdin, args...)
			if r.code != exitOK || r.stderr != "" {
				t.Fatalf("exit code %d, stderr %q", r.code, r.stderr)
			}
			if r.stdout != plaintext {
				t.Errorf("stdout %q, want the plaintext %q exactly", r.stdout, plaintext)
			}
		})
	}

	fail := []struct {
		name string
		args []string
		want string
	}{
		{"key not in ring", []string{"--purpose", "P", other}, "protected with key 66666666-6666-4666-8666-666666666666, which is not in the key ring (4 keys)"},
		{"revoked key", []string{"--purpose", "P", revoked}, "protected with key " + idRevoked + ", which is revoked"},
		{"wrong purpose", []string{"--app-name", "/var/www/site", "--purpose", "Purpose.A", current},
			`cannot decrypt with key ` + idCurrent + `: wrong purposes or application name, or the payload is corrupt (tried application name "/var/www/site", purposes ["Purpose.A"])`},
		{"missing application name", []string{"--purpose", "Purpose.A", "--purpose", "Purpose.B", current}, "wrong purposes or application name"},
		{"tampered", []string{"--app-name", "/var/www/site", "--purpose", "Purpose.A", "--purpose", "Purpose.B", string(tampered)}, "or the payload is corrupt"},
		{"not base64", []string{"--purpose", "P", "not*base64"}, "the payload is not base64url text"},
		{"not a payload", []string{"--purpose", "P", "aGVsbG8gd29ybGQsIHRoaXMgaXMgbm90IGEgcGF5bG9hZA"}, "not a Data Protection payload"},
		{"missing ring", []string{"--keys", dir + "/missing", "--purpose", "P", current}, "no such file or directory"},
	}
	for _, tc := range fail {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"unprotect", "--keys", dir}, tc.args...)
			r := runCLI(t, t0, "", args...)
			if r.code != exitFailure {
				t.Errorf("exit code %d, want %d", r.code, exitFailure)
			}
			if r.stdout != "" {
				t.Errorf("stdout %q, want nothing", r.stdout)
			}
			if !strings.HasPrefix(r.stderr, "dpkeyring: unprotect: ") || !strings.Contains(r.stderr, tc.want) || strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("stderr %q, want one line containing %q", r.stderr, tc.want)
			}
		})
	}
}

func TestUnprotectUnopenableKey(t *testing.T) {
	dir := t.TempDir()
	mustCopy(t, "../../testdata/keyxml/dpapi.xml", dir, "key-dpapi.xml")
	ring := mustLoadDir(t, dir)
	k := ring.Keys()[0]
	// A payload naming the DPAPI key (its body does not matter: the key cannot be opened).
	raw := append([]byte{0x09, 0xF0, 0xC9, 0xF0}, dotNetBytes(k.ID)...)
	raw = append(raw, make([]byte, 64)...)
	r := runCLI(t, t0, "", "unprotect", "--keys", dir, keyring.Base64URLEncode(raw))
	if r.code != exitFailure || !strings.Contains(r.stderr, "cannot decrypt with key "+k.ID.String()) || !strings.Contains(strings.ToLower(r.stderr), "dpapi") {
		t.Errorf("exit code %d, stderr %q; want 1 and a message naming the key and DPAPI", r.code, r.stderr)
	}
}

func dotNetBytes(id keyring.KeyID) []byte {
	b := id.DotNetBytes()
	return b[:]
}

func mustRing(tb testing.TB, keys ...keyring.Key) *keyring.Ring {
	tb.Helper()
	r, err := keyring.NewRing(keys, nil, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}
