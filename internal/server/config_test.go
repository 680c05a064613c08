package server

import (
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func mustParseFlags(tb testing.TB, args ...string) *Flags {
	tb.Helper()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f := BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		tb.Fatalf("parse %v: %v", args, err)
	}
	return f
}

func TestLoadDefaults(t *testing.T) {
	cfg, err := Load(nil, envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Addr: "127.0.0.1:8080", Data: "./data", Store: "file:./data",
		KeyLifetime: Duration(90 * 24 * time.Hour), LeadTime: Duration(48 * time.Hour),
		Rings:     []RingConfig{{Name: "default", Store: "file:./data", KeyLifetime: Duration(90 * 24 * time.Hour), LeadTime: Duration(48 * time.Hour)}},
		DebugAddr: "127.0.0.1:8081", AuditLog: "data/audit.log", TokensFile: "data/tokens.json",
		ShutdownTimeout: Duration(15 * time.Second),
	}
	if diff := cmp.Diff(want, cfg); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
}

func TestLoadPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "dpkeyring.json")
	os.WriteFile(file, []byte(`{
		"addr": "0.0.0.0:9000",
		"data": "/srv/dp",
		"store": "redis://redis:6379/0",
		"key_lifetime": "30d",
		"rotate_interval": "1h",
		"rings": [
			{"name": "cm", "app_name": "umbraco-cm"},
			{"name": "shop", "store": "file:/srv/shop", "key_lifetime": "14d", "lead_time": "3d"}
		]
	}`), 0o600)

	t.Run("file", func(t *testing.T) {
		cfg, err := Load(mustParseFlags(t, "--config", file), envMap(nil))
		if err != nil {
			t.Fatal(err)
		}
		wantRings := []RingConfig{
			{Name: "cm", Store: "redis://redis:6379/0", AppName: "umbraco-cm", KeyLifetime: Duration(30 * 24 * time.Hour), LeadTime: Duration(48 * time.Hour)},
			{Name: "shop", Store: "file:/srv/shop", KeyLifetime: Duration(14 * 24 * time.Hour), LeadTime: Duration(72 * time.Hour)},
		}
		if diff := cmp.Diff(wantRings, cfg.Rings); diff != "" {
			t.Errorf("rings (-want +got):\n%s", diff)
		}
		if cfg.Addr != "0.0.0.0:9000" || cfg.RotateInterval != Duration(time.Hour) || cfg.AuditLog != "/srv/dp/audit.log" || cfg.TokensFile != "/srv/dp/tokens.json" {
			t.Errorf("cfg %+v", cfg)
		}
	})
	t.Run("env over file, flags over env", func(t *testing.T) {
		env := envMap(map[string]string{
			"DPKEYRING_CONFIG":               file,
			"DPKEYRING_ADDR":                 "127.0.0.1:7000",
			"DPKEYRING_ROTATE_INTERVAL":      "30m",
			"DPKEYRING_ENABLE_DEBUG_DECRYPT": "true",
			"DPKEYRING_RINGS":                "a, b",
		})
		cfg, err := Load(mustParseFlags(t, "--addr", "127.0.0.1:7001", "--ring", "c"), env)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Addr != "127.0.0.1:7001" || cfg.RotateInterval != Duration(30*time.Minute) || !cfg.EnableDebugDecrypt {
			t.Errorf("cfg %+v", cfg)
		}
		if len(cfg.Rings) != 1 || cfg.Rings[0].Name != "c" || cfg.Rings[0].Store != "redis://redis:6379/0" {
			t.Errorf("rings %+v, want only c on the file's store", cfg.Rings)
		}
		cfg, err = Load(mustParseFlags(t, "--enable-debug-decrypt=false"), env)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.EnableDebugDecrypt || len(cfg.Rings) != 2 || cfg.Rings[1].Name != "b" {
			t.Errorf("cfg %+v", cfg)
		}
	})
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o600)
		return p
	}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"missing config file", []string{"--config", filepath.Join(dir, "nope.json")}, nil, "config file"},
		{"unknown field", []string{"--config", write("typo.json", `{"adr": "x"}`)}, nil, `unknown field "adr"`},
		{"bad duration in file", []string{"--config", write("dur.json", `{"key_lifetime": "ninety"}`)}, nil, "invalid duration"},
		{"bad addr", []string{"--addr", "8080"}, nil, "addr"},
		{"bad ring", nil, map[string]string{"DPKEYRING_RINGS": "Bad"}, "invalid name"},
		{"duplicate ring", []string{"--config", write("dup.json", `{"rings":[{"name":"a"},{"name":"a"}]}`)}, nil, "configured twice"},
		{"short lifetime", []string{"--key-lifetime", "3d"}, nil, "key lifetime"},
		{"short lead time", []string{"--lead-time", "1d"}, nil, "lead time"},
		{"long interval", []string{"--rotate-interval", "25h"}, nil, "rotate interval"},
		{"short interval", []string{"--rotate-interval", "10ms"}, nil, "rotate interval"},
		{"bad env duration", nil, map[string]string{"DPKEYRING_ROTATE_INTERVAL": "soon"}, "DPKEYRING_ROTATE_INTERVAL"},
		{"cert without key", []string{"--tls-cert", "c.pem"}, nil, "tls cert and tls key"},
		{"client CA without TLS", []string{"--client-ca", "ca.pem"}, nil, "client CA needs TLS"},
		{"debug not loopback", []string{"--enable-debug-decrypt", "--debug-addr", "0.0.0.0:8081"}, nil, "not a loopback"},
		{"debug same addr", []string{"--enable-debug-decrypt", "--debug-addr", "127.0.0.1:8080"}, nil, "must differ"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(mustParseFlags(t, tc.args...), envMap(tc.env))
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want ErrInvalidConfig with %q", err, tc.want)
			}
		})
	}
}

func TestDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"90d": 90 * 24 * time.Hour, "36h": 36 * time.Hour, "0": 0, "1h30m": 90 * time.Minute} {
		d, err := ParseDuration(in)
		if err != nil || time.Duration(d) != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, d, err, want)
		}
		back, _ := ParseDuration(d.String())
		if back != d {
			t.Errorf("%q does not round-trip through %q", in, d.String())
		}
	}
	for _, bad := range []string{"", "-1h", "-2d", "xd", "1y"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) succeeded", bad)
		}
	}
}

func TestLoadCertificates(t *testing.T) {
	cfg, err := Load(nil, envMap(map[string]string{"DPKEYRING_CERTS": "a.pfx, b.pem", "DPKEYRING_CERT_PASSWORD_FILE": "pw"}))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"a.pfx", "b.pem"}, cfg.Certificates); diff != "" || cfg.CertificatePasswordFile != "pw" {
		t.Errorf("certificates (-want +got):\n%s password file %q", diff, cfg.CertificatePasswordFile)
	}
	cfg, err = Load(mustParseFlags(t, "--cert", "c.pfx"), envMap(map[string]string{"DPKEYRING_CERTS": "a.pfx"}))
	if err != nil || len(cfg.Certificates) != 1 || cfg.Certificates[0] != "c.pfx" {
		t.Errorf("--cert over env: %v %v", cfg.Certificates, err)
	}
	if _, err := Load(mustParseFlags(t, "--cert-password-file", "pw"), envMap(nil)); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("password file without certificates: %v", err)
	}
}
