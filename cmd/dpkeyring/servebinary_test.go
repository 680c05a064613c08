package main

import (
	"bufio"
	"encoding/json"
	"io"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestServeBinarySIGTERM builds the real binary, runs "dpkeyring serve", uses the printed node
// token over HTTP, and checks that SIGTERM shuts it down gracefully with exit code 0.
func TestServeBinarySIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "dpkeyring")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--data", filepath.Join(dir, "data"))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	urls, logs := make(chan string, 1), make(chan []string, 1)
	go func() {
		var lines []string
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines = append(lines, sc.Text())
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil && m["msg"] == "listening" {
				urls <- m["url"].(string)
			}
		}
		logs <- lines
	}()
	nodes := make(chan string, 1)
	go func() {
		nodeRE := regexp.MustCompile(`^  node\s+(dpk_\S+)`)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := nodeRE.FindStringSubmatch(sc.Text()); m != nil {
				nodes <- m[1]
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()

	var url, node string
	for url == "" || node == "" {
		select {
		case url = <-urls:
		case node = <-nodes:
		case <-time.After(30 * time.Second):
			t.Fatalf("the binary did not print its token and listening address (url %q)", url)
		}
	}
	if code, body := do(t, nil, "GET", url+"/v1/rings/default/keys", node, ""); code != 200 || !strings.Contains(body, "<key ") {
		t.Errorf("GET keys from the binary: %d %s", code, body)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Read the log to its end (the process exited) before Wait closes the pipes.
	var lines []string
	select {
	case lines = <-logs:
	case <-time.After(20 * time.Second):
		t.Fatal("no exit within 20s of SIGTERM")
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit after SIGTERM: %v, want 0", err)
	}
	if len(lines) == 0 || !strings.Contains(lines[len(lines)-1], `"msg":"stopped"`) {
		t.Errorf("log does not end with stopped:\n%s", strings.Join(lines, "\n"))
	}
}
