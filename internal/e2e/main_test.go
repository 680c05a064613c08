package e2e_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binary is the dpkeyring binary built once by TestMain.
var binary string

// Generous timeouts: the tests must pass on a loaded 2-core machine.
const (
	startTimeout = 60 * time.Second
	httpTimeout  = 30 * time.Second
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "dpkeyring-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	// DPKEYRING_E2E_BINARY runs the tests against a prebuilt binary instead.
	if b := os.Getenv("DPKEYRING_E2E_BINARY"); b != "" {
		binary = b
		return m.Run()
	}
	binary = filepath.Join(dir, "dpkeyring")
	args := []string{"build", "-o", binary}
	if os.Getenv("DPKEYRING_E2E_RACE") == "1" {
		args = append(args, "-race")
	}
	cmd := exec.Command(goTool(), append(args, "github.com/dpkeyring/dpkeyring/cmd/dpkeyring")...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building dpkeyring:", err)
		return 1
	}
	return m.Run()
}

// goTool is the go command: the one on PATH (the one running these tests, under go test).
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "go"
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// requireServer skips (or, under CI=true, fails) a test whose prerequisite is missing.
func requireServer(t testing.TB, ok bool, why string) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true and %s", why)
	}
	t.Skip(why)
}

// childEnv is the environment of child processes: ours without DPKEYRING_* settings, plus extra.
func childEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DPKEYRING_") && !strings.HasPrefix(kv, "VAULT_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// server is one running "dpkeyring serve" process.
type server struct {
	url      string // http://127.0.0.1:PORT
	debugURL string // the debug listener, if enabled
	data     string
	tokens   map[string]string // first tokens printed at start, by name
	pid      int
	logPath  string
	// stdoutPath holds what the server printed (the first tokens).
	stdoutPath string
	wantDebug  bool
	cmd        *exec.Cmd
	exited     chan struct{}
	stopOnce   sync.Once
}

type serverOptions struct {
	data  string   // data folder; default a new temp dir
	env   []string // extra environment
	args  []string // extra flags
	debug bool     // --enable-debug-decrypt on a free loopback port
}

var tokenLineRE = regexp.MustCompile(`(?m)^\s+(\S+)\s+(dpk_\S+)\s+\(role`)

// startServer starts "dpkeyring serve --addr 127.0.0.1:0" and waits until it listens.
func startServer(t testing.TB, o serverOptions) *server {
	t.Helper()
	s := startServerAsync(t, o)
	s.wait(t)
	return s
}

