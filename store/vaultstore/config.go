package vaultstore

import (
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/dpkeyring/dpkeyring/store"
)

// The authentication methods [Config.Auth] accepts.
const (
	AuthToken      = "token"
	AuthAppRole    = "approle"
	AuthKubernetes = "kubernetes"
)

// DefaultKubernetesJWTFile is where Kubernetes mounts a pod's service-account token.
const DefaultKubernetesJWTFile = "/var/run/secrets/kubernetes.io/serviceaccount/token"

// Environment variables [ParseURL] reads for secrets not given as files.
const (
	EnvToken     = "VAULT_TOKEN"
	EnvRoleID    = "KEYRING_VAULT_ROLE_ID"
	EnvSecretID  = "KEYRING_VAULT_SECRET_ID"
	EnvNamespace = "VAULT_NAMESPACE"
)

// Config says which Vault to use, where the rings live and how to log in. Only the fields set
// here apply: the VAULT_* environment variables the vault/api package would read by itself are
// ignored (ParseURL reads the documented ones explicitly). Config never prints secrets: String
// and LogValue redact them.
type Config struct {
	// Address is the Vault base URL, such as "https://vault.example:8200".
	Address string
	// CAFile is a PEM file of CA certificates to verify the server with (https only).
	CAFile string
	// Namespace is the Vault Enterprise namespace, empty for none.
	Namespace string
	// Mount is the path of the KV version 2 secrets engine; default "secret".
	Mount string
	// Prefix is the path under Mount that holds the rings; default "dpkeyring".
	Prefix string

	// Auth is AuthToken (default), AuthAppRole or AuthKubernetes.
	Auth string
	// Token is the Vault token (AuthToken). TokenFile, if set, is read instead at Open.
	Token     string
	TokenFile string
	// RoleID (or RoleIDFile) and SecretID (or SecretIDFile) are the AppRole credentials; the
	// files are read at every login, so they may be rotated. AppRoleMount is the auth mount,
	// default "approle".
	RoleID       string
	RoleIDFile   string
	SecretID     string
	SecretIDFile string
	AppRoleMount string
	// KubernetesRole is the Vault role to log in as; KubernetesJWTFile the service-account
	// token (default DefaultKubernetesJWTFile); KubernetesMount the auth mount, default
	// "kubernetes".
	KubernetesRole    string
	KubernetesJWTFile string
	KubernetesMount   string

	// TransitKey, if set, turns on Transit at rest: element XML is stored only encrypted by this
	// Transit key, and [Store.NewMasterKey] generates master keys with it.
	TransitKey string
	// TransitMount is the Transit engine's mount, default "transit".
	TransitMount string

	// Timeout bounds each request to Vault; default 30 s.
	Timeout time.Duration
	// Retries is how many times a request that failed with a server error is retried (the
	// vault/api client's retry with backoff). ParseURL sets 2; the zero Config retries none.
	Retries int
	// Concurrency is how many element reads List runs at once; default 16.
	Concurrency int
	// Now is the clock for lease expiry; default time.Now. Lease expiry compares the clocks of
	// the writers, so they must be roughly in sync (NTP).
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.Mount == "" {
		c.Mount = "secret"
	}
	if c.Prefix == "" {
		c.Prefix = "dpkeyring"
	}
	if c.Auth == "" {
		c.Auth = AuthToken
	}
	if c.AppRoleMount == "" {
		c.AppRoleMount = "approle"
	}
	if c.KubernetesMount == "" {
		c.KubernetesMount = "kubernetes"
	}
	if c.KubernetesJWTFile == "" {
		c.KubernetesJWTFile = DefaultKubernetesJWTFile
	}
	if c.TransitMount == "" {
		c.TransitMount = "transit"
	}
	if c.Timeout <= 0 {
		c.Timeout = 30 * time.Second
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 16
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	c.Mount = strings.Trim(c.Mount, "/")
	c.Prefix = strings.Trim(c.Prefix, "/")
	c.TransitMount = strings.Trim(c.TransitMount, "/")
	return c
}

func redact(s string) string {
	if s == "" {
		return ""
	}
	return "REDACTED"
}

// String describes the configuration with every secret replaced by "REDACTED".
func (c Config) String() string {
	return fmt.Sprintf("vaultstore.Config{Address:%q Mount:%q Prefix:%q Namespace:%q Auth:%q Token:%q TokenFile:%q RoleID:%q SecretID:%q SecretIDFile:%q KubernetesRole:%q KubernetesJWTFile:%q TransitKey:%q}",
		c.Address, c.Mount, c.Prefix, c.Namespace, c.Auth, redact(c.Token), c.TokenFile, c.RoleID, redact(c.SecretID), c.SecretIDFile, c.KubernetesRole, c.KubernetesJWTFile, c.TransitKey)
}

// GoString is String, so that %#v does not print secrets either.
func (c Config) GoString() string { return c.String() }

// LogValue implements slog.LogValuer without the secrets.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("address", c.Address),
		slog.String("mount", c.Mount),
		slog.String("prefix", c.Prefix),
		slog.String("auth", c.Auth),
		slog.String("transit_key", c.TransitKey),
	)
}

