package server

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dpkeyring/dpkeyring/internal/tokens"
	"github.com/dpkeyring/dpkeyring/keyring"
	"github.com/dpkeyring/dpkeyring/store"
)

// ErrInvalidConfig reports a configuration that cannot run; the wrapping error says which
// setting and why.
var ErrInvalidConfig = errors.New("server: invalid configuration")

// Defaults.
const (
	DefaultAddr            = "127.0.0.1:8080"
	DefaultDebugAddr       = "127.0.0.1:8081"
	DefaultData            = "./data"
	DefaultRing            = "default"
	DefaultShutdownTimeout = 15 * time.Second
	// MinRotateInterval is the shortest --rotate-interval accepted.
	MinRotateInterval = time.Second
)

// Duration is a time.Duration that reads and writes "90d" (whole days) or a Go duration
// ("36h", "1h30m") in flags, environment variables and the JSON config file.
type Duration time.Duration

// ParseDuration parses "90d" or a Go duration; negative values are refused.
func ParseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseInt(days, 10, 32)
		if err == nil && n >= 0 {
			return Duration(time.Duration(n) * 24 * time.Hour), nil
		}
	} else if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return Duration(d), nil
	}
	return 0, fmt.Errorf("invalid duration %q: use days such as 90d or a duration such as 36h or 15m", s)
}

// String writes whole days as "90d", anything else as a Go duration.
func (d Duration) String() string {
	td := time.Duration(d)
	if td != 0 && td%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(td/(24*time.Hour)), 10) + "d"
	}
	return td.String()
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// RingConfig is one served ring. Empty fields take the [Config]'s top-level values.
type RingConfig struct {
	// Name is the ring's name (store.ValidRingName).
	Name string `json:"name"`
	// Store is the ring's store spec (file:DIR, redis://…, vault://…).
	Store string `json:"store,omitempty"`
	// AppName is the ASP.NET Core application name (SetApplicationName) of the apps using the
	// ring: the debug endpoint tries it first.
	AppName string `json:"app_name,omitempty"`
	// KeyLifetime and LeadTime are the rotation policy (keyring.Policy).
	KeyLifetime Duration `json:"key_lifetime,omitempty"`
	LeadTime    Duration `json:"lead_time,omitempty"`
}

// Policy returns the ring's rotation policy.
func (r RingConfig) Policy() keyring.Policy {
	return keyring.Policy{Lifetime: time.Duration(r.KeyLifetime), LeadTime: time.Duration(r.LeadTime)}
}

// Config is the server's configuration. [DefaultConfig] gives the defaults; [Load] merges a
// config file, DPKEYRING_* environment variables and flags over them.
type Config struct {
	// Addr is the API listen address (host:port; port 0 picks a free port).
	Addr string `json:"addr,omitempty"`
	// Data is the server's own folder: the tokens file, the audit log, and the embedded file
	// store (the default Store "file:DATA").
	Data string `json:"data,omitempty"`
	// Store, AppName, KeyLifetime and LeadTime are the defaults of every ring.
	Store       string   `json:"store,omitempty"`
	AppName     string   `json:"app_name,omitempty"`
	KeyLifetime Duration `json:"key_lifetime,omitempty"`
	LeadTime    Duration `json:"lead_time,omitempty"`
	// Rings are the served rings; default one ring named "default".
	Rings []RingConfig `json:"rings,omitempty"`
	// RotateInterval runs the rotation of every ring at this interval (shortened by a random
	// jitter of up to 10%, so replicas spread out) and once at start; at most 24h. 0 turns the
	// scheduler off (rotation by cron or the API; the server still rotates once at start).
	RotateInterval Duration `json:"rotate_interval,omitempty"`
	// EnableDebugDecrypt serves the cookie-decrypt debug endpoint on DebugAddr.
	EnableDebugDecrypt bool   `json:"enable_debug_decrypt,omitempty"`
	DebugAddr          string `json:"debug_addr,omitempty"`
	// TLSCert and TLSKey are PEM files; both or neither. They are re-read when they change.
	TLSCert string `json:"tls_cert,omitempty"`
	TLSKey  string `json:"tls_key,omitempty"`
	// ClientCA is a PEM bundle: when set, clients must present a certificate it signed.
	ClientCA string `json:"client_ca,omitempty"`
	// Certificates are files (PKCS#12 or PEM with the private key) of the certificates that
	// protect master keys imported from ASP.NET Core (ProtectKeysWithCertificate), so such keys
	// can be read; CertificatePasswordFile holds the PKCS#12 password. Keys the server creates
	// are not protected by them.
	Certificates            []string `json:"certificates,omitempty"`
	CertificatePasswordFile string   `json:"certificate_password_file,omitempty"`
	// AuditLog is the audit log file; default DATA/audit.log.
	AuditLog string `json:"audit_log,omitempty"`
	// TokensFile is the tokens file; always DATA/tokens.json (not configurable, so that
	// "dpkeyring token --data DIR" finds it).
	TokensFile string `json:"-"`
	// ShutdownTimeout bounds the graceful shutdown.
	ShutdownTimeout Duration `json:"shutdown_timeout,omitempty"`
}

