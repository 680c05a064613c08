package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dpkeyring/dpkeyring/keyring"
	"github.com/google/go-cmp/cmp"
)

// servedElements reads the ring from the server (node token) and returns its elements by
// friendly name.
func servedElements(tb testing.TB, url, token string) map[string][]byte {
	tb.Helper()
	code, body := do(tb, nil, "GET", url+"/v1/rings/default/keys", token, "")
	if code != 200 {
		tb.Fatalf("GET keys: %d %s", code, body)
	}
	elems, err := keyring.SplitRepository([]byte(body))
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range elems {
		name, err := keyring.ElementName(e)
		if err != nil {
			tb.Fatal(err)
		}
		out[name] = e
	}
	return out
}

// checkFolder checks that dir holds exactly the served elements, each file being what
// FileSystemXmlRepository writes (keyring.FileXML), mode 0600, and that the folder parses as a
// ring; extra lists other *.xml files expected in the folder (foreign files).
func checkFolder(tb testing.TB, dir string, served map[string][]byte, extra ...string) *keyring.Ring {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.xml"))
	if err != nil {
		tb.Fatal(err)
	}
	var got, want []string
	var elems [][]byte
	for _, f := range files {
		got = append(got, filepath.Base(f))
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		elems = append(elems, b)
		name := strings.TrimSuffix(filepath.Base(f), ".xml")
		if el, ok := served[name]; ok {
			fileXML, err := keyring.FileXML(el)
			if err != nil {
				tb.Fatal(err)
			}
			if !bytes.Equal(b, fileXML) {
				tb.Errorf("%s is not keyring.FileXML of the served element", f)
			}
			if fi, _ := os.Stat(f); fi.Mode().Perm() != 0o600 {
				tb.Errorf("%s has mode %v, want 0600", f, fi.Mode().Perm())
			}
		}
	}
	for name := range served {
		want = append(want, name+".xml")
	}
	want = append(want, extra...)
	slices.Sort(got)
	slices.Sort(want)
	if diff := cmp.Diff(want, got); diff != "" {
		tb.Errorf("files in %s (-want +got):\n%s", dir, diff)
	}
	r, err := keyring.ParseElements(elems, keyring.ParseOptions{})
	if err != nil {
		tb.Fatalf("the folder %s does not parse: %v", dir, err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		tb.Errorf("folder mode %v (%v), want 0700", fi.Mode().Perm(), err)
	}
	return r
}

// checkNoTemp checks that no temporary file is left in dir (call it once the agent stopped).
func checkNoTemp(tb testing.TB, dir string) {
	tb.Helper()
	if tmp, _ := filepath.Glob(filepath.Join(dir, "*.tmp")); len(tmp) != 0 {
		tb.Errorf("temporary files left: %v", tmp)
	}
}

func TestAgentOnce(t *testing.T) {
	s := startServe(t, filepath.Join(t.TempDir(), "data"))
	admin, node := s.tokens["admin"], s.tokens["node"]
	// A second key, then an emergency rotation revoking the others: keys and a revocation.
	if code, body := do(t, nil, "POST", s.url+"/v1/rings/default/rotate", admin, `{"immediate":true,"revoke_previous":true,"reason":"test"}`); code != 200 {
		t.Fatalf("rotate: %d %s", code, body)
	}
	served := servedElements(t, s.url, node)
	tf := writeTokenFile(t, node)
	dir := filepath.Join(t.TempDir(), "keys")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	foreign := filepath.Join(dir, "key-00000000-0000-4000-8000-000000000001.xml")
	foreignXML := []byte("<key id=\"00000000-0000-4000-8000-000000000001\" version=\"1\"><creationDate>2020-01-01T00:00:00Z</creationDate></key>")
	if err := os.WriteFile(foreign, foreignXML, 0o644); err != nil {
		t.Fatal(err)
	}

	r := runCLI(t, time.Now(), "", "agent", "--server", s.url, "--token-file", tf, "--dir", dir, "--once", "--node-id", "once-1")
	if r.code != 0 {
		t.Fatalf("agent --once: exit %d\n%s", r.code, r.stderr)
	}
	ring := checkFolder(t, dir, served, filepath.Base(foreign))
	checkNoTemp(t, dir)
	if len(ring.Revocations()) != 1 || ring.Len() != 2 {
		t.Errorf("folder ring: %d keys, %d revocations; want 2 and 1", ring.Len(), len(ring.Revocations()))
	}
	if b, _ := os.ReadFile(foreign); !bytes.Equal(b, foreignXML) {
		t.Error("a file the agent did not write was changed")
	}
	var st agentState
	b, err := os.ReadFile(filepath.Join(dir, agentStateFile))
	if err != nil || json.Unmarshal(b, &st) != nil {
		t.Fatalf("state file: %v %s", err, b)
	}
	var names []string
	for n := range served {
		names = append(names, n)
	}
	slices.Sort(names)
	if diff := cmp.Diff(names, st.Written); diff != "" || st.Version == 0 || st.Ring != "default" {
		t.Errorf("state: version %d ring %q written (-want +got):\n%s", st.Version, st.Ring, diff)
	}
	for _, m := range logLines(t, r.stderr) {
		if m["msg"] == "synced" && m["files_created"] != float64(len(served)) {
			t.Errorf("synced log: %v", m)
		}
	}
	assertNoSecrets(t, s.data, []string{admin, node}, r.stderr)

	// Again: nothing is rewritten.
	before := map[string]time.Time{}
	files, _ := filepath.Glob(filepath.Join(dir, "*.xml"))
	for _, f := range files {
		fi, _ := os.Stat(f)
		before[f] = fi.ModTime()
	}
	time.Sleep(20 * time.Millisecond)
	if r := runCLI(t, time.Now(), "", "agent", "--server", s.url, "--token-file", tf, "--dir", dir, "--once"); r.code != 0 {
		t.Fatalf("second agent --once: exit %d\n%s", r.code, r.stderr)
	}
	for f, mt := range before {
		if fi, _ := os.Stat(f); !fi.ModTime().Equal(mt) {
			t.Errorf("%s was rewritten", f)
		}
	}

	// A file that differs from the served element is left as is, and --once fails.
	var victim string
	for n := range served {
		if strings.HasPrefix(n, "key-") {
			victim = filepath.Join(dir, n+".xml")
			break
		}
	}
	changed := []byte("<key id=\"x\" />")
	if err := os.WriteFile(victim, changed, 0o600); err != nil {
		t.Fatal(err)
	}
	r = runCLI(t, time.Now(), "", "agent", "--server", s.url, "--token-file", tf, "--dir", dir, "--once")
	if r.code != 1 || !strings.Contains(r.stderr, "differ from the served elements") {
		t.Errorf("conflicting file: exit %d\n%s", r.code, r.stderr)
	}
	if b, _ := os.ReadFile(victim); !bytes.Equal(b, changed) {
		t.Error("the agent rewrote a file that differs from the served element")
	}
}

func TestAgentOnceFailures(t *testing.T) {
	s := startServe(t, filepath.Join(t.TempDir(), "data"))
	tf := writeTokenFile(t, s.tokens["node"])
	bad := writeTokenFile(t, "dpk_unknown")
	dir := t.TempDir()
	kept := filepath.Join(dir, "key-00000000-0000-4000-8000-000000000002.xml")
	if err := os.WriteFile(kept, []byte("<key/>"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"server unreachable", []string{"--server", "http://127.0.0.1:1", "--token-file", tf, "--dir", dir, "--once", "--timeout", "1s"}, 1, "not reached within --timeout 1s"},
		{"unknown token", []string{"--server", s.url, "--token-file", bad, "--dir", dir, "--once"}, 1, "401"},
		{"unknown ring", []string{"--server", s.url, "--token-file", tf, "--dir", dir, "--once", "--ring", "nope"}, 1, "404"},
		{"missing token file", []string{"--server", s.url, "--token-file", tf + ".no", "--dir", dir, "--once"}, 1, "token file"},
		{"no dir", []string{"--server", s.url, "--token-file", tf, "--once"}, 2, "--dir"},
		{"no server", []string{"--token-file", tf, "--dir", dir}, 2, "--server"},
		{"no token file", []string{"--server", s.url, "--dir", dir}, 2, "--token-file"},
		{"bad node id", []string{"--server", s.url, "--token-file", tf, "--dir", dir, "--node-id", "a b"}, 2, "--node-id"},
		{"bad ring", []string{"--server", s.url, "--token-file", tf, "--dir", dir, "--ring", "../x"}, 2, "--ring"},
		{"argument", []string{"--server", s.url, "--token-file", tf, "--dir", dir, "extra"}, 2, "unexpected argument"},
		{"short wait", []string{"--server", s.url, "--token-file", tf, "--dir", dir, "--wait", "10ms"}, 2, "--wait"},
		{"backoff", []string{"--server", s.url, "--token-file", tf, "--dir", dir, "--min-backoff", "2s", "--max-backoff", "1s"}, 2, "backoff"},
		{"xml health file", []string{"--server", s.url, "--token-file", tf, "--dir", dir, "--health-file", filepath.Join(dir, "h.xml")}, 2, "--health-file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, time.Now(), "", append([]string{"agent"}, tc.args...)...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("exit %d, want %d; stderr %q should contain %q", r.code, tc.code, r.stderr, tc.want)
			}
			if strings.Contains(r.stderr, s.tokens["node"]) {
				t.Error("the token appears in the output")
			}
		})
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(files) != 1 || files[0] != kept {
		t.Errorf("failed runs changed the folder: %v", files)
	}
	if r := runCLI(t, time.Now(), "", "help", "agent"); r.code != 0 || !strings.Contains(r.stdout, "--health-addr") {
		t.Errorf("help agent: %d %q", r.code, r.stdout)
	}
}

