package storetest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dpkeyring/dpkeyring/store"
)

// childEnv is the environment variable that turns a re-executed test binary into a child of the
// multi-process race. Its value is a JSON childConfig.
const childEnv = "DPKEYRING_STORETEST_CHILD"

// childConfig is what a child process of the multi-process race does.
type childConfig struct {
	Spec   string `json:"spec"`
	Ring   string `json:"ring"`
	Label  string `json:"label"` // shared by the children of one race: elements derive from it
	Index  int    `json:"index"`
	Own    int    `json:"own"`    // elements only this child appends
	Shared int    `json:"shared"` // elements every child appends
	Locks  int    `json:"locks"`  // lock tenures this child takes
	Out    string `json:"out"`    // file for the JSON list of tenures
}

func ownLabel(c childConfig, k int) string {
	return fmt.Sprintf("%s/child-%d/own-%d", c.Label, c.Index, k)
}
func heldLabel(c childConfig, k int) string {
	return fmt.Sprintf("%s/child-%d/held-%d", c.Label, c.Index, k)
}
func sharedLabel(c childConfig, k int) string { return fmt.Sprintf("%s/shared-%d", c.Label, k) }

// MaybeRunChild runs this process as a child of the multi-process race and exits, if the
// process was started as one (an environment variable says so); otherwise it returns at once.
// Call it first thing in the backend's TestMain, with the same open function as
// [Harness.Open]:
//
//	func TestMain(m *testing.M) {
//		storetest.MaybeRunChild(openSpec)
//		os.Exit(m.Run())
//	}
func MaybeRunChild(open func(ctx context.Context, spec string) (Store, error)) {
	v, ok := os.LookupEnv(childEnv)
	if !ok {
		return
	}
	if err := runChild(v, open, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "storetest child: %v\n", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func runChild(config string, open func(ctx context.Context, spec string) (Store, error), stdin io.Reader, stdout io.Writer) error {
	var c childConfig
	if err := json.Unmarshal([]byte(config), &c); err != nil {
		return fmt.Errorf("bad %s: %w", childEnv, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := open(ctx, c.Spec)
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	defer s.Close()

	// Start together: say ready, wait for the parent's go.
	if _, err := fmt.Fprintln(stdout, "ready"); err != nil {
		return err
	}
	if _, err := bufio.NewReader(stdin).ReadString('\n'); err != nil {
		return fmt.Errorf("waiting for go: %w", err)
	}

	owner := fmt.Sprintf("child-%d/pid-%d", c.Index, os.Getpid())
	var holds []holdRecord
	for k := range max(c.Own, c.Shared, c.Locks) {
		if k < c.Own {
			if err := appendDerived(ctx, s, c.Ring, ownLabel(c, k), 0); err != nil {
				return err
			}
		}
		if k < c.Shared {
			if err := appendDerived(ctx, s, c.Ring, sharedLabel(c, (k+c.Index)%c.Shared), 0); err != nil {
				return err
			}
		}
		if k < c.Locks {
			rec, err := holdOnce(ctx, s, c.Ring, owner, time.Millisecond, func(l store.Lease) error {
				return appendDerived(ctx, s, c.Ring, heldLabel(c, k), l.Token)
			})
			if err != nil {
				return err
			}
			holds = append(holds, rec)
		}
	}
	out, err := json.Marshal(holds)
	if err != nil {
		return err
	}
	return os.WriteFile(c.Out, out, 0o600)
}

func appendDerived(ctx context.Context, s Store, ring, label string, fence store.Fence) error {
	e, err := derivedKeyElement(label)
	if err != nil {
		return err
	}
	if _, err := s.Append(ctx, ring, e, fence); err != nil {
		return fmt.Errorf("appending %s (fence %d): %w", e.Name, fence, err)
	}
	return nil
}

type child struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Reader
	stderr bytes.Buffer
}

func testProcesses(t *testing.T, h Harness) {
	n := h.Processes
	if n < 0 {
		t.Skip("backend opted out of the multi-process race (Harness.Processes < 0)")
	}
	if n == 0 {
		n = 3
	}
	s, spec := open(t, h)
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	base := childConfig{Spec: spec, Ring: "race", Label: hex.EncodeToString(rnd[:]), Own: 8, Shared: 6, Locks: 5}

	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	children := make([]*child, n)
	for i := range children {
		c := base
		c.Index = i
		c.Out = filepath.Join(dir, fmt.Sprintf("holds-%d.json", i))
		config, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		ch := &child{cmd: exec.CommandContext(ctx, os.Args[0], "-test.run=^$", "-test.count=1")}
		ch.cmd.Env = append(os.Environ(), childEnv+"="+string(config))
		ch.cmd.Stderr = &ch.stderr
		if ch.stdin, err = ch.cmd.StdinPipe(); err != nil {
			t.Fatal(err)
		}
		stdout, err := ch.cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		ch.stdout = bufio.NewReader(stdout)
		if err := ch.cmd.Start(); err != nil {
			t.Fatalf("starting child %d: %v", i, err)
		}
		t.Cleanup(func() {
			if ch.cmd.ProcessState == nil {
				_ = ch.cmd.Process.Kill()
				_ = ch.cmd.Wait()
			}
		})
		children[i] = ch
	}
	for i, ch := range children {
		line, err := ch.stdout.ReadString('\n')
		if line != "ready\n" {
			_ = ch.cmd.Wait()
			t.Fatalf("child %d did not start (%v): does the backend's TestMain call storetest.MaybeRunChild? stderr:\n%s", i, err, ch.stderr.String())
		}
	}
	for _, ch := range children {
		_, _ = io.WriteString(ch.stdin, "go\n")
		_ = ch.stdin.Close()
	}
	var holds []holdRecord
	for i, ch := range children {
		_, _ = io.Copy(io.Discard, ch.stdout)
		if err := ch.cmd.Wait(); err != nil {
			t.Errorf("child %d: %v; stderr:\n%s", i, err, ch.stderr.String())
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("holds-%d.json", i)))
		if err != nil {
			t.Errorf("child %d wrote no tenures: %v", i, err)
			continue
		}
		var hs []holdRecord
		if err := json.Unmarshal(data, &hs); err != nil {
			t.Errorf("child %d tenures: %v", i, err)
		}
		holds = append(holds, hs...)
	}
	if t.Failed() {
		return
	}
	if len(holds) != n*base.Locks {
		t.Errorf("%d tenures recorded, want %d", len(holds), n*base.Locks)
	}
	checkHolds(t, holds)

	var want []store.Element
	for i := range n {
		c := base
		c.Index = i
		for k := range c.Own {
			want = append(want, DerivedKeyElement(t, ownLabel(c, k)))
		}
		for k := range c.Locks {
			want = append(want, DerivedKeyElement(t, heldLabel(c, k)))
		}
	}
	for k := range base.Shared {
		want = append(want, DerivedKeyElement(t, sharedLabel(base, k)))
	}
	snap := mustList(t, s, base.Ring)
	if diff := cmp.Diff(sortedByName(want), sortedByName(snap.Elements), bytesEqual); diff != "" {
		t.Errorf("elements after the multi-process race (-want +got):\n%s", diff)
	}
}
