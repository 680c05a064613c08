package validate

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// repoRoot is the repository root, relative to this package's directory.
const repoRoot = "../../.."

// The binary under test, built once by TestMain as the Dockerfile builds it.
var (
	binPath  string
	buildErr error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "dpkeyring-validate-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "dpkeyring")
	buildErr = buildLikeDockerfile(binPath)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildLikeDockerfile runs the go build command of the Dockerfile's build stage in the
// repository root, with its output redirected to out.
func buildLikeDockerfile(out string) error {
	df, err := parseDockerfile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		return err
	}
	b, err := df.goBuild()
	if err != nil {
		return err
	}
	cmd := exec.Command("go", b.args(out)...)
	cmd.Dir = filepath.Join(repoRoot, b.dir)
	cmd.Env = append(os.Environ(), b.env...)
	if output, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %v\n%s", strings.Join(b.args(out), " "), err, output)
	}
	return nil
}

// mustBinary returns the path of the built binary, failing the test if the build failed.
func mustBinary(tb testing.TB) string {
	tb.Helper()
	if buildErr != nil {
		tb.Fatalf("building dpkeyring as the Dockerfile does: %v", buildErr)
	}
	return binPath
}

// result is a finished command.
type result struct {
	code           int
	stdout, stderr string
}

// runBinary runs the binary with args and env (added to a minimal environment), in dir when not
// empty, and waits at most 2 minutes.
func runBinary(tb testing.TB, dir string, env []string, args ...string) result {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, mustBinary(tb), args...)
	cmd.Dir = dir
	cmd.Env = append(baseEnv(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			tb.Fatalf("running dpkeyring %s: %v", strings.Join(args, " "), err)
		}
		code = ee.ExitCode()
	}
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// baseEnv is the environment the binary runs with: no DPKEYRING_* settings leak in from the
// developer's shell.
func baseEnv() []string {
	return []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir()}
}

// usageOf returns the usage text of a command ("serve", "token create"), as printed by -h.
func usageOf(tb testing.TB, command string) string {
	tb.Helper()
	args := append(strings.Fields(command), "-h")
	r := runBinary(tb, "", nil, args...)
	if r.code != 0 {
		tb.Fatalf("dpkeyring %s -h: exit %d\n%s%s", command, r.code, r.stdout, r.stderr)
	}
	return r.stdout + r.stderr
}

// process is a long-running dpkeyring process (a server or an agent).
type process struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	stderr bytes.Buffer
	stdout bytes.Buffer
	done   chan struct{}
	err    error
}

