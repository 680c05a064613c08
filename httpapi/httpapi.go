// Package httpapi is the HTTP API v1 of the dpkeyring server: key rings for ASP.NET Core nodes
// (XML or JSON, ETag, long-poll), ring status, rotation and revocation through the single
// writer, the opt-in cookie-decrypt debug endpoint, health, readiness and Prometheus metrics.
//
// [New] builds the handler from small interfaces the server provides (the ring cache, the
// authenticator, one writer per ring, the audit log). Every route is in routes.go; the OpenAPI
// document (openapi.yaml, served at /v1/openapi.yaml) is the public contract.
//
// # Errors
//
// Every error answer is JSON {"error": "...", "code": "..."} with one of the codes listed in
// the OpenAPI document. 5xx errors are logged with the request id; 4xx are not.
//
// # Roles
//
// Bearer tokens map to a [Principal] with a [Role]: [RoleNode] reads the rings it is granted,
// [RoleAdmin] reads any ring it is granted, sees status, rotates and revokes, [RoleDebug] may
// only use the debug endpoint. A token with no rings listed is granted every ring.
package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/dpkeyring/dpkeyring/internal/audit"
	"github.com/dpkeyring/dpkeyring/internal/ringcache"
	"github.com/dpkeyring/dpkeyring/internal/rotation"
	"github.com/dpkeyring/dpkeyring/internal/tokens"
	"github.com/dpkeyring/dpkeyring/keyring"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// RingCache serves the last good snapshot of each ring: [*ringcache.Cache] implements it.
type RingCache interface {
	// Get returns the ring's current entry, or an error wrapping ringcache.ErrUnknownRing or
	// ringcache.ErrNotLoaded.
	Get(ring string) (ringcache.Entry, error)
	// Wait returns the ring's entry once its version differs from have, or the unchanged entry
	// with ctx's error when ctx ends.
	Wait(ctx context.Context, ring string, have uint64) (ringcache.Entry, error)
	// Invalidate re-reads the ring from the store at once (after a write).
	Invalidate(ctx context.Context, ring string) error
	// Health reports the state of the ring's refreshes.
	Health(ring string) ringcache.Health
	// History reports when recent versions of the ring were first seen.
	History(ring string) []ringcache.VersionSeen
}

var _ RingCache = (*ringcache.Cache)(nil)

// RingWriter rotates and revokes the keys of one ring under the store's lock:
// [*rotation.Rotator] implements it.
type RingWriter interface {
	Rotate(ctx context.Context, req rotation.Request) (rotation.Result, error)
	Revoke(ctx context.Context, rev keyring.Revocation) (uint64, error)
}

var _ RingWriter = (*rotation.Rotator)(nil)

var (
	_ Authenticator = (*tokens.Set)(nil)
	_ Auditor       = (*audit.Log)(nil)
)

// Writers returns the writer of a ring. It returns an error if the ring has none (the API then
// answers 404 ring_not_found).
type Writers interface {
	Writer(ring string) (RingWriter, error)
}

// WritersFunc adapts a function to [Writers].
type WritersFunc func(ring string) (RingWriter, error)

// Writer calls f.
func (f WritersFunc) Writer(ring string) (RingWriter, error) { return f(ring) }

// Authenticator checks bearer tokens: [*tokens.Set] implements it. Authenticate returns the
// token's principal, or false for an unknown token. Implementations compare token hashes in
// constant time.
type Authenticator interface {
	Authenticate(token string) (Principal, bool)
}

// AuthenticatorFunc adapts a function to [Authenticator].
type AuthenticatorFunc func(token string) (Principal, bool)

// Authenticate calls f.
func (f AuthenticatorFunc) Authenticate(token string) (Principal, bool) { return f(token) }

// Auditor records audit events (rotate, revoke, decrypt): [*audit.Log] implements it. Record
// must not fail the request: implementations report their own failures.
type Auditor interface {
	Record(ctx context.Context, e audit.Event)
}

// AuditorFunc adapts a function to [Auditor].
type AuditorFunc func(ctx context.Context, e audit.Event)

// Record calls f.
func (f AuditorFunc) Record(ctx context.Context, e audit.Event) { f(ctx, e) }

