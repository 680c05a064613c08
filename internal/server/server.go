package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mathrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dpkeyring/dpkeyring/httpapi"
	"github.com/dpkeyring/dpkeyring/internal/audit"
	"github.com/dpkeyring/dpkeyring/internal/ringcache"
	"github.com/dpkeyring/dpkeyring/internal/rotation"
	"github.com/dpkeyring/dpkeyring/internal/storespec"
	"github.com/dpkeyring/dpkeyring/internal/tokens"
	"github.com/dpkeyring/dpkeyring/keyring"
	"github.com/dpkeyring/dpkeyring/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Timeouts of the HTTP servers. WriteTimeout is derived from the long-poll limit.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	idleTimeout       = 120 * time.Second
	maxLongPoll       = 120 * time.Second
	writeTimeout      = maxLongPoll + 30*time.Second
	maxHeaderBytes    = 64 << 10
	// shutdownGrace is how long in-flight requests may finish on their own before their
	// contexts are cancelled (which ends long-polls at once).
	shutdownGrace = 2 * time.Second
)

// ring is one served ring with its store and writer.
type ring struct {
	cfg     RingConfig
	store   storespec.Store
	rotator *rotation.Rotator
}

type server struct {
	cfg    Config
	log    *slog.Logger
	stdout io.Writer
	audit  *audit.Log
	tokens *tokens.Set
	stores map[string]storespec.Store // by spec
	rings  map[string]*ring
	names  []string
	cache  *ringcache.Cache
	// parseOpts reads the rings (certificates for imported protected keys).
	parseOpts keyring.ParseOptions
}

