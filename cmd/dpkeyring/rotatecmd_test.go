package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dpkeyring/dpkeyring/keyring"
)

var rotateT0 = time.Date(2026, 11, 24, 4, 0, 0, 0, time.UTC)

// keyFiles returns the key files of ring in a file store.
func keyFiles(tb testing.TB, dir, ring string) []string {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join(dir, ring, "key-*.xml"))
	if err != nil {
		tb.Fatal(err)
	}
	return files
}

func TestRotateStore(t *testing.T) {
	dir := t.TempDir()
	spec := "file:" + dir
	r := runCLI(t, rotateT0, "", "rotate", "--store", spec, "--ring", "web")
	if r.code != 0 || r.stdout != "created key "+strings.TrimSuffix(strings.TrimPrefix(filepath.Base(keyFiles(t, dir, "web")[0]), "key-"), ".xml")+
		" activating 2026-11-24T04:00:00Z, expiring 2027-02-22T04:00:00Z\n" {
		t.Fatalf("first rotate: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	r = runCLI(t, rotateT0.Add(time.Hour), "", "rotate", "--store", spec, "--ring", "web")
	if r.code != 0 || r.stdout != "not due; next key due 2027-02-18T04:00:00Z\n" {
		t.Errorf("second rotate: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	r = runCLI(t, rotateT0.Add(time.Hour), "", "rotate", "--store", spec, "--ring", "web", "--json")
	var out rotateOutput
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || r.code != 0 {
		t.Fatalf("--json: %v %q", err, r.stdout)
	}
	if out.Result != "not due" || out.KeyID == "" || out.Revoked == nil || !out.NextDue.Equal(time.Date(2027, 2, 18, 4, 0, 0, 0, time.UTC)) {
		t.Errorf("--json %+v", out)
	}
	if n := len(keyFiles(t, dir, "web")); n != 1 {
		t.Errorf("%d keys after a not-due rotation, want 1", n)
	}
	// Emergency: a new key now, the old one revoked.
	r = runCLI(t, rotateT0.Add(2*time.Hour), "", "rotate", "--store", spec, "--ring", "web", "--immediate", "--revoke-previous", "--reason", "leak")
	if r.code != 0 || !strings.Contains(r.stdout, "activating 2026-11-24T06:00:00Z") || !strings.Contains(r.stdout, "revoked 1 key(s)") {
		t.Errorf("emergency: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
}

// TestRotateStoreConcurrent runs 50 rotations at once against one file store while a key is
// due: exactly one key is created.
func TestRotateStoreConcurrent(t *testing.T) {
	dir := t.TempDir()
	spec := "file:" + dir
	if r := runCLI(t, rotateT0, "", "rotate", "--store", spec); r.code != 0 {
		t.Fatalf("first key: %q", r.stderr)
	}
	due := rotateT0.Add(88 * 24 * time.Hour) // 2 days before the first key expires
	var wg sync.WaitGroup
	results := make([]result, 50)
	for i := range results {
		wg.Go(func() { results[i] = runCLI(t, due, "", "rotate", "--store", spec, "--timeout", "120s") })
	}
	wg.Wait()
	created := 0
	for i, r := range results {
		if r.code != 0 {
			t.Errorf("rotation %d: exit %d %q", i, r.code, r.stderr)
		}
		if strings.HasPrefix(r.stdout, "created key ") {
			created++
		}
	}
	if created != 1 {
		t.Errorf("%d rotations created a key, want exactly 1", created)
	}
	if n := len(keyFiles(t, dir, "default")); n != 2 {
		t.Errorf("%d keys in the store, want 2", n)
	}
	// The new key takes over exactly when the first expires.
	ring, err := keyring.ParseElements(readAll(t, keyFiles(t, dir, "default")), keyring.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	keys := ring.Keys()
	first, second := keys[0], keys[1]
	if first.Created.After(second.Created) {
		first, second = second, first
	}
	if !second.Activation.Equal(first.Expiration) {
		t.Errorf("successor activates %v, want the first key's expiration %v", second.Activation, first.Expiration)
	}
}

func readAll(tb testing.TB, files []string) [][]byte {
	tb.Helper()
	var out [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func TestRotateServerErrors(t *testing.T) {
	const token = "dpk_secretsecretsecretsecretsecretsecretsecre"
	var gotAuth, gotBody string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth = r.Header.Get("Authorization")
		b, _ := io.ReadAll(r.Body)
		gotBody = string(b)
		switch r.URL.Path {
		case "/v1/rings/busy/rotate":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`{"error": "another writer holds the ring lock", "code": "busy"}`))
		case "/v1/rings/proxy/rotate":
			w.WriteHeader(http.StatusBadGateway)
			w.Write([]byte("<html>\n<body>\n<h1>502 Bad Gateway</h1>\n</body>\n</html>\n"))
		case "/v1/rings/weird/rotate":
			w.Write([]byte(`{"result": "maybe"}`))
		default:
			w.Write([]byte(`{"result": "created", "key_id": "3d6d01fd-c0e7-44ae-82dd-013b996b4093", "activation": "2026-12-01T00:00:00Z", "expiration": "2027-03-01T00:00:00Z", "revoked": [], "version": 3, "message": "m"}`))
		}
	}))
	defer srv.Close()
	tf := writeTokenFile(t, token)

	r := runCLI(t, rotateT0, "", "rotate", "--server", srv.URL, "--token-file", tf, "--ring", "web", "--reason", "cron")
	if r.code != 0 || r.stdout != "created key 3d6d01fd-c0e7-44ae-82dd-013b996b4093 activating 2026-12-01T00:00:00Z, expiring 2027-03-01T00:00:00Z\n" {
		t.Errorf("created: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
	if gotAuth != "Bearer "+token || gotBody != `{"immediate":false,"reason":"cron","revoke_previous":false}` {
		t.Errorf("request: auth %q body %q", gotAuth, gotBody)
	}

	tests := []struct {
		ring, want string
	}{
		{"busy", "dpkeyring: rotate: ring busy: server answered 503 Service Unavailable: another writer holds the ring lock (busy)\n"},
		{"proxy", "dpkeyring: rotate: ring proxy: server answered 502 Bad Gateway: <html> <body> <h1>502 Bad Gateway</h1> </body> </html>\n"},
		{"weird", "unexpected answer"},
	}
	for _, tc := range tests {
		t.Run(tc.ring, func(t *testing.T) {
			r := runCLI(t, rotateT0, "", "rotate", "--server", srv.URL, "--token-file", tf, "--ring", tc.ring)
			if r.code != 1 || !strings.Contains(r.stderr, tc.want) || strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("exit %d stderr %q, want exit 1 and one line with %q", r.code, r.stderr, tc.want)
			}
			if strings.Contains(r.stdout+r.stderr, token) {
				t.Errorf("the token was printed")
			}
		})
	}

	// A token file readable by all users works with a warning naming the others read bit, that
	// does not show the token; group read (a Kubernetes Secret with fsGroup: 0440) is no warning.
	for _, mode := range []os.FileMode{0o644, 0o604, 0o640, 0o440, 0o600} {
		if err := os.Chmod(tf, mode); err != nil {
			t.Fatal(err)
		}
		r = runCLI(t, rotateT0, "", "rotate", "--server", srv.URL, "--token-file", tf)
		warned := strings.Contains(r.stderr, "warning: token file "+tf+" has mode "+mode.String()+": readable by all users (the others read bit, o+r, is set)")
		if r.code != 0 || warned != (mode&0o004 != 0) || strings.Contains(r.stderr, token) {
			t.Errorf("token file mode %v: exit %d stderr %q", mode, r.code, r.stderr)
		}
	}
	// An unreachable server is a failure.
	r = runCLI(t, rotateT0, "", "rotate", "--server", "http://127.0.0.1:1", "--token-file", tf, "--timeout", "5s")
	if r.code != 1 {
		t.Errorf("unreachable server: exit %d %q", r.code, r.stderr)
	}
}

func TestRotateUsage(t *testing.T) {
	tf := writeTokenFile(t, "dpk_x")
	empty := writeTokenFile(t, "")
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no mode", []string{"rotate"}, 2, "--server URL (with --token-file) or --store SPEC is required"},
		{"both modes", []string{"rotate", "--server", "http://x", "--store", "file:x"}, 2, "not both"},
		{"revoke without immediate", []string{"rotate", "--store", "file:x", "--revoke-previous", "--reason", "r"}, 2, "needs --immediate"},
		{"revoke without reason", []string{"rotate", "--store", "file:x", "--immediate", "--revoke-previous"}, 2, "needs --reason"},
		{"bad ring", []string{"rotate", "--store", "file:x", "--ring", "A B"}, 2, "--ring"},
		{"policy flags with server", []string{"rotate", "--server", "http://x", "--token-file", tf, "--key-lifetime", "30d"}, 2, "apply to --store mode"},
		{"cert with server", []string{"rotate", "--server", "http://x", "--token-file", tf, "--cert", "c.pfx"}, 2, "apply to --store mode"},
		{"cert password without cert", []string{"rotate", "--store", "file:x", "--cert-password-file", "p"}, 2, "--cert-password-file needs --cert"},
		{"no token file", []string{"rotate", "--server", "http://127.0.0.1:1"}, 2, "--token-file is required"},
		{"empty token file", []string{"rotate", "--server", "http://127.0.0.1:1", "--token-file", empty}, 1, "is empty"},
		{"bad server URL", []string{"rotate", "--server", "ftp://x", "--token-file", tf}, 2, "want http(s)://"},
		{"short lifetime", []string{"rotate", "--store", "file:x", "--key-lifetime", "1d"}, 2, "key lifetime"},
		{"bad store", []string{"rotate", "--store", "nope:x"}, 1, "invalid store spec"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, rotateT0, "", tc.args...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("exit %d stderr %q; want exit %d and %q", r.code, r.stderr, tc.code, tc.want)
			}
		})
	}
}