// ParseURL reads a store spec such as
//
//	vault://host:8200/secret/dpkeyring?auth=approle&transit=dataprotection
//
// The scheme vault:// talks http unless tls=true; vaults:// talks https. The first path
// segment is the KV v2 mount (default "secret"), the rest the path prefix (default
// "dpkeyring"). Query parameters: auth=token|approle|kubernetes; token_file=;
// role_id= or role_id_file=; secret_id_file=; approle_mount=; k8s_role=, k8s_jwt_file=,
// k8s_mount=; namespace=; ca_file=; transit=KEY and transit_mount=; timeout= (Go duration);
// retries=. Secrets not given as files come from getenv: VAULT_TOKEN, KEYRING_VAULT_ROLE_ID,
// KEYRING_VAULT_SECRET_ID (and VAULT_NAMESPACE). A token in the URL (token=) is accepted but
// discouraged: URLs end up in shell history and process listings. Errors wrap
// store.ErrInvalidSpec.
func ParseURL(u *url.URL, getenv func(string) string) (Config, error) {
	bad := func(format string, args ...any) (Config, error) {
		return Config{}, fmt.Errorf("%w: vault: "+format, append([]any{store.ErrInvalidSpec}, args...)...)
	}
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	q := u.Query()
	scheme := "http"
	switch u.Scheme {
	case "vault":
		if v := q.Get("tls"); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return bad("tls=%q is not a boolean", v)
			}
			if b {
				scheme = "https"
			}
		}
	case "vaults":
		scheme = "https"
	default:
		return bad("scheme %q (use vault:// or vaults://)", u.Scheme)
	}
	if u.Host == "" {
		return bad("no host in %q (use vault://host:8200/mount/prefix)", u.Redacted())
	}
	if u.User != nil {
		return bad("user info in the URL is not used; give the token with token_file= or VAULT_TOKEN")
	}
	known := map[string]bool{"tls": true, "auth": true, "token": true, "token_file": true, "role_id": true,
		"role_id_file": true, "secret_id_file": true, "approle_mount": true, "k8s_role": true,
		"k8s_jwt_file": true, "k8s_mount": true, "namespace": true, "ca_file": true, "transit": true,
		"transit_mount": true, "timeout": true, "retries": true}
	for k := range q {
		if !known[k] {
			return bad("unknown parameter %q", k)
		}
	}
	cfg := Config{
		Address:           scheme + "://" + u.Host,
		CAFile:            q.Get("ca_file"),
		Namespace:         q.Get("namespace"),
		Auth:              q.Get("auth"),
		Token:             q.Get("token"),
		TokenFile:         q.Get("token_file"),
		RoleID:            q.Get("role_id"),
		SecretIDFile:      q.Get("secret_id_file"),
		AppRoleMount:      q.Get("approle_mount"),
		KubernetesRole:    q.Get("k8s_role"),
		KubernetesJWTFile: q.Get("k8s_jwt_file"),
		KubernetesMount:   q.Get("k8s_mount"),
		TransitKey:        q.Get("transit"),
		TransitMount:      q.Get("transit_mount"),
		Retries:           2,
	}
	if strings.ContainsAny(cfg.TransitKey, "/?#") || strings.ContainsAny(cfg.TransitMount, "?#") {
		return bad("transit=%q / transit_mount=%q: a key name has no '/', '?' or '#'", cfg.TransitKey, cfg.TransitMount)
	}
	if cfg.CAFile != "" && scheme != "https" {
		return bad("ca_file= needs https (vaults:// or tls=true)")
	}
	path := strings.Trim(u.Path, "/")
	if path != "" {
		mount, prefix, _ := strings.Cut(path, "/")
		cfg.Mount, cfg.Prefix = mount, prefix
	}
	for _, seg := range strings.Split(cfg.Prefix, "/") {
		if cfg.Prefix != "" && (seg == "" || seg == "." || seg == "..") {
			return bad("path prefix %q has an empty, . or .. segment", cfg.Prefix)
		}
	}
	if v := q.Get("timeout"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return bad("timeout=%q is not a positive duration", v)
		}
		cfg.Timeout = d
	}
	if v := q.Get("retries"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return bad("retries=%q is not a non-negative integer", v)
		}
		cfg.Retries = n
	}
	if cfg.Namespace == "" {
		cfg.Namespace = getenv(EnvNamespace)
	}
	cfg.RoleIDFile = q.Get("role_id_file")
	if cfg.RoleID != "" && cfg.RoleIDFile != "" {
		return bad("give role_id= or role_id_file=, not both")
	}
	switch cfg.Auth {
	case "", AuthToken:
		cfg.Auth = AuthToken
		if cfg.Token == "" && cfg.TokenFile == "" {
			cfg.Token = getenv(EnvToken)
			if cfg.Token == "" {
				return bad("auth=token needs token_file= or the %s environment variable", EnvToken)
			}
		}
	case AuthAppRole:
		if cfg.RoleID == "" && cfg.RoleIDFile == "" {
			cfg.RoleID = getenv(EnvRoleID)
		}
		if cfg.RoleID == "" && cfg.RoleIDFile == "" {
			return bad("auth=approle needs role_id=, role_id_file= or %s", EnvRoleID)
		}
		if cfg.SecretIDFile == "" {
			cfg.SecretID = getenv(EnvSecretID)
			if cfg.SecretID == "" {
				return bad("auth=approle needs secret_id_file= or %s", EnvSecretID)
			}
		}
	case AuthKubernetes:
		if cfg.KubernetesRole == "" {
			return bad("auth=kubernetes needs k8s_role=")
		}
	default:
		return bad("auth=%q (use token, approle or kubernetes)", cfg.Auth)
	}
	return cfg.withDefaults(), nil
}
