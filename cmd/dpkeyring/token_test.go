package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dpkeyring/dpkeyring/internal/tokens"
	"github.com/google/go-cmp/cmp"
)

var tokenTime = time.Date(2026, 11, 24, 4, 0, 0, 0, time.UTC)

// mustTokenCreate runs "token create" and returns the printed token.
func mustTokenCreate(tb testing.TB, data string, args ...string) string {
	tb.Helper()
	r := runCLI(tb, tokenTime, "", append([]string{"token", "create", "--data", data}, args...)...)
	if r.code != 0 {
		tb.Fatalf("token create %v: exit %d, stderr %q", args, r.code, r.stderr)
	}
	tok := strings.TrimSpace(r.stdout)
	if !strings.HasPrefix(tok, tokens.Prefix) || strings.Contains(tok, "\n") {
		tb.Fatalf("token create printed %q, want one token", r.stdout)
	}
	return tok
}

func TestTokenCreateListRevoke(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	admin := mustTokenCreate(t, data, "--role", "admin", "--name", "ops")
	node := mustTokenCreate(t, data, "--role", "node", "--name", "cd-1", "--ring", "web", "--ring", "default")

	set, err := tokens.Open(tokens.Path(data))
	if err != nil {
		t.Fatal(err)
	}
	if tok, ok := set.Authenticate(admin); !ok || tok.Name != "ops" || tok.Role != tokens.RoleAdmin {
		t.Errorf("admin token: %+v %v", tok, ok)
	}
	if tok, ok := set.Authenticate(node); !ok || tok.Name != "cd-1" || !tok.AllowsRing("web") || tok.AllowsRing("other") {
		t.Errorf("node token: %+v %v", tok, ok)
	}

	r := runCLI(t, tokenTime, "", "token", "list", "--data", data)
	want := "NAME  ROLE   RINGS        CREATED\n" +
		"ops   admin  *            2026-11-24T04:00:00Z\n" +
		"cd-1  node   default,web  2026-11-24T04:00:00Z\n"
	if r.code != 0 || r.stdout != want {
		t.Errorf("token list: exit %d\n%s\nwant\n%s", r.code, r.stdout, want)
	}
	r = runCLI(t, tokenTime, "", "token", "list", "--data", data, "--json")
	var got []tokenListEntry
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("token list --json: %v\n%s", err, r.stdout)
	}
	wantJSON := []tokenListEntry{
		{Name: "ops", Role: "admin", Rings: []string{}, Created: tokenTime},
		{Name: "cd-1", Role: "node", Rings: []string{"default", "web"}, Created: tokenTime},
	}
	if diff := cmp.Diff(wantJSON, got); diff != "" {
		t.Errorf("token list --json (-want +got):\n%s", diff)
	}
	for _, out := range []string{r.stdout, runCLI(t, tokenTime, "", "token", "list", "--data", data).stdout} {
		for _, secret := range []string{admin, node, tokens.Hash(admin), tokens.Hash(node)} {
			if strings.Contains(out, secret) {
				t.Errorf("token list shows a token or hash:\n%s", out)
			}
		}
	}

	r = runCLI(t, tokenTime, "", "token", "revoke", "cd-1", "--data", data)
	if r.code != 0 {
		t.Fatalf("token revoke: exit %d %s", r.code, r.stderr)
	}
	if err := set.Refresh(); err != nil {
		t.Fatal(err)
	}
	if _, ok := set.Authenticate(node); ok {
		t.Errorf("revoked token still authenticates")
	}
	r = runCLI(t, tokenTime, "", "token", "revoke", "cd-1", "--data", data)
	if r.code != 1 || !strings.Contains(r.stderr, "no token with that name") {
		t.Errorf("second revoke: exit %d %q", r.code, r.stderr)
	}

	// The audit log has the changes, never the tokens.
	audit, err := os.ReadFile(filepath.Join(data, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(audit), "\n"); n != 3 {
		t.Errorf("audit log has %d lines, want 3 (2 creates, 1 revoke):\n%s", n, audit)
	}
	for _, secret := range []string{admin, node, tokens.Hash(admin), tokens.Hash(node)} {
		if strings.Contains(string(audit), secret) {
			t.Errorf("audit log holds a token or hash")
		}
	}
}

func TestTokenDataFromEnv(t *testing.T) {
	data := t.TempDir()
	var stdout, stderr strings.Builder
	getenv := func(k string) string {
		if k == "DPKEYRING_DATA" {
			return data
		}
		return ""
	}
	if err := run(t.Context(), []string{"token", "create", "--role", "debug", "--name", "dbg"}, getenv, strings.NewReader(""), &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	ts, err := tokens.Load(tokens.Path(data))
	if err != nil || len(ts) != 1 || ts[0].Role != tokens.RoleDebug {
		t.Errorf("tokens in $DPKEYRING_DATA: %+v %v", ts, err)
	}
}

func TestTokenErrors(t *testing.T) {
	data := t.TempDir()
	mustTokenCreate(t, data, "--role", "node", "--name", "taken")
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no subcommand", []string{"token"}, 2, "token: no subcommand given"},
		{"unknown subcommand", []string{"token", "frob"}, 2, `unknown subcommand "frob"`},
		{"no role", []string{"token", "create", "--name", "x", "--data", data}, 2, "--role is required"},
		{"bad role", []string{"token", "create", "--role", "root", "--name", "x", "--data", data}, 2, `role "root"`},
		{"no name", []string{"token", "create", "--role", "node", "--data", data}, 2, "--name is required"},
		{"bad name", []string{"token", "create", "--role", "node", "--name", "a b", "--data", data}, 2, "token name"},
		{"bad ring", []string{"token", "create", "--role", "node", "--name", "x", "--ring", "UP", "--data", data}, 2, "--ring"},
		{"taken name", []string{"token", "create", "--role", "node", "--name", "taken", "--data", data}, 1, "already exists"},
		{"revoke without name", []string{"token", "revoke", "--data", data}, 2, "exactly one token name"},
		{"list argument", []string{"token", "list", "x"}, 2, `unexpected argument "x"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, tokenTime, "", tc.args...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", r.code, r.stderr, tc.code, tc.want)
			}
			if r.code != 0 && strings.Contains(r.stdout, tokens.Prefix) {
				t.Errorf("a failed create printed a token: %q", r.stdout)
			}
		})
	}
}
