package validate

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dpkeyring/dpkeyring/keyring"
)

// The application name the guides use.
const guideAppName = "MyUmbracoSite"

// ringFolder makes a key folder with one key (dpkeyring keys new, as the guides' "old" ring)
// and returns the folder and the parsed ring.
func ringFolder(tb testing.TB) (string, *keyring.Ring) {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), "keys")
	if r := runBinary(tb, "", nil, "keys", "new", "--dir", dir); r.code != 0 {
		tb.Fatalf("keys new: exit %d\n%s", r.code, r.stderr)
	}
	paths, err := filepath.Glob(filepath.Join(dir, "*.xml"))
	if err != nil || len(paths) != 1 {
		tb.Fatalf("keys new wrote %d files (%v)", len(paths), err)
	}
	b, err := os.ReadFile(paths[0])
	if err != nil {
		tb.Fatal(err)
	}
	ring, err := keyring.ParseElements([][]byte{b}, keyring.ParseOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	return dir, ring
}

// umbracoCookieHeader returns a Cookie header holding an Umbraco backoffice cookie protected with
// ring under application name app, as a CM server writes it, and the key that protected it.
func umbracoCookieHeader(tb testing.TB, ring *keyring.Ring, app string) (string, keyring.KeyID) {
	tb.Helper()
	now := time.Now()
	k, err := ring.DefaultKey(now)
	if err != nil {
		tb.Fatal(err)
	}
	t := &keyring.Ticket{
		Scheme: "UmbracoBackOffice",
		Identities: []keyring.Identity{{
			AuthenticationType: "UmbracoBackOffice",
			Claims: []keyring.Claim{
				{Type: "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name", Value: "editor@domain.com"},
			},
		}},
	}
	value, err := ring.EncryptCookie(now, t, app, "UmbracoBackOffice")
	if err != nil {
		tb.Fatal(err)
	}
	var pairs []string
	for _, p := range keyring.ChunkCookie("UMB_UCONTEXT", value, 4050) {
		pairs = append(pairs, p.Name+"="+p.Value)
	}
	return "other=1; " + strings.Join(pairs, "; "), k.ID
}

// cookieJSON is the part of decrypt-cookie --json (and of the debug endpoint) the guides name.
type cookieJSON struct {
	KeyID     string `json:"key_id"`
	AppName   string `json:"app_name"`
	Diagnosis *struct {
		KeyID     string     `json:"key_id"`
		KeyInRing bool       `json:"key_in_ring"`
		KeyStatus string     `json:"key_status"`
		AppNames  []string   `json:"app_names_tried"`
		Purposes  [][]string `json:"purpose_chains_tried"`
		Hint      string     `json:"hint"`
	} `json:"diagnosis"`
	Code string `json:"code"`
}

// TestTroubleshootingCLI runs the guide's decrypt-cookie command (troubleshooting.md,
// integration-umbraco.md) on an Umbraco backoffice cookie: it decrypts with the issuing ring and
// application name, and the diagnosis names each documented cause otherwise.
func TestTroubleshootingCLI(t *testing.T) {
	dir, ring := ringFolder(t)
	otherDir, _ := ringFolder(t)
	header, keyID := umbracoCookieHeader(t, ring, guideAppName)

	run := func(keys, app string) (int, cookieJSON) {
		t.Helper()
		r := runBinary(t, "", nil, "decrypt-cookie", "--keys", keys, "--umbraco", "--app-name", app, "--cookie-header", header, "--json")
		var out cookieJSON
		if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
			t.Fatalf("decrypt-cookie --json printed no JSON (exit %d): %v\n%s%s", r.code, err, r.stdout, r.stderr)
		}
		return r.code, out
	}

	if code, out := run(dir, guideAppName); code != 0 || out.KeyID != keyID.String() || out.AppName != guideAppName {
		t.Errorf("the issuing ring: exit %d, key %s, app %q; want 0, %s, %q", code, out.KeyID, out.AppName, keyID, guideAppName)
	}

	code, out := run(otherDir, guideAppName)
	if code != 1 || out.Diagnosis == nil {
		t.Fatalf("another ring: exit %d, diagnosis %v; want exit 1 and a diagnosis", code, out.Diagnosis)
	}
	if d := out.Diagnosis; d.KeyID != keyID.String() || d.KeyInRing || !strings.Contains(d.Hint, "is not in this ring") {
		t.Errorf("another ring: diagnosis %+v; want key %s, key_in_ring false, a 'not in this ring' hint", *d, keyID)
	}

	code, out = run(dir, "Other")
	if code != 1 || out.Diagnosis == nil {
		t.Fatalf("another application name: exit %d; want 1 and a diagnosis", code)
	}
	if d := out.Diagnosis; !d.KeyInRing || d.KeyStatus != "active" || len(d.AppNames) != 1 || d.AppNames[0] != "Other" || len(d.Purposes) != 1 {
		t.Errorf("another application name: diagnosis %+v; want the key in the ring, active, app_names_tried [Other]", *d)
	}
}

