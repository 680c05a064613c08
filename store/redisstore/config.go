package redisstore

import (
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dpkeyring/dpkeyring/store"
)

// DefaultKey is the list key ASP.NET Core's PersistKeysToStackExchangeRedis uses when the
// application names none, and so the list key of [DefaultRing].
const DefaultKey = "DataProtection-Keys"

// DefaultRing is the ring stored under the key prefix itself ([DefaultKey] unless configured);
// every other ring R is stored under "<prefix>:R".
const DefaultRing = "default"

// Default timeouts.
const (
	DefaultWaitTimeout = 2 * time.Second
	DefaultDialTimeout = 5 * time.Second
)

// Env vars read by [ParseURL] when the URL names no password or password file.
const (
	EnvPassword         = "DPKEYRING_REDIS_PASSWORD"
	EnvSentinelPassword = "DPKEYRING_REDIS_SENTINEL_PASSWORD"
)

// WaitNone as [Config.WaitReplicas] makes writes succeed without any replica's
// acknowledgement (wait_replicas=0): a key may then be lost when the master fails.
const WaitNone = -1

// Mode is how the store reaches Redis.
type Mode int

// Modes. The zero value is invalid.
const (
	ModeUnknown    Mode = iota
	ModeStandalone      // one server (redis://, rediss://)
	ModeSentinel        // a master found through Sentinel (redis+sentinel://)
	ModeCluster         // a Redis Cluster (redis+cluster://)
)

// String returns the mode's name.
func (m Mode) String() string {
	switch m {
	case ModeStandalone:
		return "standalone"
	case ModeSentinel:
		return "sentinel"
	case ModeCluster:
		return "cluster"
	}
	return "unknown"
}

// Config says which Redis to use and where each ring's list lives. Build it with [ParseURL] or
// by hand; [Open] validates it. Its String and LogValue never print passwords.
type Config struct {
	// Mode is standalone, Sentinel or Cluster.
	Mode Mode
	// Addrs are host:port addresses: the server (standalone, exactly one), the sentinels, or
	// some cluster nodes (seeds).
	Addrs []string
	// MasterName is the Sentinel master name (Sentinel only).
	MasterName string
	// DB is the database number (not with Cluster).
	DB int
	// Username and Password authenticate to the data servers (ACL user; empty Username means
	// the "default" user).
	Username string
	Password string
	// SentinelUsername and SentinelPassword authenticate to the sentinels, if they need it.
	SentinelUsername string
	SentinelPassword string

	// TLS turns TLS on (rediss://). TLSCAFile is a PEM bundle of CAs to trust instead of the
	// system roots; TLSCertFile and TLSKeyFile a client certificate; TLSServerName overrides
	// the name checked in the server certificate.
	TLS           bool
	TLSCAFile     string
	TLSCertFile   string
	TLSKeyFile    string
	TLSServerName string
	// TLSInsecureSkipVerify accepts any server certificate. Only for tests: it lets anyone on
	// the path read and replace the key ring.
	TLSInsecureSkipVerify bool

	// KeyPrefix is the list key of [DefaultRing]; ring R lives under KeyPrefix+":"+R.
	// Empty means [DefaultKey].
	KeyPrefix string
	// Keys maps ring names to list keys, overriding KeyPrefix for those rings.
	Keys map[string]string

	// WaitReplicas is how many replicas must acknowledge each write (Redis WAIT) before it
	// succeeds; a write they do not acknowledge within WaitTimeout fails with
	// store.ErrUnavailable, so an acknowledged key survives a failover. Zero means automatic:
	// 1 if the master (every master, for Cluster) has a connected replica when the store
	// opens, else none. [WaitNone] turns waiting off.
	WaitReplicas int
	// WaitTimeout bounds the WAIT; zero means [DefaultWaitTimeout].
	WaitTimeout time.Duration
	// DialTimeout bounds connecting; zero means [DefaultDialTimeout].
	DialTimeout time.Duration
}

