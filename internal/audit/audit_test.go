package audit_test

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/dpkeyring/dpkeyring/internal/audit"
	"github.com/google/go-cmp/cmp"
)

func TestRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "audit.log")
	l, err := audit.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 24, 4, 0, 0, 0, time.FixedZone("x", 3600))
	l.Record(t.Context(), audit.Event{Time: t0, Action: audit.ActionRotate, Role: "admin", TokenName: "cron",
		Ring: "default", KeyID: "3d6d01fd-c0e7-44ae-82dd-013b996b4093", Revoked: []string{"a", "b"}, Reason: "leak", Result: audit.ResultCreated})
	l.Record(t.Context(), audit.Event{Action: audit.ActionRevoke, Ring: "r", Result: audit.ResultFailed, Error: "boom"})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// Reopening appends.
	l, err = audit.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	l.Record(t.Context(), audit.Event{Action: audit.ActionDecrypt, Result: audit.ResultOK})
	l.Close()

	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	lines := readLines(t, path)
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3", len(lines))
	}
	want := map[string]any{
		"time": "2026-11-24T03:00:00Z", "level": "INFO", "msg": "audit", "action": "rotate", "role": "admin",
		"token_name": "cron", "ring": "default", "key_id": "3d6d01fd-c0e7-44ae-82dd-013b996b4093",
		"revoked": []any{"a", "b"}, "reason": "leak", "result": "created",
	}
	if diff := cmp.Diff(want, lines[0]); diff != "" {
		t.Errorf("first record (-want +got):\n%s", diff)
	}
	if lines[1]["error"] != "boom" || lines[1]["result"] != "failed" {
		t.Errorf("second record %v", lines[1])
	}
	if _, has := lines[1]["role"]; has {
		t.Errorf("empty role written: %v", lines[1])
	}
	if lines[2]["action"] != "decrypt" {
		t.Errorf("third record %v", lines[2])
	}
}

func TestConcurrentRecordsStayLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := audit.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() { l.Record(t.Context(), audit.Event{Action: audit.ActionRotate, Ring: "default"}) })
	}
	wg.Wait()
	l.Close()
	if n := len(readLines(t, path)); n != 50 {
		t.Errorf("%d records, want 50", n)
	}
	if l.Err() != nil {
		t.Errorf("Err() = %v", l.Err())
	}
}

func readLines(tb testing.TB, path string) []map[string]any {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			tb.Fatalf("line %q is not JSON: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}