// Run runs the server until ctx is done, then shuts it down gracefully (in-flight requests get
// cfg.ShutdownTimeout). It validates cfg, binds the listeners, prints the first tokens to
// stdout on the first start, and logs (JSON, to logger) "listening" with the bound address. It
// returns an error wrapping [ErrInvalidConfig] for a bad cfg, or the first failure to start.
func Run(ctx context.Context, cfg Config, logger *slog.Logger, stdout io.Writer) (err error) {
	cfg.complete()
	if err := cfg.Validate(); err != nil {
		return err
	}
	s := &server{cfg: cfg, log: logger, stdout: stdout, stores: map[string]storespec.Store{}, rings: map[string]*ring{}}
	routeRedisLogs(logger)
	defer s.closeStores()

	if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
		return fmt.Errorf("server: data folder: %w", err)
	}
	tlsConfig, err := s.tlsConfig()
	if err != nil {
		return err
	}
	lc := net.ListenConfig{}
	ln, err := lc.Listen(ctx, "tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	defer ln.Close()
	var debugLn net.Listener
	if cfg.EnableDebugDecrypt {
		if debugLn, err = lc.Listen(ctx, "tcp", cfg.DebugAddr); err != nil {
			return fmt.Errorf("server: debug listener: %w", err)
		}
		defer debugLn.Close()
	}

	if s.audit, err = audit.Open(cfg.AuditLog); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	defer s.audit.Close()
	// Open the stores first: a start that fails on its store must not use up the one printing
	// of the first tokens.
	if s.parseOpts, err = loadCertificates(cfg.Certificates, cfg.CertificatePasswordFile); err != nil {
		return err
	}
	if err := s.openRings(ctx); err != nil {
		return err
	}
	if err := s.firstTokens(); err != nil {
		return err
	}
	if s.tokens, err = tokens.Open(cfg.TokensFile); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	for _, name := range s.names {
		s.rotate(ctx, name, "start")
	}

	s.cache, err = ringcache.New(ringcache.Config{
		Store: listers(s.rings),
		Rings: s.names,
		Parse: func(elements [][]byte) (*keyring.Ring, error) {
			return keyring.ParseElements(elements, s.parseOpts)
		},
	})
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	s.cache.RefreshAll(ctx)
	for _, name := range s.names {
		if h := s.cache.Health(name); h.Err != nil {
			logger.Warn("ring not loaded", "ring", name, "error", h.Err.Error())
		}
	}

	api, err := s.handler(false, nil)
	if err != nil {
		return err
	}
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	// Request contexts derive from baseCtx, cancelled shortly after shutdown starts so that
	// long-polls end instead of holding the shutdown.
	baseCtx, cancelBase := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBase()
	newHTTPServer := func(h http.Handler) *http.Server {
		return &http.Server{
			Handler:           h,
			ReadHeaderTimeout: readHeaderTimeout,
			ReadTimeout:       readTimeout,
			WriteTimeout:      writeTimeout,
			IdleTimeout:       idleTimeout,
			MaxHeaderBytes:    maxHeaderBytes,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
			BaseContext:       func(net.Listener) context.Context { return baseCtx },
		}
	}
	apiServer := newHTTPServer(api)
	apiServer.TLSConfig = tlsConfig
	servers := []*http.Server{apiServer}
	serveErr := make(chan error, 2)
	var wg sync.WaitGroup
	wg.Go(func() {
		var err error
		if tlsConfig != nil {
			err = apiServer.ServeTLS(ln, "", "")
		} else {
			err = apiServer.Serve(ln)
		}
		if !errors.Is(err, http.ErrServerClosed) {
			serveErr <- fmt.Errorf("server: %w", err)
		}
	})
	scheme := "http"
	if tlsConfig != nil {
		scheme = "https"
	}
	logger.Info("listening", "addr", ln.Addr().String(), "url", scheme+"://"+ln.Addr().String(),
		"tls", tlsConfig != nil, "client_certificates", cfg.ClientCA != "", "rings", s.names,
		"rotate_interval", cfg.RotateInterval.String())
	if debugLn != nil {
		debug, err := s.handler(true, prometheus.NewRegistry())
		if err != nil {
			return err
		}
		ds := newHTTPServer(debug)
		servers = append(servers, ds)
		wg.Go(func() {
			if err := ds.Serve(debugLn); !errors.Is(err, http.ErrServerClosed) {
				serveErr <- fmt.Errorf("server: debug listener: %w", err)
			}
		})
		logger.Warn("debug decrypt endpoint enabled", "addr", debugLn.Addr().String(),
			"url", "http://"+debugLn.Addr().String()+"/v1/rings/{ring}/debug/decrypt-cookie")
	}

	wg.Go(func() { _ = s.cache.Run(runCtx) })
	wg.Go(func() { s.watchTokens(runCtx) })
	if cfg.RotateInterval > 0 {
		for _, name := range s.names {
			wg.Go(func() { s.schedule(runCtx, name) })
		}
	}

	select {
	case <-ctx.Done():
	case err = <-serveErr:
		logger.Error("server failed", "error", err.Error())
	}
	logger.Info("shutting down", "timeout", cfg.ShutdownTimeout.String())
	stopRun()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Duration(cfg.ShutdownTimeout))
	defer cancel()
	grace := time.AfterFunc(min(shutdownGrace, time.Duration(cfg.ShutdownTimeout)/2), cancelBase)
	defer grace.Stop()
	var shutdownErr error
	for _, hs := range servers {
		if e := hs.Shutdown(sctx); e != nil {
			shutdownErr = errors.Join(shutdownErr, fmt.Errorf("server: shutdown: %w", e))
			hs.Close()
		}
	}
	wg.Wait()
	logger.Info("stopped")
	return errors.Join(err, shutdownErr)
}

// handler builds the API handler; debug mounts the debug endpoint (the debug listener).
func (s *server) handler(debug bool, reg *prometheus.Registry) (http.Handler, error) {
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	rings := make([]httpapi.Ring, 0, len(s.names))
	for _, name := range s.names {
		rc := s.rings[name].cfg
		var apps []string
		if rc.AppName != "" {
			apps = []string{rc.AppName}
		}
		rings = append(rings, httpapi.Ring{Name: name, Policy: rc.Policy(), AppNames: apps})
	}
	h, err := httpapi.New(httpapi.Config{
		Rings:              rings,
		Cache:              s.cache,
		Auth:               s.tokens,
		Writers:            httpapi.WritersFunc(s.writer),
		Auditor:            httpapi.AuditorFunc(s.record),
		Logger:             s.log,
		Registry:           reg,
		MaxWait:            maxLongPoll,
		EnableDebugDecrypt: debug,
	})
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	return h, nil
}

func (s *server) writer(name string) (httpapi.RingWriter, error) {
	r, ok := s.rings[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ringcache.ErrUnknownRing, name)
	}
	return r.rotator, nil
}

