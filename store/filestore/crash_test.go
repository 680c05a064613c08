package filestore_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dpkeyring/dpkeyring/keyring"
	"github.com/dpkeyring/dpkeyring/store"
	"github.com/dpkeyring/dpkeyring/store/filestore"
)

// crashChildEnv makes the test binary a writer that appends keys until it is killed.
const crashChildEnv = "DPKEYRING_FILESTORE_CRASH_CHILD"

// maybeRunCrashChild runs the crash test's writer if this process is one: it appends new keys
// to ring "crash" of the store in $DPKEYRING_FILESTORE_CRASH_CHILD forever, taking the lock and
// writing metadata now and then, and prints the name of every key whose Append returned.
func maybeRunCrashChild() {
	dir, ok := os.LookupEnv(crashChildEnv)
	if !ok {
		return
	}
	err := func() error {
		ctx := context.Background()
		s, err := filestore.Open(ctx, filestore.Config{Dir: dir})
		if err != nil {
			return err
		}
		out := bufio.NewWriter(os.Stdout)
		for i := 0; ; i++ {
			now := time.Now()
			k, err := keyring.NewKey(now, now, now.AddDate(0, 0, 90))
			if err != nil {
				return err
			}
			name, err := keyring.ElementName(k.XML)
			if err != nil {
				return err
			}
			if _, err := s.Append(ctx, "crash", store.Element{Name: name, XML: k.XML}, 0); err != nil {
				return err
			}
			fmt.Fprintln(out, name)
			if err := out.Flush(); err != nil {
				return err
			}
			if i%5 == 0 {
				l, err := s.Lock(ctx, "crash", fmt.Sprintf("pid-%d", os.Getpid()), time.Second)
				if errors.Is(err, store.ErrLocked) {
					continue // a killed writer's lease has not expired yet
				}
				if err != nil {
					return err
				}
				m, err := s.Meta(ctx, "crash")
				if err != nil && !errors.Is(err, store.ErrNotFound) {
					return err
				}
				if _, err := s.PutMeta(ctx, "crash", []byte(name), m.Version, l.Token); err != nil {
					return err
				}
				if err := s.Unlock(ctx, l); err != nil {
					return err
				}
			}
		}
	}()
	fmt.Fprintf(os.Stderr, "crash child: %v\n", err)
	os.Exit(1)
}

// TestCrashMidWrite kills (SIGKILL) a process that appends keys as fast as it can, at random
// moments, several times over, and checks that the folder holds only whole key files (every
// acknowledged key among them), ignorable temporary files, and a store that works.
func TestCrashMidWrite(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	root := t.TempDir()
	dir := filepath.Join(root, "crash")
	acked := map[string]bool{}
	for round := range 5 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+root)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 1024)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		// Let it write a few keys, then kill it at a random moment.
		for range 3 {
			name, ok := <-lines
			if !ok {
				_ = cmd.Wait()
				t.Fatalf("round %d: writer stopped: %s", round, stderr.String())
			}
			acked[name] = true
		}
		n, err := rand.Int(rand.Reader, big.NewInt(60))
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(n.Int64()) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		for name := range lines {
			acked[name] = true
		}
		// Count what survived the kill before the next writer cleans up.
		temps := 0
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, de := range entries {
			switch name := de.Name(); {
			case strings.HasSuffix(name, ".xml"):
				data, err := os.ReadFile(filepath.Join(dir, name))
				if err != nil {
					t.Fatal(err)
				}
				want, err := keyring.FileXML(data)
				if err != nil || !bytes.Equal(data, want) {
					t.Fatalf("round %d: partial or malformed key file %s (%v):\n%s", round, name, err, data)
				}
				if en, err := keyring.ElementName(data); err != nil || en+".xml" != name {
					t.Errorf("round %d: file %s holds %q (%v)", round, name, en, err)
				}
			case strings.HasPrefix(name, ".tmp-"):
				temps++
			case strings.HasPrefix(name, ".dpkeyring"):
			default:
				t.Errorf("round %d: unexpected file %s", round, name)
			}
		}
		t.Logf("round %d: %d keys acknowledged so far, %d temporary files left", round, len(acked), temps)
	}

	s := mustOpen(t, root)
	snap, err := s.List(t.Context(), "crash")
	if err != nil {
		t.Fatalf("List after the crashes: %v", err)
	}
	listed := map[string]bool{}
	for _, e := range snap.Elements {
		listed[e.Name] = true
	}
	for name := range acked {
		if !listed[name] {
			t.Errorf("acknowledged key %s lost", name)
		}
	}
	if _, err := s.Meta(t.Context(), "crash"); err != nil {
		t.Errorf("Meta after the crashes: %v", err)
	}
	// The lease the killed writer may hold expires; then a new writer gets the lock.
	var l store.Lease
	for deadline := time.Now().Add(5 * time.Second); ; {
		l, err = s.Lock(t.Context(), "crash", "survivor", time.Minute)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("Lock after the crashes: %v", err)
	}
	k, err := keyring.NewKey(time.Now(), time.Now(), time.Now().AddDate(0, 0, 90))
	if err != nil {
		t.Fatal(err)
	}
	name, _ := keyring.ElementName(k.XML)
	v, err := s.Append(t.Context(), "crash", store.Element{Name: name, XML: k.XML}, l.Token)
	if err != nil || v <= snap.Version {
		t.Fatalf("Append after the crashes = %d, %v; want a version > %d", v, err, snap.Version)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range entries {
		if strings.HasPrefix(de.Name(), ".tmp-") {
			t.Errorf("stale temporary file %s left after the next write", de.Name())
		}
	}
}
