package tokens

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 11, 24, 4, 0, 0, 0, time.UTC)

func mustCreate(tb testing.TB, path string, news ...NewToken) []string {
	tb.Helper()
	secrets, err := Create(path, t0, nil, news...)
	if err != nil {
		tb.Fatalf("Create: %v", err)
	}
	return secrets
}

func TestGenerate(t *testing.T) {
	a, b := Generate(), Generate()
	if a == b {
		t.Fatal("two tokens are equal")
	}
	if !strings.HasPrefix(a, Prefix) || len(a) != len(Prefix)+43 {
		t.Errorf("token %q: want %q + 43 base64url characters", a, Prefix)
	}
	if strings.ContainsAny(a, "+/=") {
		t.Errorf("token %q is not unpadded base64url", a)
	}
}

func TestCreateListRevoke(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "tokens.json")
	secrets := mustCreate(t, path,
		NewToken{Name: "admin", Role: RoleAdmin},
		NewToken{Name: "cd-1", Role: RoleNode, Rings: []string{"web", "default", "web"}},
	)
	if len(secrets) != 2 {
		t.Fatalf("Create returned %d secrets, want 2", len(secrets))
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("tokens file mode %v, want 0600", fi.Mode().Perm())
	}
	raw, _ := os.ReadFile(path)
	for _, s := range secrets {
		if strings.Contains(string(raw), s) {
			t.Errorf("tokens file holds a token in clear")
		}
	}
	ts, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []Token{
		{Name: "admin", Role: RoleAdmin, Created: t0, SHA256: Hash(secrets[0])},
		{Name: "cd-1", Role: RoleNode, Rings: []string{"default", "web"}, Created: t0, SHA256: Hash(secrets[1])},
	}
	if diff := cmp.Diff(want, ts); diff != "" {
		t.Errorf("Load (-want +got):\n%s", diff)
	}

	if _, err := Create(path, t0, nil, NewToken{Name: "admin", Role: RoleDebug}); !errors.Is(err, ErrExists) {
		t.Errorf("Create of a taken name: err %v, want ErrExists", err)
	}
	if err := Revoke(path, "admin"); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if err := Revoke(path, "admin"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Revoke: err %v, want ErrNotFound", err)
	}
	ts, _ = Load(path)
	if len(ts) != 1 || ts[0].Name != "cd-1" {
		t.Errorf("after revoke: %+v, want only cd-1", ts)
	}
}

func TestCreateInvalid(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	badRing := func(r string) error {
		if r == "BAD" {
			return errors.New("bad ring")
		}
		return nil
	}
	tests := []struct {
		name string
		tok  NewToken
	}{
		{"empty name", NewToken{Name: "", Role: RoleNode}},
		{"name with space", NewToken{Name: "a b", Role: RoleNode}},
		{"no role", NewToken{Name: "x"}},
		{"bad ring", NewToken{Name: "x", Role: RoleNode, Rings: []string{"BAD"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Create(path, t0, badRing, tc.tok); !errors.Is(err, ErrInvalid) {
				t.Errorf("err %v, want ErrInvalid", err)
			}
		})
	}
	if _, err := os.Stat(path); err == nil {
		if ts, _ := Load(path); len(ts) != 0 {
			t.Errorf("invalid creates wrote tokens: %+v", ts)
		}
	}
}

func TestLoadCorrupt(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"notjson":  "{",
		"badrole":  `{"tokens":[{"name":"a","role":"root","sha256":"` + strings.Repeat("0", 64) + `"}]}`,
		"badhash":  `{"tokens":[{"name":"a","role":"node","sha256":"abc"}]}`,
		"badname":  `{"tokens":[{"name":"","role":"node","sha256":"` + strings.Repeat("0", 64) + `"}]}`,
		"noroleat": `{"tokens":[{"name":"a","sha256":"` + strings.Repeat("0", 64) + `"}]}`,
	} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o600)
		if _, err := Load(p); err == nil {
			t.Errorf("%s: Load succeeded, want an error", name)
		}
	}
	if ts, err := Load(filepath.Join(dir, "missing")); err != nil || ts != nil {
		t.Errorf("missing file: %v, %v; want no tokens and no error", ts, err)
	}
}

func TestSetAuthenticateAndReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	s1 := mustCreate(t, path, NewToken{Name: "admin", Role: RoleAdmin})[0]
	set, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	now := t0
	set.now = func() time.Time { return now }
	set.lastCheck.Store(now.UnixNano())

	if tok, ok := set.Authenticate(s1); !ok || tok.Name != "admin" || tok.Role != RoleAdmin {
		t.Fatalf("Authenticate(admin) = %+v, %v", tok, ok)
	}
	for _, bad := range []string{"", "dpk_", s1 + "x", s1[:len(s1)-1], strings.TrimPrefix(s1, Prefix), Hash(s1)} {
		if _, ok := set.Authenticate(bad); ok {
			t.Errorf("Authenticate(%q) succeeded", bad)
		}
	}

	// A token created by another process is seen once a second has passed.
	s2 := mustCreate(t, path, NewToken{Name: "node", Role: RoleNode, Rings: []string{"default"}})[0]
	if _, ok := set.Authenticate(s2); ok {
		t.Errorf("new token accepted before the recheck interval")
	}
	now = now.Add(time.Second)
	tok, ok := set.Authenticate(s2)
	if !ok || tok.Name != "node" || !tok.AllowsRing("default") || tok.AllowsRing("other") {
		t.Errorf("new token after reload: %+v, %v", tok, ok)
	}
	if err := Revoke(path, "admin"); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Second)
	if _, ok := set.Authenticate(s1); ok {
		t.Errorf("revoked token still accepted")
	}

	// A corrupt file keeps the tokens in force and reports the error.
	os.WriteFile(path, []byte("{"), 0o600)
	now = now.Add(time.Second)
	if _, ok := set.Authenticate(s2); !ok {
		t.Errorf("token rejected after the file got corrupt")
	}
	if set.Err() == nil {
		t.Errorf("Err() = nil after a corrupt file")
	}
}

func TestConcurrentCreate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			mustCreate(t, path, NewToken{Name: "n" + string(rune('a'+i)), Role: RoleNode})
		})
	}
	wg.Wait()
	ts, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 20 {
		t.Errorf("%d tokens after 20 concurrent creates, want 20", len(ts))
	}
}

func TestRoleText(t *testing.T) {
	for _, r := range []Role{RoleNode, RoleAdmin, RoleDebug} {
		b, err := r.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back Role
		if err := back.UnmarshalText(b); err != nil || back != r {
			t.Errorf("%v round-trips to %v, %v", r, back, err)
		}
	}
	if _, err := RoleUnknown.MarshalText(); err == nil {
		t.Errorf("RoleUnknown marshals")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"tokens":[{"name":"admin","role":"admin","created":"2026-11-24T04:00:00Z","sha256":"` + strings.Repeat("ab", 32) + `"}]}`))
	f.Add([]byte(`{"tokens":[{"name":"n","role":"node","rings":["default"],"sha256":"` + strings.Repeat("0", 64) + `"}]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ts, err := parse("fuzz", b)
		if err != nil {
			return
		}
		for _, tok := range ts {
			if ValidName(tok.Name) != nil || tok.Role == RoleUnknown || len(tok.SHA256) != 64 {
				t.Fatalf("parse accepted an invalid token %+v", tok)
			}
		}
	})
}