func (s *server) record(ctx context.Context, e audit.Event) {
	s.audit.Record(ctx, e)
	if err := s.audit.Err(); err != nil {
		s.log.Error("audit log write failed", "path", s.cfg.AuditLog, "error", err.Error())
	}
}

// firstTokens creates the admin and node tokens when the tokens file holds none, and a debug
// token when the debug endpoint is enabled and no debug token exists, and prints them once.
func (s *server) firstTokens() error {
	existing, err := tokens.Load(s.cfg.TokensFile)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	var news []tokens.NewToken
	if len(existing) == 0 {
		news = append(news,
			tokens.NewToken{Name: "admin", Role: tokens.RoleAdmin},
			tokens.NewToken{Name: "node", Role: tokens.RoleNode})
	}
	if s.cfg.EnableDebugDecrypt && !slices.ContainsFunc(existing, func(t tokens.Token) bool { return t.Role == tokens.RoleDebug }) &&
		!slices.ContainsFunc(existing, func(t tokens.Token) bool { return t.Name == "debug" }) {
		news = append(news, tokens.NewToken{Name: "debug", Role: tokens.RoleDebug})
	}
	if len(news) == 0 {
		return nil
	}
	secrets, err := tokens.Create(s.cfg.TokensFile, time.Now(), store.ValidRingName, news...)
	if err != nil {
		return fmt.Errorf("server: creating the first tokens: %w", err)
	}
	var b strings.Builder
	b.WriteString("dpkeyring: generated API tokens. STORE THEM NOW: they are shown only this once\n")
	fmt.Fprintf(&b, "(only their SHA-256 hashes are kept, in %s).\n\n", s.cfg.TokensFile)
	for i, n := range news {
		fmt.Fprintf(&b, "  %-6s %s  (role %s: %s)\n", n.Name, secrets[i], n.Role, roleHelp(n.Role))
	}
	b.WriteString("\nUse one as \"Authorization: Bearer TOKEN\". Create more with 'dpkeyring token create', revoke with\n'dpkeyring token revoke NAME'.\n")
	_, err = io.WriteString(s.stdout, b.String())
	for _, n := range news {
		s.audit.Record(context.Background(), audit.Event{Action: audit.ActionTokenCreate, Role: n.Role.String(), TokenName: n.Name, Reason: "first start", Result: audit.ResultOK})
		s.log.Info("token created", "token_name", n.Name, "role", n.Role.String())
	}
	return err
}

func roleHelp(r tokens.Role) string {
	switch r {
	case tokens.RoleAdmin:
		return "rotate, revoke, status, read every ring"
	case tokens.RoleNode:
		return "read every ring"
	case tokens.RoleDebug:
		return "cookie-decrypt debug endpoint"
	}
	return ""
}

// openRings opens every distinct store once and builds each ring's rotator, logging the
// stores' warnings (Redis eviction and persistence).
func (s *server) openRings(ctx context.Context) error {
	owner := ownerID()
	for _, rc := range s.cfg.Rings {
		st, ok := s.stores[rc.Store]
		if !ok {
			var err error
			st, err = storespec.Open(ctx, rc.Store, os.Getenv)
			if err != nil {
				return fmt.Errorf("server: ring %s: opening store %s: %w", rc.Name, storespec.Redact(rc.Store), err)
			}
			s.stores[rc.Store] = st
			s.log.Info("store opened", "store", storespec.Redact(rc.Store))
			if c, ok := st.(interface {
				Check(context.Context) ([]string, error)
			}); ok {
				warnings, err := c.Check(ctx)
				if err != nil {
					s.log.Warn("store check failed", "store", storespec.Redact(rc.Store), "error", err.Error())
				}
				for _, w := range warnings {
					s.log.Warn("store warning", "store", storespec.Redact(rc.Store), "warning", w)
				}
			}
		}
		s.rings[rc.Name] = &ring{cfg: rc, store: st, rotator: &rotation.Rotator{
			Store: st, Ring: rc.Name, Policy: rc.Policy(), Owner: owner, ParseOptions: s.parseOpts,
		}}
		s.names = append(s.names, rc.Name)
	}
	slices.Sort(s.names)
	return nil
}

