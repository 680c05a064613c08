package storespec_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/dpkeyring/dpkeyring/internal/storespec"
	"github.com/dpkeyring/dpkeyring/store"
)

func TestIsSpec(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"file:./data", true},
		{"file:///var/lib/dpkeyring", true},
		{"redis://localhost:6379/0", true},
		{"rediss://localhost:6380", true},
		{"redis+sentinel://a:26379,b:26379/mymaster", true},
		{"redis+cluster://a:7000,b:7001", true},
		{"rediss+sentinel://a:26379/m", true},
		{"rediss+cluster://a:7000", true},
		{"vault://127.0.0.1:8200/secret/dpkeyring", true},
		{"./data/keys", false},
		{"/var/keys/key-1.xml", false},
		{"C:\\keys", false},
		{"keys.xml", false},
	} {
		if got := storespec.IsSpec(tc.in); got != tc.want {
			t.Errorf("IsSpec(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestOpenFileStore(t *testing.T) {
	s, err := storespec.Open(t.Context(), "file:"+t.TempDir(), func(string) string { return "" })
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	if _, err := s.List(t.Context(), "default"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("List of an empty store: err = %v, want ErrNotFound", err)
	}
}

func TestOpenErrors(t *testing.T) {
	for _, spec := range []string{"./data", "ftp://x", "redis://[::1", "vault://"} {
		_, err := storespec.Open(t.Context(), spec, func(string) string { return "" })
		if !errors.Is(err, store.ErrInvalidSpec) {
			t.Errorf("Open(%q): err = %v, want ErrInvalidSpec", spec, err)
		}
	}
}

func TestRedact(t *testing.T) {
	got := storespec.Redact("redis://user:s3cret@host:6379/0")
	if strings.Contains(got, "s3cret") || !strings.Contains(got, "REDACTED") {
		t.Errorf("Redact = %q", got)
	}
	if got := storespec.Redact("file:./data"); got != "file:./data" {
		t.Errorf("Redact(file) = %q", got)
	}
}