// ListKey returns the Redis list key holding ring.
func (c Config) ListKey(ring string) string {
	if k, ok := c.Keys[ring]; ok {
		return k
	}
	if ring == DefaultRing {
		return c.prefix()
	}
	return c.prefix() + ":" + ring
}

func (c Config) prefix() string {
	if c.KeyPrefix == "" {
		return DefaultKey
	}
	return c.KeyPrefix
}

// Validate reports an error wrapping store.ErrInvalidSpec if the configuration cannot work.
func (c Config) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: redis: %s", store.ErrInvalidSpec, fmt.Sprintf(format, a...))
	}
	switch c.Mode {
	case ModeStandalone:
		if len(c.Addrs) != 1 {
			return bad("standalone mode needs exactly one address, got %d", len(c.Addrs))
		}
	case ModeSentinel:
		if len(c.Addrs) == 0 {
			return bad("no sentinel address")
		}
		if c.MasterName == "" {
			return bad("no Sentinel master name (redis+sentinel://host:port,.../MASTER)")
		}
	case ModeCluster:
		if len(c.Addrs) == 0 {
			return bad("no cluster node address")
		}
		if c.DB != 0 {
			return bad("a Redis Cluster has only database 0")
		}
	default:
		return bad("unknown mode %d", c.Mode)
	}
	for _, a := range c.Addrs {
		if _, port, err := net.SplitHostPort(a); err != nil || port == "" {
			return bad("address %q is not host:port", a)
		}
	}
	if c.DB < 0 {
		return bad("negative database %d", c.DB)
	}
	if strings.ContainsAny(c.prefix(), "*?[]\\") {
		return bad("key prefix %q contains a glob character (* ? [ ] \\)", c.prefix())
	}
	seen := map[string]string{}
	for ring, key := range c.Keys {
		if err := store.ValidRingName(ring); err != nil {
			return fmt.Errorf("%w: redis: key for %w", store.ErrInvalidSpec, err)
		}
		if key == "" {
			return bad("empty list key for ring %q", ring)
		}
		if other, ok := seen[key]; ok {
			return bad("rings %q and %q both use list key %q", other, ring, key)
		}
		seen[key] = ring
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		return bad("tls_cert_file and tls_key_file go together")
	}
	if !c.TLS && (c.TLSCAFile != "" || c.TLSCertFile != "" || c.TLSServerName != "" || c.TLSInsecureSkipVerify) {
		return bad("TLS options need TLS (use rediss://, rediss+sentinel:// or rediss+cluster://)")
	}
	if c.WaitReplicas < WaitNone {
		return bad("WaitReplicas %d: want a count, 0 (automatic) or WaitNone", c.WaitReplicas)
	}
	if c.WaitTimeout < 0 || c.DialTimeout < 0 {
		return bad("negative timeout")
	}
	return nil
}

// String describes the configuration without secrets.
func (c Config) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "redis %s %s", c.Mode, strings.Join(c.Addrs, ","))
	if c.MasterName != "" {
		fmt.Fprintf(&b, " master=%s", c.MasterName)
	}
	if c.DB != 0 {
		fmt.Fprintf(&b, " db=%d", c.DB)
	}
	if c.Username != "" {
		fmt.Fprintf(&b, " user=%s", c.Username)
	}
	if c.Password != "" {
		b.WriteString(" password=REDACTED")
	}
	if c.SentinelPassword != "" {
		b.WriteString(" sentinel_password=REDACTED")
	}
	if c.TLS {
		b.WriteString(" tls")
		if c.TLSInsecureSkipVerify {
			b.WriteString(" tls_insecure_skip_verify")
		}
	}
	fmt.Fprintf(&b, " key=%s", c.prefix())
	return b.String()
}

// GoString is String, so %#v does not print secrets either.
func (c Config) GoString() string { return c.String() }

// LogValue logs the configuration without secrets.
func (c Config) LogValue() slog.Value { return slog.StringValue(c.String()) }