// startServerAsync starts the process; call wait before using it.
func startServerAsync(t testing.TB, o serverOptions) *server {
	t.Helper()
	if o.data == "" {
		o.data = t.TempDir()
	}
	dir := t.TempDir()
	args := []string{"serve", "--addr", "127.0.0.1:0", "--data", o.data}
	if o.debug {
		args = append(args, "--enable-debug-decrypt", "--debug-addr", "127.0.0.1:0")
	}
	args = append(args, o.args...)
	s := &server{data: o.data, logPath: filepath.Join(dir, "server.log"), exited: make(chan struct{})}
	stdout, err := os.Create(filepath.Join(dir, "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(s.logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, args...)
	cmd.Env = childEnv(o.env...)
	cmd.Stdout, cmd.Stderr = stdout, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting dpkeyring serve: %v", err)
	}
	stdout.Close()
	logf.Close()
	s.cmd, s.pid = cmd, cmd.Process.Pid
	go func() {
		_ = cmd.Wait()
		close(s.exited)
	}()
	s.tokens = map[string]string{}
	s.wantDebug = o.debug
	s.stdoutPath = filepath.Join(dir, "stdout")
	t.Cleanup(func() { s.stop(t) })
	return s
}

// wait blocks until the server logged "listening" (and the debug listener, if enabled), and
// reads the tokens it printed.
func (s *server) wait(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(startTimeout)
	for {
		logs := s.logs()
		for _, line := range strings.Split(logs, "\n") {
			var rec struct {
				Msg  string `json:"msg"`
				URL  string `json:"url"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal([]byte(line), &rec) != nil {
				continue
			}
			switch rec.Msg {
			case "listening":
				s.url = rec.URL
			case "debug decrypt endpoint enabled":
				s.debugURL = "http://" + rec.Addr
			}
		}
		if s.url != "" && (s.debugURL != "" || !s.wantDebug) {
			break
		}
		select {
		case <-s.exited:
			t.Fatalf("dpkeyring serve exited (%v) before listening; log:\n%s\nstdout:\n%s", s.cmd.ProcessState, s.logs(), s.stdout())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("dpkeyring serve not listening after %s; log:\n%s", startTimeout, logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	b, err := os.ReadFile(s.stdoutPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range tokenLineRE.FindAllStringSubmatch(string(b), -1) {
		s.tokens[m[1]] = m[2]
	}
}

func (s *server) stdout() string {
	b, _ := os.ReadFile(s.stdoutPath)
	return string(b)
}

func (s *server) logs() string {
	b, _ := os.ReadFile(s.logPath)
	return string(b)
}

// stop ends the server with SIGTERM (SIGKILL after 20s) and fails t if it did not stop
// cleanly after a SIGTERM.
func (s *server) stop(t testing.TB) {
	s.stopOnce.Do(func() {
		select {
		case <-s.exited:
			return
		default:
		}
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(20 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.exited
			t.Errorf("dpkeyring serve (pid %d) did not stop within 20s of SIGTERM; log:\n%s", s.pid, s.logs())
		}
	})
}

// logged reports whether the server's log has a JSON record with msg (and, if set, the
// attribute key=value).
func (s *server) logged(msg, key, value string) bool {
	for _, line := range strings.Split(s.logs(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil || rec["msg"] != msg {
			continue
		}
		if key == "" || fmt.Sprint(rec[key]) == value {
			return true
		}
	}
	return false
}

// runCLI runs the dpkeyring binary with args and returns stdout, stderr and the exit code.
func runCLI(t testing.TB, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = childEnv(env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code = 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("dpkeyring %s: %v", strings.Join(args, " "), err)
		}
		code = ee.ExitCode()
	}
	return out.String(), errb.String(), code
}

// createToken runs "dpkeyring token create" against data and returns the printed token.
func createToken(t testing.TB, data, role, name string, rings ...string) string {
	t.Helper()
	args := []string{"token", "create", "--role", role, "--name", name, "--data", data}
	for _, r := range rings {
		args = append(args, "--ring", r)
	}
	out, errOut, code := runCLI(t, nil, args...)
	tok := strings.TrimSpace(out)
	if code != 0 || !strings.HasPrefix(tok, "dpk_") {
		t.Fatalf("token create: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	return tok
}

// response is one HTTP answer, body read.
type response struct {
	status int
	header http.Header
	body   []byte
}

var httpClient = &http.Client{
	Timeout: httpTimeout,
	Transport: &http.Transport{
		Proxy:               nil,
		MaxIdleConnsPerHost: 64,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
	},
}

// request is one HTTP request of a test.
type request struct {
	method, url, token, body string
	header                   map[string]string
}

func (r request) do(ctx context.Context) (response, error) {
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	method := r.method
	if method == "" {
		method = http.MethodGet
	}
	req, err := http.NewRequestWithContext(ctx, method, r.url, body)
	if err != nil {
		return response{}, err
	}
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	if r.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range r.header {
		if v == "" {
			req.Header.Del(k)
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// mustDo sends r and fails t on a transport error.
func mustDo(t testing.TB, r request) response {
	t.Helper()
	resp, err := r.do(context.Background())
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, r.url, err)
	}
	return resp
}

// errorCode checks that resp is a JSON error answer of the documented shape
// {"error": "non-empty", "code": "..."} with nothing else, and returns the code ("" and an
// error if not).
func errorCode(resp response) (string, error) {
	if ct := resp.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return "", fmt.Errorf("content type %q, want application/json; body %q", ct, resp.body)
	}
	var m map[string]any
	if err := json.Unmarshal(resp.body, &m); err != nil {
		return "", fmt.Errorf("body %q is not a JSON object: %v", resp.body, err)
	}
	msg, _ := m["error"].(string)
	code, _ := m["code"].(string)
	if msg == "" || code == "" {
		return "", fmt.Errorf("body %q lacks a non-empty error and code", resp.body)
	}
	for k := range m {
		if k != "error" && k != "code" && k != "diagnosis" {
			return code, fmt.Errorf("body %q has an undocumented field %q", resp.body, k)
		}
	}
	return code, nil
}

// decodeJSON decodes resp's body into v, failing t.
func decodeJSON(t testing.TB, resp response, v any) {
	t.Helper()
	if err := json.Unmarshal(resp.body, v); err != nil {
		t.Fatalf("decoding %q: %v", resp.body, err)
	}
}

// eventually polls f until it returns nil or timeout passes, then fails t with f's last error.
func eventually(t testing.TB, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// metricValue returns the value of a metric line "name{labels} value" (labels as written,
// "" for none) from a Prometheus text answer.
func metricValue(body []byte, series string) (float64, bool) {
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return f, err == nil
		}
	}
	return 0, false
}
