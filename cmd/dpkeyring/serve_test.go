package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dpkeyring/dpkeyring/internal/tokens"
)

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// server is a "dpkeyring serve" running in-process.
type testServer struct {
	url       string // http(s)://127.0.0.1:PORT
	debugURL  string // set with --enable-debug-decrypt
	data      string
	tokens    map[string]string // printed tokens by name
	stdout    *syncBuffer
	stderr    *syncBuffer
	cancel    context.CancelFunc
	done      chan error
	stopped   bool
	stopError error
}

var printedTokenRE = regexp.MustCompile(`(?m)^  (\S+)\s+(dpk_[A-Za-z0-9_-]{43})  \(role`)

// startServe runs "serve --addr 127.0.0.1:0 --data DATA args..." and waits until it listens.
func startServe(tb testing.TB, data string, args ...string) *testServer {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &testServer{data: data, stdout: &syncBuffer{}, stderr: &syncBuffer{}, cancel: cancel, done: make(chan error, 1), tokens: map[string]string{}}
	c := &cli{getenv: func(string) string { return "" }, stdin: strings.NewReader(""), stdout: s.stdout, stderr: s.stderr, now: time.Now}
	all := append([]string{"serve", "--addr", "127.0.0.1:0", "--data", data}, args...)
	go func() { s.done <- c.run(ctx, all) }()
	tb.Cleanup(func() { s.stop(tb) })

	deadline := time.Now().Add(20 * time.Second)
	for s.url == "" || (s.debugURL == "" && strings.Contains(strings.Join(args, " "), "--enable-debug-decrypt")) {
		select {
		case err := <-s.done:
			s.stopped = true
			tb.Fatalf("serve ended at start: %v\nstderr:\n%s", err, s.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			tb.Fatalf("serve did not start listening\nstderr:\n%s", s.stderr.String())
		}
		for _, m := range logLines(tb, s.stderr.String()) {
			switch m["msg"] {
			case "listening":
				s.url, _ = m["url"].(string)
			case "debug decrypt endpoint enabled":
				s.debugURL = "http://" + m["addr"].(string)
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, m := range printedTokenRE.FindAllStringSubmatch(s.stdout.String(), -1) {
		s.tokens[m[1]] = m[2]
	}
	return s
}

// stop cancels the server's context (as SIGINT would) and waits for Run to return.
func (s *testServer) stop(tb testing.TB) error {
	tb.Helper()
	if s.stopped {
		return s.stopError
	}
	s.cancel()
	select {
	case s.stopError = <-s.done:
	case <-time.After(30 * time.Second):
		tb.Fatalf("serve did not stop within 30s")
	}
	s.stopped = true
	return s.stopError
}

func logLines(tb testing.TB, s string) []map[string]any {
	tb.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			tb.Fatalf("log line is not JSON: %q", sc.Text())
		}
		out = append(out, m)
	}
	return out
}

// get does an HTTP request with an optional bearer token and returns status and body.
func do(tb testing.TB, client *http.Client, method, url, token, body string) (int, string) {
	tb.Helper()
	req, err := http.NewRequestWithContext(tb.Context(), method, url, strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// writeTokenFile writes token to a 0600 file and returns its path.
func writeTokenFile(tb testing.TB, token string) string {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), "token")
	if err := os.WriteFile(p, []byte(token+"\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	return p
}

func TestServeFirstStartTokensRotateAndRestart(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	s := startServe(t, data)
	admin, node := s.tokens["admin"], s.tokens["node"]
	if admin == "" || node == "" || len(s.tokens) != 2 {
		t.Fatalf("first start printed tokens %v, want admin and node\nstdout:\n%s", s.tokens, s.stdout.String())
	}
	if !strings.Contains(s.stdout.String(), "STORE THEM NOW") {
		t.Errorf("first start output has no clear warning:\n%s", s.stdout.String())
	}
	raw, err := os.ReadFile(tokens.Path(data))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), admin) || !strings.Contains(string(raw), tokens.Hash(admin)) {
		t.Errorf("tokens.json must hold the hash, not the token")
	}

	// The ring "default" exists with a key, readable with the node token.
	code, body := do(t, nil, "GET", s.url+"/v1/rings/default/keys", node, "")
	if code != 200 || !strings.Contains(body, "<key ") {
		t.Fatalf("GET keys with the node token: %d %s", code, body)
	}
	if code, _ := do(t, nil, "GET", s.url+"/v1/rings/default/keys", "", ""); code != 401 {
		t.Errorf("GET keys without a token: %d, want 401", code)
	}
	if code, _ := do(t, nil, "GET", s.url+"/v1/rings/default/keys", tokens.Generate(), ""); code != 401 {
		t.Errorf("GET keys with an unknown token: %d, want 401", code)
	}
	if code, _ := do(t, nil, "POST", s.url+"/v1/rings/default/rotate", node, "{}"); code != 403 {
		t.Errorf("rotate with the node token: %d, want 403", code)
	}
	if code, _ := do(t, nil, "GET", s.url+"/healthz", "", ""); code != 200 {
		t.Errorf("healthz: %d", code)
	}

	// rotate through the server: nothing due right after the first key, then an emergency.
	tf := writeTokenFile(t, admin)
	r := runCLI(t, time.Now(), "", "rotate", "--server", s.url, "--token-file", tf, "--ring", "default")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "not due; next key due 20") {
		t.Errorf("rotate: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	r = runCLI(t, time.Now(), "", "rotate", "--server", s.url, "--token-file", tf, "--immediate", "--revoke-previous", "--reason", "test leak", "--json")
	var out rotateOutput
	if err := json.Unmarshal([]byte(r.stdout), &out); r.code != 0 || err != nil {
		t.Fatalf("rotate --immediate --json: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	if out.Result != "created" || out.KeyID == "" || len(out.Revoked) != 1 {
		t.Errorf("emergency rotation answered %+v, want created with 1 revoked key", out)
	}

	// A token created while the server runs works within a second or so, no restart.
	late := mustTokenCreate(t, data, "--role", "node", "--name", "late", "--ring", "default")
	waitFor(t, 5*time.Second, func() bool {
		code, _ := do(t, nil, "GET", s.url+"/v1/rings/default/keys", late, "")
		return code == 200
	})
	runCLI(t, time.Now(), "", "token", "revoke", "late", "--data", data)
	waitFor(t, 5*time.Second, func() bool {
		code, _ := do(t, nil, "GET", s.url+"/v1/rings/default/keys", late, "")
		return code == 401
	})

	if err := s.stop(t); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}

	// Audit: the emergency rotation with who, ring, key and reason.
	auditLog, err := os.ReadFile(filepath.Join(data, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, m := range logLines(t, string(auditLog)) {
		if m["action"] == "rotate" && m["result"] == "created" && m["token_name"] == "admin" {
			found = m["role"] == "admin" && m["ring"] == "default" && m["key_id"] == out.KeyID && m["reason"] == "test leak"
		}
	}
	if !found {
		t.Errorf("audit log lacks the emergency rotation by admin:\n%s", auditLog)
	}
	assertNoSecrets(t, data, []string{admin, node, late}, s.stderr.String(), string(auditLog))

	// A restart on the same data prints no tokens, and the old ones still work.
	s2 := startServe(t, data)
	if len(s2.tokens) != 0 || strings.Contains(s2.stdout.String(), "dpk_") {
		t.Errorf("restart printed tokens:\n%s", s2.stdout.String())
	}
	if code, _ := do(t, nil, "GET", s2.url+"/v1/rings/default/keys", node, ""); code != 200 {
		t.Errorf("node token after restart: %d", code)
	}
}

// assertNoSecrets fails if any token, token hash or master key of the file store appears in
// the given logs.
func assertNoSecrets(tb testing.TB, data string, toks []string, logs ...string) {
	tb.Helper()
	var secrets []string
	for _, t := range toks {
		secrets = append(secrets, t, tokens.Hash(t))
	}
	files, _ := filepath.Glob(filepath.Join(data, "*", "*.xml"))
	if len(files) == 0 {
		tb.Fatalf("no key files under %s", data)
	}
	valueRE := regexp.MustCompile(`<value>([^<]+)</value>`)
	for _, f := range files {
		b, _ := os.ReadFile(f)
		for _, m := range valueRE.FindAllStringSubmatch(string(b), -1) {
			secrets = append(secrets, m[1])
		}
	}
	for _, l := range logs {
		for _, sec := range secrets {
			if strings.Contains(l, sec) {
				tb.Errorf("a secret (%.8s…) appears in the logs", sec)
			}
		}
	}
}

func waitFor(tb testing.TB, limit time.Duration, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("condition not met within %s", limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestServeShutdownEndsLongPolls(t *testing.T) {
	s := startServe(t, t.TempDir(), "--shutdown-timeout", "10s")
	node := s.tokens["node"]
	req, _ := http.NewRequest("GET", s.url+"/v1/rings/default/keys?wait=100s", nil)
	req.Header.Set("Authorization", "Bearer "+node)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	etag := resp.Header.Get("ETag")
	resp.Body.Close()
	req.Header.Set("If-None-Match", etag)
	polled := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		polled <- err
	}()
	time.Sleep(300 * time.Millisecond) // let the poll start waiting
	start := time.Now()
	if err := s.stop(t); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("shutdown with a 100s long-poll took %s", d)
	}
	select {
	case <-polled:
	case <-time.After(5 * time.Second):
		t.Errorf("the long-poll did not end with the shutdown")
	}
	if !strings.Contains(s.stderr.String(), `"msg":"stopped"`) {
		t.Errorf("no stopped log line:\n%s", s.stderr.String())
	}
}

func TestServeDebugListener(t *testing.T) {
	data := t.TempDir()
	s := startServe(t, data, "--enable-debug-decrypt", "--debug-addr", "127.0.0.1:0")
	dbg := s.tokens["debug"]
	if dbg == "" {
		t.Fatalf("no debug token printed:\n%s", s.stdout.String())
	}
	path := "/v1/rings/default/debug/decrypt-cookie"
	body := `{"value":"CfDJ8notacookie"}`
	// Not on the API listener.
	if code, _ := do(t, nil, "POST", s.url+path, dbg, body); code != 404 {
		t.Errorf("debug route on the API listener: %d, want 404", code)
	}
	// On the debug listener: the debug token reaches the handler (which cannot decrypt junk),
	// the admin token is refused.
	code, resp := do(t, nil, "POST", s.debugURL+path, dbg, body)
	if code == 404 || code == 401 || code == 403 {
		t.Errorf("debug endpoint with the debug token: %d %s", code, resp)
	}
	if code, _ := do(t, nil, "POST", s.debugURL+path, s.tokens["admin"], body); code != 403 {
		t.Errorf("debug endpoint with the admin token: %d, want 403", code)
	}
	if strings.Contains(s.stderr.String(), "CfDJ8notacookie") {
		t.Errorf("the cookie appears in the log")
	}
	// A second start with the debug endpoint does not make another debug token.
	s.stop(t)
	s2 := startServe(t, data, "--enable-debug-decrypt", "--debug-addr", "127.0.0.1:0")
	if len(s2.tokens) != 0 {
		t.Errorf("second start printed tokens %v", s2.tokens)
	}
}

func TestServeScheduler(t *testing.T) {
	s := startServe(t, t.TempDir(), "--rotate-interval", "1s")
	waitFor(t, 10*time.Second, func() bool {
		return strings.Contains(s.stderr.String(), `"by":"scheduler"`)
	})
}

func TestServeBadConfig(t *testing.T) {
	r := runCLI(t, time.Now(), "", "serve", "--addr", "nope", "--data", t.TempDir())
	if r.code != 2 || !strings.Contains(r.stderr, "addr") {
		t.Errorf("bad addr: exit %d %q", r.code, r.stderr)
	}
	// A busy port is an operational failure (exit 1), reported before any token is printed.
	s := startServe(t, t.TempDir())
	data := t.TempDir()
	r = runCLI(t, time.Now(), "", "serve", "--addr", strings.TrimPrefix(s.url, "http://"), "--data", data)
	if r.code != 1 || !strings.Contains(r.stderr, "address already in use") || strings.Contains(r.stdout, "dpk_") {
		t.Errorf("busy port: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
}

func TestServeConfigFileRings(t *testing.T) {
	dir := t.TempDir()
	shopStore := filepath.Join(dir, "shop-store")
	cfgFile := filepath.Join(dir, "dpkeyring.json")
	mustWrite(t, cfgFile, []byte(`{
		"rings": [
			{"name": "cm", "app_name": "MyUmbracoSite"},
			{"name": "shop", "store": "file:`+shopStore+`", "key_lifetime": "30d", "lead_time": "3d"}
		]
	}`))
	data := filepath.Join(dir, "data")
	s := startServe(t, data, "--config", cfgFile)
	if n := len(keyFiles(t, data, "cm")); n != 1 {
		t.Errorf("ring cm has %d keys in the embedded store, want 1", n)
	}
	if n := len(keyFiles(t, shopStore, "shop")); n != 1 {
		t.Errorf("ring shop has %d keys in its own store, want 1", n)
	}
	if n := len(keyFiles(t, data, "default")); n != 0 {
		t.Errorf("ring default was created although the config names its rings")
	}
	shopOnly := mustTokenCreate(t, data, "--role", "node", "--name", "shop-node", "--ring", "shop")
	waitFor(t, 5*time.Second, func() bool {
		code, _ := do(t, nil, "GET", s.url+"/v1/rings/shop/keys", shopOnly, "")
		return code == 200
	})
	if code, _ := do(t, nil, "GET", s.url+"/v1/rings/cm/keys", shopOnly, ""); code != 403 {
		t.Errorf("token for shop reading cm: %d, want 403", code)
	}

	// A revocation through the API is audited with who, ring, key and reason.
	id := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(keyFiles(t, shopStore, "shop")[0]), "key-"), ".xml")
	if code, body := do(t, nil, "POST", s.url+"/v1/rings/shop/rotate", s.tokens["admin"], `{"immediate":true}`); code != 200 {
		t.Fatalf("rotate: %d %s", code, body)
	}
	code, body := do(t, nil, "POST", s.url+"/v1/rings/shop/keys/"+id+"/revoke", s.tokens["admin"], `{"reason":"test revoke"}`)
	if code != 200 {
		t.Fatalf("revoke: %d %s", code, body)
	}
	s.stop(t)
	auditLog, _ := os.ReadFile(filepath.Join(data, "audit.log"))
	var found bool
	for _, m := range logLines(t, string(auditLog)) {
		if m["action"] == "revoke" && m["token_name"] == "admin" && m["role"] == "admin" && m["ring"] == "shop" && m["key_id"] == id && m["reason"] == "test revoke" {
			found = true
		}
	}
	if !found {
		t.Errorf("no audit line for the revocation:\n%s", auditLog)
	}
}

// TestServeStoreFailureKeepsTokensUnprinted: a first start that cannot open its store prints
// no tokens, so the next (good) start still prints them.
func TestServeStoreFailureKeepsTokensUnprinted(t *testing.T) {
	data := t.TempDir()
	r := runCLI(t, time.Now(), "", "serve", "--addr", "127.0.0.1:0", "--data", data, "--store", "redis://127.0.0.1:1/0?dial_timeout=200ms")
	if r.code != 1 || !strings.Contains(r.stderr, "opening store") || strings.Contains(r.stdout, "dpk_") {
		t.Fatalf("unreachable store: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	s := startServe(t, data)
	if s.tokens["admin"] == "" {
		t.Errorf("the good start printed no admin token:\n%s", s.stdout.String())
	}
}

// TestServeCertificateProtectedKeys: with --cert the server reads master keys imported from
// ASP.NET Core that ProtectKeysWithCertificate encrypted; without, the key is listed with an
// error.
func TestServeCertificateProtectedKeys(t *testing.T) {
	const id = "2e5ace63-8fc8-4c97-9d0b-cb0860ee515d"
	keyXML, err := os.ReadFile("../../testdata/keyxml/cert-protected.xml")
	if err != nil {
		t.Fatal(err)
	}
	keyError := func(args ...string) string {
		t.Helper()
		data := t.TempDir()
		if err := os.MkdirAll(filepath.Join(data, "default"), 0o700); err != nil {
			t.Fatal(err)
		}
		mustWrite(t, filepath.Join(data, "default", "key-"+id+".xml"), keyXML)
		s := startServe(t, data, args...)
		defer s.stop(t)
		req, _ := http.NewRequest("GET", s.url+"/v1/rings/default/keys", nil)
		req.Header.Set("Authorization", "Bearer "+s.tokens["admin"])
		req.Header.Set("Accept", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var ring struct {
			Elements []struct {
				KeyID string `json:"key_id"`
				Error string `json:"error"`
			} `json:"elements"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&ring); err != nil {
			t.Fatal(err)
		}
		for _, e := range ring.Elements {
			if e.KeyID == id {
				return e.Error
			}
		}
		t.Fatalf("key %s not served", id)
		return ""
	}
	if e := keyError("--cert", "../../testdata/certs/test-only.pfx", "--cert-password-file", "../../testdata/certs/test-only.password"); e != "" {
		t.Errorf("with the certificate the key has error %q", e)
	}
	if e := keyError(); e == "" {
		t.Errorf("without the certificate the key has no error")
	}
}
