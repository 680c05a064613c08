package redisstore_test

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dpkeyring/dpkeyring/store"
	"github.com/dpkeyring/dpkeyring/store/redisstore"
)

func TestParseURL(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{redisstore.EnvPassword: "fromenv"}
	tests := []struct {
		spec string
		want redisstore.Config
	}{
		{"redis://127.0.0.1:6379", redisstore.Config{Mode: redisstore.ModeStandalone, Addrs: []string{"127.0.0.1:6379"}, Password: "fromenv"}},
		{"redis://host/2?key=DP-Keys&wait_replicas=0", redisstore.Config{
			Mode: redisstore.ModeStandalone, Addrs: []string{"host:6379"}, DB: 2, Password: "fromenv",
			Keys: map[string]string{"default": "DP-Keys"}, WaitReplicas: redisstore.WaitNone,
		}},
		{"redis://app@h:1?password_file=" + pwFile + "&key=K&ring=shop&prefix=P", redisstore.Config{
			Mode: redisstore.ModeStandalone, Addrs: []string{"h:1"}, Username: "app", Password: "s3cret",
			KeyPrefix: "P", Keys: map[string]string{"shop": "K"},
		}},
		{"redis://u:inline@h:1", redisstore.Config{Mode: redisstore.ModeStandalone, Addrs: []string{"h:1"}, Username: "u", Password: "inline"}},
		{"rediss://h:6380?tls_ca_file=/ca.pem&tls_server_name=redis.internal&wait_timeout=5s&dial_timeout=1s", redisstore.Config{
			Mode: redisstore.ModeStandalone, Addrs: []string{"h:6380"}, Password: "fromenv", TLS: true,
			TLSCAFile: "/ca.pem", TLSServerName: "redis.internal",
			WaitTimeout: 5 * time.Second, DialTimeout: time.Second,
		}},
		{"redis+sentinel://s2,s1:26380/mymaster/3?sentinel_password_file=" + pwFile, redisstore.Config{
			Mode: redisstore.ModeSentinel, Addrs: []string{"s2:26379", "s1:26380"}, MasterName: "mymaster", DB: 3,
			Password: "fromenv", SentinelPassword: "s3cret",
		}},
		{"rediss+cluster://n1:7000,n2:7001?tls_insecure_skip_verify=true&wait_replicas=2", redisstore.Config{
			Mode: redisstore.ModeCluster, Addrs: []string{"n1:7000", "n2:7001"}, Password: "fromenv",
			TLS: true, TLSInsecureSkipVerify: true, WaitReplicas: 2,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			u, err := url.Parse(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			got, err := redisstore.ParseURL(u, func(k string) string { return env[k] })
			if err != nil {
				t.Fatalf("ParseURL: %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseURLErrors(t *testing.T) {
	tests := []struct{ spec, want string }{
		{"http://h:1", "unknown scheme"},
		{"redis:///0", "no host"},
		{"redis://h:1/x", "not a number"},
		{"redis://h:1/0/1", "want /DB"},
		{"redis://h:1,h:2", "exactly one address"},
		{"redis+sentinel://h:1", "want /MASTER"},
		{"redis+cluster://h:1/0", "no path"},
		{"redis://h:1?tls_ca_file=/x", "need TLS"},
		{"redis://h:1?typo=1", `unknown option "typo"`},
		{"redis://h:1?key=a&key=b", "2 times"},
		{"redis://h:1?ring=x", "only goes with key"},
		{"redis://h:1?key=k&ring=Bad", "invalid name"},
		{"redis://h:1?password_file=/nonexistent/pw", "password_file"},
		{"redis://u:p@h:1?password_file=/x", "both"},
		{"redis://h:1?wait_replicas=-1", "wait_replicas"},
		{"redis://h:1?wait_timeout=soon", "wait_timeout"},
		{"redis://h:1?prefix=a*", "glob"},
		{"redis://h:1?sentinel_username=x", "need redis+sentinel"},
	}
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			u, err := url.Parse(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			_, err = redisstore.ParseURL(u, func(string) string { return "" })
			if !errors.Is(err, store.ErrInvalidSpec) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseURL error = %v, want ErrInvalidSpec mentioning %q", err, tc.want)
			}
		})
	}
}

func TestConfigRedactsSecrets(t *testing.T) {
	cfg := redisstore.Config{Mode: redisstore.ModeSentinel, Addrs: []string{"h:1"}, MasterName: "m", Username: "u", Password: "hunter2", SentinelPassword: "swordfish"}
	for _, s := range []string{cfg.String(), fmt.Sprintf("%v %+v %#v %s", cfg, cfg, cfg, cfg), cfg.LogValue().String()} {
		if strings.Contains(s, "hunter2") || strings.Contains(s, "swordfish") {
			t.Errorf("config printed a secret: %s", s)
		}
		if !strings.Contains(s, "REDACTED") {
			t.Errorf("config printed %q, want REDACTED in place of the password", s)
		}
	}
}

func TestListKey(t *testing.T) {
	cfg := redisstore.Config{Keys: map[string]string{"shop": "Shop-Keys"}}
	for ring, want := range map[string]string{"default": "DataProtection-Keys", "other": "DataProtection-Keys:other", "shop": "Shop-Keys"} {
		if got := cfg.ListKey(ring); got != want {
			t.Errorf("ListKey(%q) = %q, want %q", ring, got, want)
		}
	}
	cfg.KeyPrefix = "P"
	if got := cfg.ListKey("default"); got != "P" {
		t.Errorf("ListKey(default) with prefix P = %q", got)
	}
}

// FuzzParseURL feeds arbitrary specs to ParseURL: it must not panic, a spec it accepts must
// validate, and the config must never print the password.
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{
		"redis://127.0.0.1:6379/0?key=DataProtection-Keys",
		"rediss://u:pw@h:6380/1?tls_ca_file=/ca.pem&wait_replicas=1&wait_timeout=3s",
		"redis+sentinel://s1:26379,s2:26379/dpk/2?ring=shop&key=Shop-Keys",
		"redis+cluster://n1:7000,n2:7001?prefix=DP&username=app",
		"redis://[::1]:6379", "redis://h?ring=x", "redis+sentinel://h", "rediss+cluster://h:1/0",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		u, err := url.Parse(spec)
		if err != nil {
			return
		}
		cfg, err := redisstore.ParseURL(u, func(string) string { return "" })
		if err != nil {
			if !errors.Is(err, store.ErrInvalidSpec) {
				t.Fatalf("ParseURL(%q) error %v does not wrap ErrInvalidSpec", spec, err)
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("ParseURL(%q) accepted a config that does not validate: %v", spec, err)
		}
		// The printed form depends on the passwords only through the REDACTED markers.
		bare := cfg
		bare.Password, bare.SentinelPassword = "", ""
		printed := strings.NewReplacer(" password=REDACTED", "", " sentinel_password=REDACTED", "").Replace(cfg.String())
		if printed != bare.String() {
			t.Fatalf("String() of %q depends on the password: %q vs %q", spec, printed, bare.String())
		}
	})
}