// ParseURL parses a Redis store spec:
//
//	redis://[USER@]HOST:PORT[/DB][?OPTIONS]                   standalone
//	rediss://...                                               standalone over TLS
//	redis+sentinel://[USER@]HOST:PORT,HOST:PORT/MASTER[/DB][?OPTIONS]
//	redis+cluster://[USER@]HOST:PORT,HOST:PORT[?OPTIONS]
//	rediss+sentinel://..., rediss+cluster://...                 the same over TLS
//
// Options (query parameters):
//
//	key=LISTKEY              list key of the ring named by ring= (default ring "default")
//	ring=NAME                the ring key= applies to
//	prefix=KEY               list key of ring "default"; ring R lives under KEY:R
//	                         (default DataProtection-Keys)
//	username=USER            ACL user (also USER@ in the URL)
//	password_file=PATH       password, from a file (trailing newline removed)
//	sentinel_username=USER, sentinel_password_file=PATH   for sentinels that need auth
//	tls_ca_file=, tls_cert_file=, tls_key_file=, tls_server_name=
//	tls_insecure_skip_verify=true   accept any certificate (tests only)
//	wait_replicas=N          replicas that must acknowledge each write (default: 1 if the
//	                         master has a replica, else none; 0: never wait)
//	wait_timeout=DURATION    (default 2s)
//	dial_timeout=DURATION    (default 5s)
//
// Without password_file the password comes from the env var DPKEYRING_REDIS_PASSWORD
// (DPKEYRING_REDIS_SENTINEL_PASSWORD for sentinels). A password written in the URL itself
// (USER:PASSWORD@) is accepted but discouraged: it ends up in shell history and process lists.
// Errors wrap store.ErrInvalidSpec.
func ParseURL(u *url.URL, getenv func(string) string) (Config, error) {
	var cfg Config
	bad := func(format string, a ...any) (Config, error) {
		return Config{}, fmt.Errorf("%w: redis: %s", store.ErrInvalidSpec, fmt.Sprintf(format, a...))
	}
	if u == nil {
		return bad("no URL")
	}
	switch u.Scheme {
	case "redis":
		cfg.Mode = ModeStandalone
	case "rediss":
		cfg.Mode, cfg.TLS = ModeStandalone, true
	case "redis+sentinel":
		cfg.Mode = ModeSentinel
	case "rediss+sentinel":
		cfg.Mode, cfg.TLS = ModeSentinel, true
	case "redis+cluster":
		cfg.Mode = ModeCluster
	case "rediss+cluster":
		cfg.Mode, cfg.TLS = ModeCluster, true
	default:
		return bad("unknown scheme %q (use redis, rediss, redis+sentinel or redis+cluster)", u.Scheme)
	}
	if u.Opaque != "" || u.Host == "" {
		return bad("no host in %q (use %s://HOST:PORT...)", redacted(u), u.Scheme)
	}
	defaultPort := "6379"
	if cfg.Mode == ModeSentinel {
		defaultPort = "26379"
	}
	for a := range strings.SplitSeq(u.Host, ",") {
		if a == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a); err != nil {
			a = net.JoinHostPort(strings.Trim(a, "[]"), defaultPort)
		}
		cfg.Addrs = append(cfg.Addrs, a)
	}

	path := strings.Trim(u.Path, "/")
	var segs []string
	if path != "" {
		segs = strings.Split(path, "/")
	}
	dbSeg := ""
	switch cfg.Mode {
	case ModeStandalone:
		if len(segs) > 1 {
			return bad("path %q: want /DB", u.Path)
		}
		if len(segs) == 1 {
			dbSeg = segs[0]
		}
	case ModeSentinel:
		if len(segs) == 0 || len(segs) > 2 {
			return bad("path %q: want /MASTER or /MASTER/DB", u.Path)
		}
		cfg.MasterName = segs[0]
		if len(segs) == 2 {
			dbSeg = segs[1]
		}
	case ModeCluster:
		if len(segs) != 0 {
			return bad("path %q: a cluster URL has no path", u.Path)
		}
	}
	if dbSeg != "" {
		db, err := strconv.Atoi(dbSeg)
		if err != nil || db < 0 {
			return bad("database %q is not a number", dbSeg)
		}
		cfg.DB = db
	}

	if u.User != nil {
		cfg.Username = u.User.Username()
		if p, ok := u.User.Password(); ok {
			cfg.Password = p
		}
	}

	q := u.Query()
	for name, vals := range q {
		if !slices.Contains(knownOptions, name) {
			return bad("unknown option %q", name)
		}
		if len(vals) != 1 {
			return bad("option %q given %d times", name, len(vals))
		}
	}
	if v := q.Get("username"); v != "" {
		cfg.Username = v
	}
	if f := q.Get("password_file"); f != "" {
		if cfg.Password != "" {
			return bad("both a password in the URL and password_file")
		}
		p, err := readSecretFile(f)
		if err != nil {
			return bad("password_file: %v", err)
		}
		cfg.Password = p
	}
	if cfg.Password == "" && getenv != nil {
		cfg.Password = getenv(EnvPassword)
	}
	cfg.SentinelUsername = q.Get("sentinel_username")
	if f := q.Get("sentinel_password_file"); f != "" {
		p, err := readSecretFile(f)
		if err != nil {
			return bad("sentinel_password_file: %v", err)
		}
		cfg.SentinelPassword = p
	}
	if cfg.SentinelPassword == "" && getenv != nil {
		cfg.SentinelPassword = getenv(EnvSentinelPassword)
	}
	if cfg.Mode != ModeSentinel && (cfg.SentinelUsername != "" || q.Has("sentinel_password_file")) {
		return bad("sentinel options need redis+sentinel://")
	}

	cfg.TLSCAFile = q.Get("tls_ca_file")
	cfg.TLSCertFile = q.Get("tls_cert_file")
	cfg.TLSKeyFile = q.Get("tls_key_file")
	cfg.TLSServerName = q.Get("tls_server_name")
	if v := q.Get("tls_insecure_skip_verify"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return bad("tls_insecure_skip_verify=%q is not a boolean", v)
		}
		cfg.TLSInsecureSkipVerify = b
	}

	cfg.KeyPrefix = q.Get("prefix")
	if q.Has("prefix") && cfg.KeyPrefix == "" {
		return bad("empty prefix")
	}
	if q.Has("key") {
		ring := DefaultRing
		if q.Has("ring") {
			ring = q.Get("ring")
		}
		if err := store.ValidRingName(ring); err != nil {
			return Config{}, fmt.Errorf("%w: redis: option ring: %w", store.ErrInvalidSpec, err)
		}
		if q.Get("key") == "" {
			return bad("empty key")
		}
		cfg.Keys = map[string]string{ring: q.Get("key")}
	} else if q.Has("ring") {
		return bad("option ring only goes with key=")
	}

	if v := q.Get("wait_replicas"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return bad("wait_replicas=%q is not a number >= 0", v)
		}
		cfg.WaitReplicas = n
		if n == 0 {
			cfg.WaitReplicas = WaitNone
		}
	}
	for _, d := range []struct {
		name string
		dst  *time.Duration
	}{{"wait_timeout", &cfg.WaitTimeout}, {"dial_timeout", &cfg.DialTimeout}} {
		if v := q.Get(d.name); v != "" {
			t, err := time.ParseDuration(v)
			if err != nil || t <= 0 {
				return bad("%s=%q is not a positive duration", d.name, v)
			}
			*d.dst = t
		}
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

var knownOptions = []string{
	"key", "ring", "prefix", "username", "password_file", "sentinel_username",
	"sentinel_password_file", "tls_ca_file", "tls_cert_file", "tls_key_file", "tls_server_name",
	"tls_insecure_skip_verify", "wait_replicas", "wait_timeout", "dial_timeout",
}

func readSecretFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return s, nil
}

// redacted returns u as a string with any password replaced.
func redacted(u *url.URL) string { return u.Redacted() }