// Ring is the configuration of one served ring.
type Ring struct {
	// Name is the ring's name.
	Name string
	// Policy is its rotation policy: readiness fails when the ring would run out of a default
	// key within Policy.LeadTime, and status reports the next rotation by it.
	Policy keyring.Policy
	// AppNames are the application names the debug endpoint tries when the request names none.
	AppNames []string
}

// Config holds the dependencies and settings of [New].
type Config struct {
	// Rings are the rings served, in the order GET /v1/rings lists them. Required.
	Rings []Ring
	// Cache serves the rings. Required.
	Cache RingCache
	// Auth checks bearer tokens. Required.
	Auth Authenticator
	// Writers gives each ring's writer. Nil makes every write answer 503 store_unavailable.
	Writers Writers
	// Auditor records writes and decryptions; nil records nothing.
	Auditor Auditor
	// Logger receives the access log and 5xx errors; nil discards them.
	Logger *slog.Logger
	// Registry receives the metrics served at /metrics; nil makes a new registry with the Go
	// and process collectors.
	Registry *prometheus.Registry
	// Now returns the current time; default time.Now.
	Now func() time.Time
	// MaxBodyBytes caps request bodies (413 above); default 64 KiB.
	MaxBodyBytes int64
	// MaxWait caps the long-poll ?wait= duration; default 120s. The http.Server's WriteTimeout
	// must be longer.
	MaxWait time.Duration
	// MetricsPublic serves /metrics without a token. Otherwise any valid token may read it.
	MetricsPublic bool
	// EnableDebugDecrypt mounts POST /v1/rings/{ring}/debug/decrypt-cookie (404 otherwise).
	EnableDebugDecrypt bool
	// DebugRate and DebugBurst limit the debug endpoint (all callers together); default one
	// request a second, burst 5.
	DebugRate  rate.Limit
	DebugBurst int
	// NodeLagThreshold is how long a node may hold an old ring version before it counts as
	// lagging; default 5 minutes.
	NodeLagThreshold time.Duration
	// NodeForget drops nodes not seen for this long from status and metrics; default 24 hours.
	NodeForget time.Duration
	// MaxNodes caps the nodes tracked per ring (the least recently seen are dropped); default
	// 10,000.
	MaxNodes int
}

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 64 << 10
	}
	if c.MaxWait <= 0 {
		c.MaxWait = 120 * time.Second
	}
	if c.DebugRate <= 0 {
		c.DebugRate = rate.Every(time.Second)
	}
	if c.DebugBurst <= 0 {
		c.DebugBurst = 5
	}
	if c.NodeLagThreshold <= 0 {
		c.NodeLagThreshold = 5 * time.Minute
	}
	if c.NodeForget <= 0 {
		c.NodeForget = 24 * time.Hour
	}
	if c.MaxNodes <= 0 {
		c.MaxNodes = 10000
	}
}

// ErrConfig reports a [Config] missing a required dependency.
var ErrConfig = errors.New("httpapi: invalid configuration")

// handler holds the dependencies of every route.
type handler struct {
	cfg      Config
	rings    map[string]Ring
	log      *slog.Logger
	nodes    *nodeTracker
	metrics  *metrics
	debug    *rate.Limiter
	render   renderCache
	patterns routePatterns
}

// New returns the API's handler. It returns an error wrapping [ErrConfig] if Rings, Cache or
// Auth is missing, or the metrics cannot be registered.
func New(cfg Config) (http.Handler, error) {
	if len(cfg.Rings) == 0 || cfg.Cache == nil || cfg.Auth == nil {
		return nil, errors.Join(ErrConfig, errors.New("httpapi: Rings, Cache and Auth are required"))
	}
	cfg.setDefaults()
	h := &handler{
		cfg:   cfg,
		rings: make(map[string]Ring, len(cfg.Rings)),
		log:   cfg.Logger,
		nodes: newNodeTracker(cfg.MaxNodes),
		debug: rate.NewLimiter(cfg.DebugRate, cfg.DebugBurst),
	}
	for _, r := range cfg.Rings {
		h.rings[r.Name] = r
	}
	m, err := newMetrics(cfg.Registry, h)
	if err != nil {
		return nil, errors.Join(ErrConfig, err)
	}
	h.metrics = m
	return h.routes(), nil
}