// agentProc is an agent running in-process (the agent loop in a goroutine).
type agentProc struct {
	stderr *syncBuffer
	cancel context.CancelFunc
	done   chan error
}

func startAgent(tb testing.TB, args ...string) *agentProc {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	a := &agentProc{stderr: &syncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	c := &cli{getenv: func(string) string { return "" }, stdin: strings.NewReader(""), stdout: io.Discard, stderr: a.stderr, now: time.Now}
	go func() { a.done <- c.run(ctx, append([]string{"agent"}, args...)) }()
	tb.Cleanup(func() { a.stop(tb) })
	return a
}

func (a *agentProc) stop(tb testing.TB) error {
	tb.Helper()
	a.cancel()
	select {
	case err, ok := <-a.done:
		if ok {
			close(a.done)
		}
		return err
	case <-time.After(20 * time.Second):
		tb.Fatal("agent did not stop")
	}
	return nil
}

// logged returns the first log line with msg.
func (a *agentProc) logged(tb testing.TB, msg string) map[string]any {
	tb.Helper()
	for _, m := range logLines(tb, a.stderr.String()) {
		if m["msg"] == msg {
			return m
		}
	}
	return nil
}

// waitFiles waits until every dir holds name and returns the time the last one was written
// (its modification time).
func waitFiles(tb testing.TB, limit time.Duration, name string, dirs ...string) time.Time {
	tb.Helper()
	var last time.Time
	waitFor(tb, limit, func() bool {
		last = time.Time{}
		for _, d := range dirs {
			fi, err := os.Stat(filepath.Join(d, name))
			if err != nil {
				return false
			}
			if fi.ModTime().After(last) {
				last = fi.ModTime()
			}
		}
		return true
	})
	return last
}

// rotateNow posts an immediate rotation and returns the new key id and the time just before
// the request.
func rotateNow(tb testing.TB, url, admin, body string) (string, time.Time) {
	tb.Helper()
	start := time.Now()
	code, resp := do(tb, nil, "POST", url+"/v1/rings/default/rotate", admin, body)
	if code != 200 {
		tb.Fatalf("rotate: %d %s", code, resp)
	}
	var out rotateOutput
	if err := json.Unmarshal([]byte(resp), &out); err != nil || out.Result != "created" {
		tb.Fatalf("rotate answered %s", resp)
	}
	return out.KeyID, start
}

func TestAgentFollowsRotations(t *testing.T) {
	s := startServe(t, filepath.Join(t.TempDir(), "data"))
	admin, node := s.tokens["admin"], s.tokens["node"]
	tf := writeTokenFile(t, node)
	dir := filepath.Join(t.TempDir(), "keys")
	healthFile := filepath.Join(t.TempDir(), "health.json")
	a := startAgent(t, "--server", s.url, "--token-file", tf, "--dir", dir, "--node-id", "web-1",
		"--health-addr", "127.0.0.1:0", "--health-file", healthFile, "--min-backoff", "50ms", "--max-backoff", "200ms")
	var healthURL string
	waitFor(t, 10*time.Second, func() bool {
		if m := a.logged(t, "health endpoint listening"); m != nil {
			healthURL, _ = m["url"].(string)
		}
		return healthURL != "" && a.logged(t, "synced") != nil
	})

	id, start := rotateNow(t, s.url, admin, `{"immediate":true,"reason":"test"}`)
	written := waitFiles(t, 5*time.Second, "key-"+id+".xml", dir)
	// The < 1 s goal is asserted by TestAgentBinaryEndToEnd with the real binary; in-process
	// (under -race, with other packages' tests running) allow more.
	if d := written.Sub(start); d > 3*time.Second {
		t.Errorf("the new key reached the folder %s after the rotation, want < 1s", d)
	}
	served := servedElements(t, s.url, node)
	waitFor(t, 5*time.Second, func() bool {
		code, body := do(t, nil, "GET", healthURL, "", "")
		var h agentHealth
		return code == 200 && json.Unmarshal([]byte(body), &h) == nil && h.OK && h.FilesWritten == len(served)
	})
	checkFolder(t, dir, served)

	// The server's status shows the node with the current version.
	code, body := do(t, nil, "GET", s.url+"/v1/rings/default/status", admin, "")
	var status struct {
		Version uint64 `json:"version"`
		Nodes   []struct {
			Node    string `json:"node"`
			Version uint64 `json:"version"`
			Current bool   `json:"current"`
		} `json:"nodes"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &status) != nil {
		t.Fatalf("status: %d %s", code, body)
	}
	if !slices.ContainsFunc(status.Nodes, func(n struct {
		Node    string `json:"node"`
		Version uint64 `json:"version"`
		Current bool   `json:"current"`
	}) bool {
		return n.Node == "web-1" && n.Version == status.Version && n.Current
	}) {
		t.Errorf("status does not show web-1 current at version %d: %s", status.Version, body)
	}
	var hf agentHealth
	if b, err := os.ReadFile(healthFile); err != nil || json.Unmarshal(b, &hf) != nil || !hf.OK || hf.RingVersion != status.Version {
		t.Errorf("health file: %v %+v", err, hf)
	}

	// The server stops: the folder stays, the agent retries and stays healthy for a while.
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() bool { return a.logged(t, "sync failed; the folder is left as it is") != nil })
	checkFolder(t, dir, served)
	if code, _ := do(t, nil, "GET", healthURL, "", ""); code != 200 {
		t.Errorf("healthz during a short outage: %d, want 200", code)
	}
	if err := a.stop(t); err != nil {
		t.Errorf("agent stop: %v, want nil", err)
	}
	checkNoTemp(t, dir)
	assertNoSecrets(t, s.data, []string{admin, node}, a.stderr.String())
}

// TestAgentStartsWithoutServer: with no server the agent keeps the folder it has, reports
// unhealthy once the last sync is older than --health-max-age, and syncs when the server comes.
func TestAgentStartsWithoutServer(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	s := startServe(t, data)
	admin, node := s.tokens["admin"], s.tokens["node"]
	tf := writeTokenFile(t, node)
	dir := filepath.Join(t.TempDir(), "keys")
	if r := runCLI(t, time.Now(), "", "agent", "--server", s.url, "--token-file", tf, "--dir", dir, "--once"); r.code != 0 {
		t.Fatalf("agent --once: %d %s", r.code, r.stderr)
	}
	served := servedElements(t, s.url, node)
	url := s.url
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}

	a := startAgent(t, "--server", url, "--token-file", tf, "--dir", dir, "--health-addr", "127.0.0.1:0",
		"--health-max-age", "200ms", "--min-backoff", "20ms", "--max-backoff", "100ms")
	waitFor(t, 10*time.Second, func() bool { return strings.Count(a.stderr.String(), "sync failed") >= 3 })
	checkFolder(t, dir, served)
	m := a.logged(t, "health endpoint listening")
	if m == nil {
		t.Fatal("no health endpoint")
	}
	waitFor(t, 5*time.Second, func() bool {
		resp, err := http.Get(m["url"].(string))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	})

	// The server comes back on the same address: the agent syncs the newer ring.
	s2 := startServe(t, data, "--addr", strings.TrimPrefix(url, "http://"))
	id, _ := rotateNow(t, s2.url, admin, `{"immediate":true,"reason":"back"}`)
	waitFiles(t, 10*time.Second, "key-"+id+".xml", dir)
	checkFolder(t, dir, servedElements(t, s2.url, node))
	waitFor(t, 5*time.Second, func() bool { return a.logged(t, "server reachable again") != nil })
}

// TestAgentWritesASPNETCoreFileForm: a key file as ASP.NET Core's FileSystemXmlRepository wrote
// it (testdata/keyxml/v2-file-form.xml), dropped into the server's file store by a foreign
// writer, reaches the agent's folder byte for byte as it was.
func TestAgentWritesASPNETCoreFileForm(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	s := startServe(t, data)
	node := s.tokens["node"]
	dotnet, err := os.ReadFile("../../testdata/keyxml/v2-file-form.xml")
	if err != nil {
		t.Fatal(err)
	}
	const name = "key-3d6d01fd-c0e7-44ae-82dd-013b996b4093"
	if err := os.WriteFile(filepath.Join(data, "default", name+".xml"), dotnet, 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() bool { _, ok := servedElements(t, s.url, node)[name]; return ok })
	dir := filepath.Join(t.TempDir(), "keys")
	if r := runCLI(t, time.Now(), "", "agent", "--server", s.url, "--token-file", writeTokenFile(t, node), "--dir", dir, "--once"); r.code != 0 {
		t.Fatalf("agent --once: %d %s", r.code, r.stderr)
	}
	got, err := os.ReadFile(filepath.Join(dir, name+".xml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, dotnet) {
		t.Errorf("the agent's file differs from the file ASP.NET Core wrote:\n%s\nwant:\n%s", got, dotnet)
	}
	checkFolder(t, dir, servedElements(t, s.url, node))
}

// TestAgentReportsBrokenFolder: a foreign *.xml file that is not well-formed would make ASP.NET
// Core fail the whole key ring; the agent leaves it, reports it in /healthz (503) and fails
// --once.
func TestAgentReportsBrokenFolder(t *testing.T) {
	s := startServe(t, filepath.Join(t.TempDir(), "data"))
	tf := writeTokenFile(t, s.tokens["node"])
	dir := filepath.Join(t.TempDir(), "keys")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	broken := filepath.Join(dir, "notes.xml")
	if err := os.WriteFile(broken, []byte("not xml"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, time.Now(), "", "agent", "--server", s.url, "--token-file", tf, "--dir", dir, "--once")
	if r.code != 1 || !strings.Contains(r.stderr, "does not load as a key ring") {
		t.Errorf("--once with a broken folder: exit %d\n%s", r.code, r.stderr)
	}
	a := startAgent(t, "--server", s.url, "--token-file", tf, "--dir", dir, "--health-addr", "127.0.0.1:0")
	waitFor(t, 10*time.Second, func() bool { return a.logged(t, "synced") != nil })
	m := a.logged(t, "health endpoint listening")
	code, body := do(t, nil, "GET", m["url"].(string), "", "")
	var h agentHealth
	if code != 503 || json.Unmarshal([]byte(body), &h) != nil || h.OK || !strings.Contains(h.FolderError, "well-formed") {
		t.Errorf("healthz with a broken folder: %d %s", code, body)
	}
	if b, _ := os.ReadFile(broken); string(b) != "not xml" {
		t.Error("the agent changed a file it did not write")
	}
}

// TestAgentOnceRetries checks that --once retries an unreachable server with backoff until it
// answers, and gives up with exit 1 and one clear line once --timeout has passed.
func TestAgentOnceRetries(t *testing.T) {
	s := startServe(t, filepath.Join(t.TempDir(), "data"))
	node := s.tokens["node"]
	served := servedElements(t, s.url, node)
	tf := writeTokenFile(t, node)

	// A port that refuses connections for ~1 s, then forwards to the server.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	target, err := url.Parse(s.url)
	if err != nil {
		t.Fatal(err)
	}
	late := httptest.NewUnstartedServer(httputil.NewSingleHostReverseProxy(target))
	started := make(chan error, 1)
	go func() {
		time.Sleep(time.Second)
		ln, err := net.Listen("tcp", addr)
		if err == nil {
			late.Listener.Close()
			late.Listener = ln
			late.Start()
		}
		started <- err
	}()
	t.Cleanup(func() {
		if <-started == nil {
			late.Close()
		}
	})

	dir := filepath.Join(t.TempDir(), "keys")
	begin := time.Now()
	r := runCLI(t, time.Now(), "", "agent", "--server", "http://"+addr, "--token-file", tf, "--dir", dir,
		"--once", "--timeout", "20s", "--min-backoff", "100ms", "--max-backoff", "300ms")
	if r.code != 0 {
		t.Fatalf("agent --once against a late server: exit %d\n%s", r.code, r.stderr)
	}
	if took := time.Since(begin); took < 900*time.Millisecond {
		t.Errorf("synced after %v, before the server listened", took)
	}
	if !strings.Contains(r.stderr, `"retry_in"`) {
		t.Errorf("no retry logged:\n%s", r.stderr)
	}
	checkFolder(t, dir, served)

	// No server: exit 1 within the bound, one line saying why.
	begin = time.Now()
	r = runCLI(t, time.Now(), "", "agent", "--server", "http://127.0.0.1:1", "--token-file", tf, "--dir", t.TempDir(),
		"--once", "--timeout", "700ms", "--min-backoff", "100ms", "--max-backoff", "200ms")
	took := time.Since(begin)
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	last := lines[len(lines)-1]
	if r.code != 1 || !strings.HasPrefix(last, "dpkeyring: agent: ring default: server not reached within --timeout 700ms (") ||
		!strings.Contains(last, "server unavailable") {
		t.Errorf("no server: exit %d, last line %q", r.code, last)
	}
	if took < 700*time.Millisecond || took > 5*time.Second {
		t.Errorf("no server: gave up after %v, want about 700ms", took)
	}
	if n := strings.Count(r.stderr, `"retry_in"`); n < 2 {
		t.Errorf("no server: %d retries logged, want several:\n%s", n, r.stderr)
	}

	// A 401 is not retried.
	begin = time.Now()
	r = runCLI(t, time.Now(), "", "agent", "--server", s.url, "--token-file", writeTokenFile(t, "dpk_unknown"), "--dir", t.TempDir(),
		"--once", "--timeout", "20s")
	if took := time.Since(begin); r.code != 1 || !strings.Contains(r.stderr, "401") || took > 5*time.Second {
		t.Errorf("unknown token: exit %d after %v\n%s", r.code, took, r.stderr)
	}
}

// TestAgentTokenFileMode checks that the agent warns about a token file readable by all users,
// naming the others read bit, and not about group read (a Kubernetes Secret with fsGroup: 0440).
func TestAgentTokenFileMode(t *testing.T) {
	s := startServe(t, filepath.Join(t.TempDir(), "data"))
	tf := writeTokenFile(t, s.tokens["node"])
	for _, mode := range []os.FileMode{0o644, 0o604, 0o640, 0o440, 0o600} {
		t.Run(mode.String(), func(t *testing.T) {
			if err := os.Chmod(tf, mode); err != nil {
				t.Fatal(err)
			}
			r := runCLI(t, time.Now(), "", "agent", "--server", s.url, "--token-file", tf, "--dir", t.TempDir(), "--once")
			warned := strings.Contains(r.stderr, `"msg":"token file is readable by all users (the others read bit, o+r, is set); chmod o-r it"`) &&
				strings.Contains(r.stderr, `"mode":"`+mode.String()+`"`)
			if r.code != 0 || warned != (mode&0o004 != 0) || strings.Contains(r.stderr, s.tokens["node"]) {
				t.Errorf("exit %d, warned %v\n%s", r.code, warned, r.stderr)
			}
		})
	}
}
