package vaultstore_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/dpkeyring/dpkeyring/store"
	"github.com/dpkeyring/dpkeyring/store/vaultstore"
)

func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestParseURL(t *testing.T) {
	tests := []struct {
		spec string
		env  map[string]string
		want vaultstore.Config
	}{
		{
			spec: "vault://vault.local:8200",
			env:  map[string]string{"VAULT_TOKEN": "s.tok"},
			want: vaultstore.Config{Address: "http://vault.local:8200", Mount: "secret", Prefix: "dpkeyring", Auth: "token", Token: "s.tok"},
		},
		{
			spec: "vault://host:8200/secret/dpkeyring?auth=approle&transit=dataprotection&role_id=r1&secret_id_file=/run/sid",
			want: vaultstore.Config{Address: "http://host:8200", Mount: "secret", Prefix: "dpkeyring", Auth: "approle",
				RoleID: "r1", SecretIDFile: "/run/sid", TransitKey: "dataprotection"},
		},
		{
			spec: "vaults://host/kv/team/a/keys?auth=approle&role_id_file=/run/rid&namespace=ns1&ca_file=/ca.pem",
			env:  map[string]string{"KEYRING_VAULT_SECRET_ID": "sid"},
			want: vaultstore.Config{Address: "https://host", Mount: "kv", Prefix: "team/a/keys", Auth: "approle",
				RoleIDFile: "/run/rid", SecretID: "sid", Namespace: "ns1", CAFile: "/ca.pem"},
		},
		{
			spec: "vault://host:8200/secret?tls=true&auth=kubernetes&k8s_role=dpk&timeout=5s&retries=0&token_file=/x",
			want: vaultstore.Config{Address: "https://host:8200", Mount: "secret", Prefix: "dpkeyring", Auth: "kubernetes",
				KubernetesRole: "dpk", KubernetesJWTFile: vaultstore.DefaultKubernetesJWTFile, TokenFile: "/x"},
		},
		{
			spec: "vault://host:8200?token_file=/run/token",
			env:  map[string]string{"KEYRING_VAULT_ROLE_ID": "ignored", "VAULT_NAMESPACE": "envns"},
			want: vaultstore.Config{Address: "http://host:8200", Mount: "secret", Prefix: "dpkeyring", Auth: "token",
				TokenFile: "/run/token", Namespace: "envns"},
		},
	}
	ignore := cmpopts.IgnoreFields(vaultstore.Config{}, "AppRoleMount", "KubernetesMount", "KubernetesJWTFile",
		"TransitMount", "Timeout", "Retries", "Concurrency", "Now")
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			u, err := url.Parse(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			got, err := vaultstore.ParseURL(u, env(tc.env))
			if err != nil {
				t.Fatalf("ParseURL: %v", err)
			}
			if diff := cmp.Diff(tc.want, got, ignore); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}

	u, _ := url.Parse("vault://h/secret?timeout=5s&retries=0&auth=kubernetes&k8s_role=r")
	got, err := vaultstore.ParseURL(u, nil)
	if err != nil || got.Timeout.String() != "5s" || got.Retries != 0 || got.KubernetesJWTFile != vaultstore.DefaultKubernetesJWTFile {
		t.Errorf("timeout/retries/jwt file: %+v, %v", got, err)
	}
}

func TestParseURLErrors(t *testing.T) {
	tests := []struct{ spec, want string }{
		{"redis://h:1", "scheme"},
		{"vault:///secret", "no host"},
		{"vault://h:1", "VAULT_TOKEN"},
		{"vault://u:p@h:1?token_file=/t", "user info"},
		{"vault://h:1?token_file=/t&bogus=1", `unknown parameter "bogus"`},
		{"vault://h:1?token_file=/t&tls=maybe", "tls"},
		{"vault://h:1?token_file=/t&ca_file=/ca", "https"},
		{"vault://h:1?auth=ldap", "auth"},
		{"vault://h:1?auth=approle&secret_id_file=/s", "role_id"},
		{"vault://h:1?auth=approle&role_id=r", "secret_id_file"},
		{"vault://h:1?auth=approle&role_id=r&role_id_file=/r&secret_id_file=/s", "not both"},
		{"vault://h:1?auth=kubernetes", "k8s_role"},
		{"vault://h:1/secret/a//b?token_file=/t", "segment"},
		{"vault://h:1/secret/a/../b?token_file=/t", "segment"},
		{"vault://h:1?token_file=/t&timeout=-1s", "timeout"},
		{"vault://h:1?token_file=/t&retries=x", "retries"},
		{"vault://h:1?token_file=/t&transit=a/b", "transit"},
	}
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			u, err := url.Parse(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			_, err = vaultstore.ParseURL(u, env(nil))
			if !errors.Is(err, store.ErrInvalidSpec) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseURL(%s) = %v, want ErrInvalidSpec mentioning %q", tc.spec, err, tc.want)
			}
		})
	}
}

func TestConfigRedacts(t *testing.T) {
	cfg := vaultstore.Config{Address: "http://h", Token: "s.SECRET-TOKEN", SecretID: "SECRET-ID", RoleID: "role"}
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("x", "cfg", cfg)
	for _, out := range []string{cfg.String(), fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), logged.String()} {
		if strings.Contains(out, "SECRET") {
			t.Errorf("secret printed: %s", out)
		}
	}
	if !strings.Contains(cfg.String(), "REDACTED") {
		t.Errorf("String = %s, want REDACTED placeholders", cfg.String())
	}
}

func FuzzParseURL(f *testing.F) {
	f.Add("vault://host:8200/secret/dpkeyring?auth=approle&transit=dataprotection&role_id=r&secret_id_file=/s")
	f.Add("vaults://h/kv/a/b?token_file=/t&timeout=3s")
	f.Fuzz(func(t *testing.T, spec string) {
		u, err := url.Parse(spec)
		if err != nil {
			return
		}
		cfg, err := vaultstore.ParseURL(u, env(map[string]string{"VAULT_TOKEN": "t"}))
		if err != nil && !errors.Is(err, store.ErrInvalidSpec) {
			t.Errorf("error not wrapping ErrInvalidSpec: %v", err)
		}
		if err == nil && (cfg.Mount == "" || cfg.Prefix == "" || cfg.Address == "") {
			t.Errorf("accepted %q with empty mount/prefix/address: %+v", spec, cfg)
		}
	})
}
