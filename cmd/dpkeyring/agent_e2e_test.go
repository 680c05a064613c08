package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// proc is a process of the real binary, with its output captured.
type proc struct {
	cmd    *exec.Cmd
	stdout *syncBuffer
	stderr *syncBuffer
	done   chan struct{}
	err    error // set when done is closed
}

func startProc(tb testing.TB, bin string, args ...string) *proc {
	tb.Helper()
	p := &proc{cmd: exec.Command(bin, args...), stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	tb.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitExit waits for the process to end and returns its exit code.
func (p *proc) waitExit(tb testing.TB, limit time.Duration) int {
	tb.Helper()
	select {
	case <-p.done:
	case <-time.After(limit):
		tb.Fatalf("%v did not exit within %s", p.cmd.Args[1], limit)
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	if p.err != nil {
		tb.Fatal(p.err)
	}
	return 0
}

// buildBinary builds cmd/dpkeyring into a temporary directory.
func buildBinary(tb testing.TB) string {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), "dpkeyring")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		tb.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startServeBinary runs "dpkeyring serve" on addr and waits until it listens; it returns the
// process and the tokens printed on a first start.
func startServeBinary(tb testing.TB, bin, addr, data string) (*proc, map[string]string) {
	tb.Helper()
	p := startProc(tb, bin, "serve", "--addr", addr, "--data", data)
	waitFor(tb, 30*time.Second, func() bool {
		if p.exited() {
			tb.Fatalf("serve exited: %v\n%s", p.err, p.stderr.String())
		}
		return strings.Contains(p.stderr.String(), `"msg":"listening"`)
	})
	toks := map[string]string{}
	for _, m := range printedTokenRE.FindAllStringSubmatch(p.stdout.String(), -1) {
		toks[m[1]] = m[2]
	}
	return p, toks
}

// vmRSS returns a process's resident set size in KiB from /proc/PID/status, or 0.
func vmRSS(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	return 0
}

// nodesCurrent reports whether the server's status shows every node at the ring's version.
func nodesCurrent(tb testing.TB, url, admin string, nodes ...string) bool {
	tb.Helper()
	code, body := do(tb, nil, "GET", url+"/v1/rings/default/status", admin, "")
	if code != 200 {
		return false
	}
	var st struct {
		Version uint64 `json:"version"`
		Nodes   []struct {
			Node    string `json:"node"`
			Version uint64 `json:"version"`
		} `json:"nodes"`
	}
	if json.Unmarshal([]byte(body), &st) != nil {
		return false
	}
	held := map[string]uint64{}
	for _, n := range st.Nodes {
		held[n.Node] = n.Version
	}
	for _, n := range nodes {
		if held[n] != st.Version {
			return false
		}
	}
	return true
}

// TestAgentBinaryEndToEnd is the end-to-end test of issue 5: a server and 3 agents, each a
// process of the real binary. A rotation reaches all 3 folders within 1 s; with the server
// killed the folders stay intact and readable; after a restart (same data, same tokens) the
// agents converge again; an emergency rotation with revocation reaches all 3 within 1 s.
func TestAgentBinaryEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs processes")
	}
	bin := buildBinary(t)
	data := filepath.Join(t.TempDir(), "data")
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	url := "http://" + addr
	srv, toks := startServeBinary(t, bin, addr, data)
	admin, node := toks["admin"], toks["node"]
	if admin == "" || node == "" {
		t.Fatalf("no tokens printed:\n%s", srv.stdout.String())
	}
	tf := writeTokenFile(t, node)

	var agents []*proc
	var dirs, names []string
	for i := range 3 {
		dir := filepath.Join(t.TempDir(), "keys")
		name := fmt.Sprintf("agent-%d", i)
		dirs, names = append(dirs, dir), append(names, name)
		agents = append(agents, startProc(t, bin, "agent", "--server", url, "--token-file", tf, "--dir", dir,
			"--node-id", name, "--min-backoff", "100ms", "--max-backoff", "500ms",
			"--health-file", filepath.Join(t.TempDir(), "health.json")))
	}
	served := servedElements(t, url, node)
	for name := range served {
		waitFiles(t, 30*time.Second, name+".xml", dirs...)
	}

	// A rotation reaches every folder within 1 s.
	id, start := rotateNow(t, url, admin, `{"immediate":true,"reason":"e2e"}`)
	last := waitFiles(t, 10*time.Second, "key-"+id+".xml", dirs...)
	t.Logf("rotation reached 3 agent processes in %s", last.Sub(start))
	if d := last.Sub(start); d > time.Second {
		t.Errorf("rotation reached the 3 folders after %s, want < 1s", d)
	}
	served = servedElements(t, url, node)
	for _, d := range dirs {
		checkFolder(t, d, served)
	}
	waitFor(t, 10*time.Second, func() bool { return nodesCurrent(t, url, admin, names...) })

	// The server dies: folders stay intact and readable, the agents keep running.
	if err := srv.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	srv.waitExit(t, 10*time.Second)
	for _, a := range agents {
		waitFor(t, 10*time.Second, func() bool { return strings.Contains(a.stderr.String(), "sync failed") })
	}
	for i, d := range dirs {
		checkFolder(t, d, served)
		if agents[i].exited() {
			t.Fatalf("agent %d exited with the server down: %v\n%s", i, agents[i].err, agents[i].stderr.String())
		}
	}
	if rss := vmRSS(agents[0].cmd.Process.Pid); rss > 0 {
		t.Logf("agent RSS (VmRSS) %d KiB", rss)
	}

	// Restart on the same data: the old tokens work, the agents converge again.
	_, again := startServeBinary(t, bin, addr, data)
	if len(again) != 0 {
		t.Errorf("restart printed tokens again: %v", again)
	}
	waitFor(t, 20*time.Second, func() bool { return nodesCurrent(t, url, admin, names...) })

	// Emergency rotation revoking the previous keys: within 1 s in every folder.
	id, start = rotateNow(t, url, admin, `{"immediate":true,"revoke_previous":true,"reason":"e2e leak"}`)
	served = servedElements(t, url, node)
	var revocations []string
	for name := range served {
		if strings.HasPrefix(name, "revocation-") {
			revocations = append(revocations, name)
		}
	}
	if len(revocations) == 0 {
		t.Fatal("the emergency rotation served no revocation")
	}
	last = waitFiles(t, 10*time.Second, "key-"+id+".xml", dirs...)
	for _, r := range revocations {
		if l := waitFiles(t, 10*time.Second, r+".xml", dirs...); l.After(last) {
			last = l
		}
	}
	t.Logf("emergency rotation with revocation reached 3 agent processes in %s", last.Sub(start))
	if d := last.Sub(start); d > time.Second {
		t.Errorf("emergency rotation reached the 3 folders after %s, want < 1s", d)
	}
	for _, d := range dirs {
		ring := checkFolder(t, d, served)
		for _, k := range ring.Keys() {
			if k.ID.String() != id && !ring.IsRevoked(k) {
				t.Errorf("%s: key %s is not revoked in the folder's ring", d, k.ID)
			}
		}
	}

	// --once with the real binary: exit codes.
	once := startProc(t, bin, "agent", "--server", url, "--token-file", tf, "--dir", filepath.Join(t.TempDir(), "k"), "--once")
	if code := once.waitExit(t, 30*time.Second); code != 0 {
		t.Errorf("agent --once: exit %d\n%s", code, once.stderr.String())
	}
	down := startProc(t, bin, "agent", "--server", "http://127.0.0.1:1", "--token-file", tf, "--dir", t.TempDir(), "--once", "--timeout", "1s")
	if code := down.waitExit(t, 30*time.Second); code != 1 {
		t.Errorf("agent --once with no server: exit %d, want 1", code)
	}
	usage := startProc(t, bin, "agent", "--once")
	if code := usage.waitExit(t, 30*time.Second); code != 2 {
		t.Errorf("agent with no flags: exit %d, want 2", code)
	}

	// SIGTERM stops the agents with exit code 0; their logs are JSON and hold no secrets.
	for i, a := range agents {
		if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if code := a.waitExit(t, 10*time.Second); code != 0 {
			t.Errorf("agent %d: exit %d after SIGTERM\n%s", i, code, a.stderr.String())
		}
		logLines(t, a.stderr.String())
		checkNoTemp(t, dirs[i])
		assertNoSecrets(t, data, []string{admin, node}, a.stderr.String())
	}
}