// TestMigrationAndDebugEndpoint follows migration.md and troubleshooting.md with the real
// binary: import the ring nodes use before the server's first start, start the server with the
// same application name (it creates no key: the imported one stays the default), and ask its
// debug endpoint, with the documented request body, about a cookie a node issued before the
// cut-over and about one from another ring.
func TestMigrationAndDebugEndpoint(t *testing.T) {
	oldDir, oldRing := ringFolder(t)
	_, foreignRing := ringFolder(t)
	header, keyID := umbracoCookieHeader(t, oldRing, guideAppName)
	foreignHeader, foreignID := umbracoCookieHeader(t, foreignRing, guideAppName)

	data := t.TempDir()
	r := runBinary(t, "", nil, "import", "--from", oldDir, "--to", "file://"+data, "--ring", "umbraco")
	if r.code != 0 {
		t.Fatalf("import: exit %d\n%s", r.code, r.stderr)
	}
	debugAddr := freeLoopbackAddr(t)
	s := startServer(t, t.TempDir(), data, nil, "serve", "--addr", "127.0.0.1:0", "--data", data,
		"--ring", "umbraco", "--app-name", guideAppName, "--enable-debug-decrypt", "--debug-addr", debugAddr)
	s.waitStatus(t, "/readyz", 200)

	admin := readToken(t, s.tokenFile(t, "admin", "migration"))
	var status struct {
		DefaultKey *struct {
			KeyID string `json:"key_id"`
		} `json:"default_key"`
	}
	getJSON(t, s.url+"/v1/rings/umbraco/status", admin, &status)
	if status.DefaultKey == nil || status.DefaultKey.KeyID != keyID.String() {
		t.Errorf("after the import the server's default key is %+v, want the imported %s (the server must not make its own)", status.DefaultKey, keyID)
	}
	if files := keyFiles(t, filepath.Join(data, "umbraco")); len(files) != 1 {
		t.Errorf("the ring holds %d key files after the first start, want only the imported one", len(files))
	}

	debug := readToken(t, s.tokenFile(t, "debug", "support"))
	post := func(cookieHeader string) (int, cookieJSON) {
		t.Helper()
		body, _ := json.Marshal(map[string]any{"cookie_header": cookieHeader, "umbraco": true})
		req, err := http.NewRequest(http.MethodPost, "http://"+debugAddr+"/v1/rings/umbraco/debug/decrypt-cookie", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+debug)
		var resp *http.Response
		deadline := time.Now().Add(10 * time.Second)
		for {
			resp, err = http.DefaultClient.Do(req)
			if err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
			req.Body = io.NopCloser(bytes.NewReader(body))
		}
		if err != nil {
			t.Fatalf("POST debug/decrypt-cookie: %v", err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var out cookieJSON
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("debug endpoint answered %d with no JSON: %s", resp.StatusCode, b)
		}
		return resp.StatusCode, out
	}

	if code, out := post(header); code != http.StatusOK || out.KeyID != keyID.String() || out.AppName != guideAppName {
		t.Errorf("a cookie issued before the cut-over: %d, key %s, app %q; want 200, %s, %q (app_names defaults to --app-name)", code, out.KeyID, out.AppName, keyID, guideAppName)
	}
	time.Sleep(time.Second) // the endpoint is rate-limited to one request a second
	code, out := post(foreignHeader)
	if code != http.StatusUnprocessableEntity || out.Code != "decrypt_failed" || out.Diagnosis == nil {
		t.Fatalf("a cookie from another ring: %d %q, diagnosis %v; want 422 decrypt_failed with a diagnosis", code, out.Code, out.Diagnosis)
	}
	if d := out.Diagnosis; d.KeyID != foreignID.String() || d.KeyInRing {
		t.Errorf("a cookie from another ring: diagnosis %+v; want key %s not in the ring", *d, foreignID)
	}
}

// readToken returns the token in a file written by tokenFile.
func readToken(tb testing.TB, path string) string {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// getJSON GETs url with a bearer token and decodes the 200 answer into v.
func getJSON(tb testing.TB, url, token string, v any) {
	tb.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		tb.Fatalf("GET %s: %v\n%s", url, err, b)
	}
}