// DefaultConfig returns the configuration of "dpkeyring serve" without any setting.
func DefaultConfig() Config {
	p := keyring.DefaultPolicy()
	return Config{
		Addr:            DefaultAddr,
		Data:            DefaultData,
		KeyLifetime:     Duration(p.Lifetime),
		LeadTime:        Duration(p.LeadTime),
		DebugAddr:       DefaultDebugAddr,
		ShutdownTimeout: Duration(DefaultShutdownTimeout),
	}
}

// complete fills the derived settings: ring defaults, the default store and audit log.
func (c *Config) complete() {
	if c.Data == "" {
		c.Data = DefaultData
	}
	if c.Store == "" {
		c.Store = "file:" + c.Data
	}
	if c.AuditLog == "" {
		c.AuditLog = filepath.Join(c.Data, "audit.log")
	}
	c.TokensFile = tokens.Path(c.Data)
	if len(c.Rings) == 0 {
		c.Rings = []RingConfig{{Name: DefaultRing}}
	}
	for i := range c.Rings {
		r := &c.Rings[i]
		if r.Store == "" {
			r.Store = c.Store
		}
		if r.AppName == "" {
			r.AppName = c.AppName
		}
		if r.KeyLifetime == 0 {
			r.KeyLifetime = c.KeyLifetime
		}
		if r.LeadTime == 0 {
			r.LeadTime = c.LeadTime
		}
	}
}

// Validate reports the first setting that cannot work, wrapping [ErrInvalidConfig].
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return bad("addr %q: %v", c.Addr, err)
	}
	if c.Data == "" {
		return bad("data folder is empty")
	}
	if len(c.Rings) == 0 {
		return bad("no rings")
	}
	seen := map[string]bool{}
	for _, r := range c.Rings {
		if err := store.ValidRingName(r.Name); err != nil {
			return bad("%v", err)
		}
		if seen[r.Name] {
			return bad("ring %q is configured twice", r.Name)
		}
		seen[r.Name] = true
		if r.Store == "" {
			return bad("ring %q has no store", r.Name)
		}
		if err := r.Policy().Validate(); err != nil {
			return bad("ring %q: %v", r.Name, err)
		}
	}
	if c.RotateInterval != 0 {
		if time.Duration(c.RotateInterval) < MinRotateInterval {
			return bad("rotate interval %s is shorter than %s", c.RotateInterval, MinRotateInterval)
		}
		// The policy's guarantees hold only if it is applied at least this often (the
		// scheduler's jitter only shortens the interval).
		if time.Duration(c.RotateInterval) > keyring.MaxDecideInterval {
			return bad("rotate interval %s is longer than %s: successors could be published too late", c.RotateInterval, keyring.MaxDecideInterval)
		}
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return bad("tls cert and tls key must be given together")
	}
	if c.ClientCA != "" && c.TLSCert == "" {
		return bad("client CA needs TLS (tls cert and key)")
	}
	if c.EnableDebugDecrypt {
		host, _, err := net.SplitHostPort(c.DebugAddr)
		if err != nil {
			return bad("debug addr %q: %v", c.DebugAddr, err)
		}
		if !isLoopback(host) {
			return bad("debug addr %q is not a loopback address: the debug endpoint is only served on 127.0.0.1, ::1 or localhost", c.DebugAddr)
		}
		if _, port, _ := net.SplitHostPort(c.DebugAddr); c.DebugAddr == c.Addr && port != "0" {
			return bad("debug addr must differ from addr")
		}
	}
	if c.CertificatePasswordFile != "" && len(c.Certificates) == 0 {
		return bad("certificate password file without certificates")
	}
	if c.ShutdownTimeout <= 0 {
		return bad("shutdown timeout must be positive")
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// Flags holds the serve command-line flags bound by [BindFlags], for [Load].
type Flags struct {
	fs     *flag.FlagSet
	values map[string]string
	rings  []string
	certs  []string
}

// setting is one option settable by flag, environment variable and config file (by its JSON
// field through the Config struct).
type setting struct {
	flag, env, usage string
	isBool           bool
	set              func(c *Config, v string) error
}

func durationSetter(field func(c *Config) *Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := ParseDuration(v)
		if err != nil {
			return err
		}
		*field(c) = d
		return nil
	}
}