// lockedWriter serialises the writes of the process's pipes with reads by the test.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// start starts the binary with args and env in dir; the process is killed at the end of the
// test if still running.
func start(tb testing.TB, dir string, env []string, args ...string) *process {
	tb.Helper()
	p := &process{done: make(chan struct{})}
	p.cmd = exec.Command(mustBinary(tb), args...)
	p.cmd.Dir = dir
	p.cmd.Env = append(baseEnv(), env...)
	p.cmd.Stdout = lockedWriter{&p.mu, &p.stdout}
	p.cmd.Stderr = lockedWriter{&p.mu, &p.stderr}
	if err := p.cmd.Start(); err != nil {
		tb.Fatalf("starting dpkeyring %s: %v", strings.Join(args, " "), err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	tb.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// output returns what the process printed so far.
func (p *process) output() (stdout, stderr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stdout.String(), p.stderr.String()
}

// exited reports whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and returns the exit code, failing if the process takes longer than wait.
func (p *process) stop(tb testing.TB, wait time.Duration) int {
	tb.Helper()
	if !p.exited() {
		p.cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case <-p.done:
	case <-time.After(wait):
		_, stderr := p.output()
		tb.Fatalf("dpkeyring did not exit within %v of SIGTERM\n%s", wait, stderr)
	}
	if p.err == nil {
		return 0
	}
	if ee, ok := p.err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}

// server is a running dpkeyring serve.
type server struct {
	*process
	url  string // http://127.0.0.1:PORT
	data string // its --data folder
}

// startServer runs "dpkeyring serve" with args (which must make it listen on a loopback port,
// e.g. --addr 127.0.0.1:0) and waits for its "listening" log line.
func startServer(tb testing.TB, dir, data string, env []string, args ...string) *server {
	tb.Helper()
	p := start(tb, dir, env, args...)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		_, stderr := p.output()
		sc := bufio.NewScanner(strings.NewReader(stderr))
		for sc.Scan() {
			var line struct {
				Msg string `json:"msg"`
				URL string `json:"url"`
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" && line.URL != "" {
				return &server{process: p, url: line.URL, data: data}
			}
		}
		if p.exited() {
			tb.Fatalf("dpkeyring %s exited before listening:\n%s", strings.Join(args, " "), stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	_, stderr := p.output()
	tb.Fatalf("dpkeyring %s: no listening line within 30s:\n%s", strings.Join(args, " "), stderr)
	return nil
}

// get fetches path from the server and returns the status code.
func (s *server) get(tb testing.TB, path string) int {
	tb.Helper()
	resp, err := http.Get(s.url + path)
	if err != nil {
		tb.Fatalf("GET %s: %v", path, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// waitStatus polls path until it answers want, for at most 10 seconds.
func (s *server) waitStatus(tb testing.TB, path string, want int) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	got := 0
	for time.Now().Before(deadline) {
		if got = s.get(tb, path); got == want {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	tb.Fatalf("GET %s: status %d, want %d", path, got, want)
}

// tokenFile creates a token with the real binary in the server's data folder and writes it,
// mode 0600, to a new file, whose path it returns.
func (s *server) tokenFile(tb testing.TB, role, name string, rings ...string) string {
	tb.Helper()
	args := []string{"token", "create", "--role", role, "--name", name, "--data", s.data}
	for _, r := range rings {
		args = append(args, "--ring", r)
	}
	r := runBinary(tb, "", nil, args...)
	if r.code != 0 {
		tb.Fatalf("dpkeyring %s: exit %d\n%s", strings.Join(args, " "), r.code, r.stderr)
	}
	path := filepath.Join(tb.TempDir(), "token")
	if err := os.WriteFile(path, []byte(r.stdout), 0o600); err != nil {
		tb.Fatal(err)
	}
	// The running server re-reads the tokens file at most once a second.
	token := strings.TrimSpace(r.stdout)
	deadline := time.Now().Add(10 * time.Second)
	for {
		req, err := http.NewRequest(http.MethodGet, s.url+"/v1/rings", nil)
		if err != nil {
			tb.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			tb.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return path
		}
		if time.Now().After(deadline) {
			tb.Fatalf("the server does not accept the new %s token: GET /v1/rings answered %d", role, resp.StatusCode)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// keyFiles returns the key-*.xml files in dir.
func keyFiles(tb testing.TB, dir string) []string {
	tb.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "key-*.xml"))
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// waitKeyFiles waits up to 10 seconds for dir to hold at least one key file.
func waitKeyFiles(tb testing.TB, dir string, p *process) []string {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if files := keyFiles(tb, dir); len(files) > 0 {
			return files
		}
		if p != nil && p.exited() {
			_, stderr := p.output()
			tb.Fatalf("the agent exited before writing a key file:\n%s", stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	tb.Fatalf("no key file in %s within 10s", dir)
	return nil
}

// replaceFlag returns args with the value of --name replaced by value (both "--name value" and
// "--name=value" forms). It fails the test when the flag is missing.
func replaceFlag(tb testing.TB, args []string, name, value string) []string {
	tb.Helper()
	out := append([]string(nil), args...)
	for i, a := range out {
		if a == name && i+1 < len(out) {
			out[i+1] = value
			return out
		}
		if strings.HasPrefix(a, name+"=") {
			out[i] = name + "=" + value
			return out
		}
	}
	tb.Fatalf("%q has no %s flag", strings.Join(args, " "), name)
	return nil
}

// flagValue returns the value of --name in args, or "" and false.
func flagValue(args []string, name string) (string, bool) {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1], true
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// hasFlag reports whether the boolean flag --name is in args.
func hasFlag(args []string, name string) bool {
	for _, a := range args {
		if a == name || a == name+"=true" {
			return true
		}
	}
	return false
}