func (s *server) closeStores() {
	for spec, st := range s.stores {
		if err := st.Close(); err != nil {
			s.log.Warn("closing store", "store", storespec.Redact(spec), "error", err.Error())
		}
	}
}

// ownerID names this process in store leases: host/pid/random.
func ownerID() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// schedule rotates ring every RotateInterval (minus up to 10% jitter, so replicas spread out)
// until ctx is done; after a failure it retries within a minute.
func (s *server) schedule(ctx context.Context, name string) {
	interval := time.Duration(s.cfg.RotateInterval)
	retry := min(interval, time.Minute)
	ok := true
	for {
		wait := interval
		if !ok {
			wait = retry // a failed rotation is retried soon
		}
		wait -= time.Duration(mathrand.Int64N(int64(wait)/10 + 1))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		ok = s.rotate(ctx, name, "scheduler")
	}
}

// rotate applies the policy to ring once, logs what happened, audits a created key or a
// failure, and refreshes the cache after a write. It reports whether the rotation succeeded.
func (s *server) rotate(ctx context.Context, name, who string) bool {
	r := s.rings[name]
	res, err := r.rotator.Rotate(ctx, rotation.Request{Reason: who})
	if err != nil {
		if ctx.Err() != nil {
			return false
		}
		s.log.Error("rotation failed", "ring", name, "by", who, "error", err.Error())
		s.audit.Record(ctx, audit.Event{Action: audit.ActionRotate, Role: "system", TokenName: who, Ring: name, Result: audit.ResultFailed, Error: err.Error()})
		return false
	}
	if !res.Created {
		s.log.Info("rotation not due", "ring", name, "by", who, "next_due", res.NextDue, "reason", res.Decision.Reason)
		return true
	}
	s.log.Info("key created", "ring", name, "by", who, "key_id", res.Key.ID.String(),
		"activation", res.Key.Activation, "expiration", res.Key.Expiration, "next_due", res.NextDue, "reason", res.Decision.Reason)
	s.audit.Record(ctx, audit.Event{Action: audit.ActionRotate, Role: "system", TokenName: who, Ring: name,
		KeyID: res.Key.ID.String(), Reason: res.Decision.Reason, Result: audit.ResultCreated})
	if s.cache != nil {
		if err := s.cache.Invalidate(ctx, name); err != nil {
			s.log.Warn("ring refresh after rotation failed", "ring", name, "error", err.Error())
		}
	}
	return true
}

// listers routes each ring's List to its store, for the ring cache.
type listers map[string]*ring

func (l listers) List(ctx context.Context, name string) (store.Snapshot, error) {
	r, ok := l[name]
	if !ok {
		return store.Snapshot{}, fmt.Errorf("%w: ring %q", store.ErrNotFound, name)
	}
	return r.store.List(ctx, name)
}

// watchTokens re-reads the tokens file every second (authentication also does, at most once a
// second) and logs when it becomes unreadable or corrupt (the previous tokens stay in force)
// and when it is good again.
func (s *server) watchTokens(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var last string
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var msg string
		if err := s.tokens.Refresh(); err != nil {
			msg = err.Error()
		}
		switch {
		case msg != "" && msg != last:
			s.log.Error("tokens file unreadable; the previous tokens stay in force", "path", s.cfg.TokensFile, "error", msg)
		case msg == "" && last != "":
			s.log.Info("tokens file readable again", "path", s.cfg.TokensFile)
		}
		last = msg
	}
}

// loadCertificates reads the certificates that protect imported master keys.
func loadCertificates(files []string, passwordFile string) (keyring.ParseOptions, error) {
	var opts keyring.ParseOptions
	var password []byte
	if passwordFile != "" {
		p, err := os.ReadFile(passwordFile)
		if err != nil {
			return opts, fmt.Errorf("server: certificate password: %w", err)
		}
		p = bytes.TrimSuffix(p, []byte("\n"))
		password = bytes.TrimSuffix(p, []byte("\r"))
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			return opts, fmt.Errorf("server: certificate: %w", err)
		}
		certs, err := keyring.ParseCertificates(data, password)
		if err != nil {
			return opts, fmt.Errorf("server: certificate %s: %w", name, err)
		}
		opts.Certificates = append(opts.Certificates, certs...)
	}
	return opts, nil
}