func stringSetter(field func(c *Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error { *field(c) = v; return nil }
}

var settings = []setting{
	{flag: "addr", env: "DPKEYRING_ADDR", usage: "API listen address HOST:PORT", set: stringSetter(func(c *Config) *string { return &c.Addr })},
	{flag: "data", env: "DPKEYRING_DATA", usage: "data folder (tokens, audit log, embedded store)", set: stringSetter(func(c *Config) *string { return &c.Data })},
	{flag: "store", env: "DPKEYRING_STORE", usage: "default store spec of the rings", set: stringSetter(func(c *Config) *string { return &c.Store })},
	{flag: "app-name", env: "DPKEYRING_APP_NAME", usage: "default application name of the rings", set: stringSetter(func(c *Config) *string { return &c.AppName })},
	{flag: "key-lifetime", env: "DPKEYRING_KEY_LIFETIME", usage: "default key lifetime", set: durationSetter(func(c *Config) *Duration { return &c.KeyLifetime })},
	{flag: "lead-time", env: "DPKEYRING_LEAD_TIME", usage: "default lead time", set: durationSetter(func(c *Config) *Duration { return &c.LeadTime })},
	{flag: "rotate-interval", env: "DPKEYRING_ROTATE_INTERVAL", usage: "built-in rotation scheduler interval (0: off)", set: durationSetter(func(c *Config) *Duration { return &c.RotateInterval })},
	{flag: "enable-debug-decrypt", env: "DPKEYRING_ENABLE_DEBUG_DECRYPT", isBool: true, usage: "serve the cookie-decrypt debug endpoint on --debug-addr", set: func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("invalid boolean %q", v)
		}
		c.EnableDebugDecrypt = b
		return nil
	}},
	{flag: "debug-addr", env: "DPKEYRING_DEBUG_ADDR", usage: "loopback listen address of the debug endpoint", set: stringSetter(func(c *Config) *string { return &c.DebugAddr })},
	{flag: "tls-cert", env: "DPKEYRING_TLS_CERT", usage: "TLS certificate (PEM)", set: stringSetter(func(c *Config) *string { return &c.TLSCert })},
	{flag: "tls-key", env: "DPKEYRING_TLS_KEY", usage: "TLS private key (PEM)", set: stringSetter(func(c *Config) *string { return &c.TLSKey })},
	{flag: "client-ca", env: "DPKEYRING_CLIENT_CA", usage: "require client certificates signed by these CAs (PEM)", set: stringSetter(func(c *Config) *string { return &c.ClientCA })},
	{flag: "cert-password-file", env: "DPKEYRING_CERT_PASSWORD_FILE", usage: "PKCS#12 password of --cert", set: stringSetter(func(c *Config) *string { return &c.CertificatePasswordFile })},
	{flag: "audit-log", env: "DPKEYRING_AUDIT_LOG", usage: "audit log file (default DATA/audit.log)", set: stringSetter(func(c *Config) *string { return &c.AuditLog })},
	{flag: "shutdown-timeout", env: "DPKEYRING_SHUTDOWN_TIMEOUT", usage: "graceful shutdown timeout", set: durationSetter(func(c *Config) *Duration { return &c.ShutdownTimeout })},
}

// Environment variables besides those of the flags.
const (
	EnvConfig = "DPKEYRING_CONFIG" // the config file, like --config
	EnvRings  = "DPKEYRING_RINGS"  // comma-separated ring names, like repeated --ring
	EnvCerts  = "DPKEYRING_CERTS"  // comma-separated certificate files, like repeated --cert
)

// BindFlags defines the serve flags on fs: --config FILE, --ring NAME and --cert FILE
// (repeatable) and one flag per setting (--addr, --data, --store, --app-name, --key-lifetime,
// --lead-time, --rotate-interval, --enable-debug-decrypt, --debug-addr, --tls-cert, --tls-key,
// --client-ca, --cert-password-file, --audit-log, --shutdown-timeout).
func BindFlags(fs *flag.FlagSet) *Flags {
	f := &Flags{fs: fs, values: map[string]string{}}
	fs.Func("config", "config file (JSON)", func(v string) error { f.values["config"] = v; return nil })
	fs.Func("ring", "serve this ring (repeatable); replaces the config file's rings", func(v string) error {
		if err := store.ValidRingName(v); err != nil {
			return err
		}
		f.rings = append(f.rings, v)
		return nil
	})
	fs.Func("cert", "certificate protecting imported master keys (repeatable); replaces the config file's", func(v string) error {
		f.certs = append(f.certs, v)
		return nil
	})
	for _, s := range settings {
		name := s.flag
		if s.isBool {
			fs.BoolFunc(name, s.usage, func(v string) error {
				if _, err := strconv.ParseBool(v); err != nil {
					return fmt.Errorf("invalid boolean %q", v)
				}
				f.values[name] = v
				return nil
			})
			continue
		}
		fs.Func(name, s.usage, func(v string) error { f.values[name] = v; return nil })
	}
	return f
}

// Load builds the configuration: [DefaultConfig], then the config file (--config or
// DPKEYRING_CONFIG), then DPKEYRING_* environment variables, then the flags set on the command
// line; later sources win. Ring names from --ring or DPKEYRING_RINGS replace the file's rings.
// It then fills the derived settings (each ring's store, application name and policy from the
// top-level ones; the default store file:DATA; the audit log DATA/audit.log) and validates.
// f may be nil (no flags). Errors wrap [ErrInvalidConfig].
func Load(f *Flags, getenv func(string) string) (Config, error) {
	if f == nil {
		f = &Flags{values: map[string]string{}}
	}
	c := DefaultConfig()
	path := getenv(EnvConfig)
	if v, ok := f.values["config"]; ok {
		path = v
	}
	if path != "" {
		if err := c.loadFile(path); err != nil {
			return Config{}, err
		}
	}
	for _, s := range settings {
		if v := getenv(s.env); v != "" {
			if err := s.set(&c, v); err != nil {
				return Config{}, fmt.Errorf("%w: %s: %v", ErrInvalidConfig, s.env, err)
			}
		}
	}
	rings := f.rings
	if len(rings) == 0 {
		for r := range strings.SplitSeq(getenv(EnvRings), ",") {
			if r = strings.TrimSpace(r); r != "" {
				rings = append(rings, r)
			}
		}
	}
	for _, s := range settings {
		if v, ok := f.values[s.flag]; ok {
			if err := s.set(&c, v); err != nil {
				return Config{}, fmt.Errorf("%w: --%s: %v", ErrInvalidConfig, s.flag, err)
			}
		}
	}
	certs := f.certs
	if len(certs) == 0 {
		for p := range strings.SplitSeq(getenv(EnvCerts), ",") {
			if p = strings.TrimSpace(p); p != "" {
				certs = append(certs, p)
			}
		}
	}
	if len(certs) > 0 {
		c.Certificates = certs
	}
	if len(rings) > 0 {
		c.Rings = nil
		for _, r := range slices.Compact(rings) {
			c.Rings = append(c.Rings, RingConfig{Name: r})
		}
	}
	c.complete()
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// loadFile merges the JSON config file at path into c. Unknown fields are errors (a typo must
// not silently fall back to a default).
func (c *Config) loadFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%w: config file: %w", ErrInvalidConfig, err)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(c); err != nil {
		return fmt.Errorf("%w: config file %s: %v", ErrInvalidConfig, path, err)
	}
	return nil
}
