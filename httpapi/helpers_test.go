package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dpkeyring/dpkeyring/httpapi"
	"github.com/dpkeyring/dpkeyring/internal/audit"
	"github.com/dpkeyring/dpkeyring/internal/ringcache"
	"github.com/dpkeyring/dpkeyring/internal/rotation"
	"github.com/dpkeyring/dpkeyring/internal/tokens"
	"github.com/dpkeyring/dpkeyring/keyring"
	"github.com/dpkeyring/dpkeyring/store"
)

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// Tokens of the test principals.
const (
	tokNode  = "dpk_node-token-secret-0123456789"
	tokAdmin = "dpk_admin-token-secret-0123456789"
	tokDebug = "dpk_debug-token-secret-0123456789"
	tokOther = "dpk_other-ring-node-secret-0123456789"
)

var principals = map[string]httpapi.Principal{
	tokNode:  {Name: "node1", Role: tokens.RoleNode, Rings: []string{"default"}},
	tokAdmin: {Name: "ops", Role: tokens.RoleAdmin},
	tokDebug: {Name: "debugger", Role: tokens.RoleDebug, Rings: []string{"default"}},
	tokOther: {Name: "node-other", Role: tokens.RoleNode, Rings: []string{"other"}},
}

// clock is a settable time source shared by the cache, the rotator and the handler.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock { c := &clock{}; c.set(t); return c }
func (c *clock) now() time.Time   { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) set(t time.Time)  { c.ns.Store(t.UnixNano()) }

// memStore is an in-memory store with the methods rotation and the cache use, and failure
// injection.
type memStore struct {
	mu      sync.Mutex
	rings   map[string]*memRing
	failing atomic.Bool
	lists   atomic.Int64
}

type memRing struct {
	elems   []store.Element
	version uint64
	token   store.Fence
	owner   string
	expires time.Time
	meta    store.Meta
}

var (
	_ rotation.Store   = (*memStore)(nil)
	_ ringcache.Lister = (*memStore)(nil)
)

func newMemStore() *memStore { return &memStore{rings: map[string]*memRing{}} }

func (s *memStore) ring(name string) *memRing {
	r := s.rings[name]
	if r == nil {
		r = &memRing{}
		s.rings[name] = r
	}
	return r
}

func (s *memStore) unavailable() error {
	if s.failing.Load() {
		return fmt.Errorf("dial 127.0.0.1:1: %w", store.ErrUnavailable)
	}
	return nil
}

func (s *memStore) List(ctx context.Context, ring string) (store.Snapshot, error) {
	s.lists.Add(1)
	if err := s.unavailable(); err != nil {
		return store.Snapshot{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rings[ring]
	if r == nil || r.version == 0 {
		return store.Snapshot{}, fmt.Errorf("ring %s: %w", ring, store.ErrNotFound)
	}
	return store.Snapshot{Elements: append([]store.Element(nil), r.elems...), Version: r.version}, nil
}

func (s *memStore) Append(ctx context.Context, ring string, e store.Element, fence store.Fence) (uint64, error) {
	if err := s.unavailable(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.ring(ring)
	if fence != 0 && fence != r.token {
		return 0, store.ErrFenced
	}
	for _, old := range r.elems {
		if old.Name == e.Name {
			if bytes.Equal(old.XML, e.XML) {
				return r.version, nil
			}
			return 0, store.ErrExists
		}
	}
	r.elems = append(r.elems, e)
	r.version++
	return r.version, nil
}

func (s *memStore) Lock(ctx context.Context, ring, owner string, ttl time.Duration) (store.Lease, error) {
	if err := s.unavailable(); err != nil {
		return store.Lease{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.ring(ring)
	now := time.Now()
	if r.owner != "" && r.owner != owner && now.Before(r.expires) {
		return store.Lease{}, store.ErrLocked
	}
	if r.owner != owner || !now.Before(r.expires) {
		r.token++
	}
	r.owner, r.expires = owner, now.Add(ttl)
	return store.Lease{Ring: ring, Owner: owner, Token: r.token, Expires: r.expires}, nil
}

func (s *memStore) Unlock(ctx context.Context, l store.Lease) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.ring(l.Ring)
	if r.token != l.Token {
		return store.ErrFenced
	}
	r.owner, r.expires = "", time.Time{}
	return nil
}

func (s *memStore) Meta(ctx context.Context, ring string) (store.Meta, error) {
	if err := s.unavailable(); err != nil {
		return store.Meta{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.ring(ring)
	if r.meta.Version == 0 {
		return store.Meta{}, store.ErrNotFound
	}
	return r.meta, nil
}

func (s *memStore) PutMeta(ctx context.Context, ring string, data []byte, expect uint64, fence store.Fence) (uint64, error) {
	if err := s.unavailable(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.ring(ring)
	if fence != 0 && fence != r.token {
		return 0, store.ErrFenced
	}
	if r.meta.Version != expect {
		return 0, store.ErrConflict
	}
	r.meta = store.Meta{Data: data, Version: expect + 1}
	return r.meta.Version, nil
}

// mustKey returns a new key with the dates given as offsets in days from now.
func mustKey(tb testing.TB, now time.Time, createdDays, activationDays, expirationDays int) keyring.Key {
	tb.Helper()
	day := 24 * time.Hour
	k, err := keyring.NewKey(now.Add(time.Duration(createdDays)*day), now.Add(time.Duration(activationDays)*day),
		now.Add(time.Duration(expirationDays)*day))
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func mustAppendKey(tb testing.TB, s interface {
	Append(context.Context, string, store.Element, store.Fence) (uint64, error)
}, ring string, k keyring.Key) {
	tb.Helper()
	if _, err := s.Append(context.Background(), ring, store.Element{Name: "key-" + k.ID.String(), XML: k.XML}, 0); err != nil {
		tb.Fatal(err)
	}
}

// env is one API under test with its fakes.
type env struct {
	h       http.Handler
	store   *memStore
	cache   *ringcache.Cache
	clock   *clock
	logs    *syncBuffer
	auditMu sync.Mutex
	audits  []audit.Event
	// old is an expired key and cur the default key of ring "default".
	old, cur keyring.Key
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

type envOption func(*httpapi.Config)

type httpapiConfig = httpapi.Config

// newEnv returns an API over two rings, "default" (an expired key and a default key valid for
// 80 more days) and "other" (one key), loaded into the cache.
func newEnv(tb testing.TB, opts ...envOption) *env {
	tb.Helper()
	s := newMemStore()
	old := mustKey(tb, t0, -100, -100, -10)
	cur := mustKey(tb, t0, -20, -10, 80)
	mustAppendKey(tb, s, "default", old)
	mustAppendKey(tb, s, "default", cur)
	mustAppendKey(tb, s, "other", mustKey(tb, t0, -1, 0, 90))
	e := newEnvWithStore(tb, s, opts...)
	e.old, e.cur = old, cur
	return e
}

// newEnvWithStore returns an API over the rings "default" and "other" of s.
func newEnvWithStore(tb testing.TB, s *memStore, opts ...envOption) *env {
	tb.Helper()
	e := &env{store: s, clock: newClock(t0), logs: &syncBuffer{}}
	parse := func(elems [][]byte) (*keyring.Ring, error) {
		return keyring.ParseElements(elems, keyring.ParseOptions{})
	}
	c, err := ringcache.New(ringcache.Config{Store: e.store, Rings: []string{"default", "other"}, Parse: parse, Now: e.clock.now})
	if err != nil {
		tb.Fatal(err)
	}
	c.RefreshAll(context.Background())
	e.cache = c
	cfg := httpapi.Config{
		Rings: []httpapi.Ring{
			{Name: "default", Policy: keyring.DefaultPolicy(), AppNames: []string{"shop"}},
			{Name: "other", Policy: keyring.DefaultPolicy()},
		},
		Cache: c,
		Auth: httpapi.AuthenticatorFunc(func(token string) (httpapi.Principal, bool) {
			p, ok := principals[token]
			return p, ok
		}),
		Writers: httpapi.WritersFunc(func(ring string) (httpapi.RingWriter, error) {
			return &rotation.Rotator{Store: e.store, Ring: ring, Policy: keyring.DefaultPolicy(), Owner: "test",
				LockWait: 100 * time.Millisecond, Now: e.clock.now}, nil
		}),
		Auditor: httpapi.AuditorFunc(func(ctx context.Context, ev audit.Event) {
			e.auditMu.Lock()
			defer e.auditMu.Unlock()
			e.audits = append(e.audits, ev)
		}),
		Logger:             slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:                e.clock.now,
		EnableDebugDecrypt: true,
		DebugBurst:         1000,
	}
	for _, o := range opts {
		o(&cfg)
	}
	h, err := httpapi.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	e.h = h
	return e
}

// req is a request to send through the handler.
type req struct {
	method, path, token, body string
	header                    map[string]string
	remote                    string
	ctx                       context.Context
}

func (e *env) do(tb testing.TB, r req) *httptest.ResponseRecorder {
	tb.Helper()
	if r.method == "" {
		r.method = http.MethodGet
	}
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	hr := httptest.NewRequest(r.method, r.path, body)
	if r.ctx != nil {
		hr = hr.WithContext(r.ctx)
	}
	hr.RemoteAddr = "127.0.0.1:40000"
	if r.remote != "" {
		hr.RemoteAddr = r.remote
	}
	if r.token != "" {
		hr.Header.Set("Authorization", "Bearer "+r.token)
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, hr)
	return rec
}

// errorJSON decodes an error answer, failing unless it is {"error": non-empty, "code": want}.
func checkError(tb testing.TB, rec *httptest.ResponseRecorder, status int, code string) {
	tb.Helper()
	if rec.Code != status {
		tb.Fatalf("status = %d, want %d; body %s", rec.Code, status, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		tb.Fatalf("error Content-Type = %q, want application/json", ct)
	}
	var got struct {
		Error string `json:"error"`
		Code  string `json:"code"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		tb.Fatalf("error body is not JSON: %v: %s", err, rec.Body)
	}
	if got.Error == "" || got.Code != code {
		tb.Fatalf("error body = %s, want code %q and a message", rec.Body, code)
	}
}

func decode[T any](tb testing.TB, rec *httptest.ResponseRecorder) T {
	tb.Helper()
	var v T
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		tb.Fatalf("body is not the expected JSON: %v: %s", err, rec.Body)
	}
	return v
}

func (e *env) auditEvents() []audit.Event {
	e.auditMu.Lock()
	defer e.auditMu.Unlock()
	return append([]audit.Event(nil), e.audits...)
}

func mustReadAll(tb testing.TB, resp *http.Response) []byte {
	tb.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func stringsReader(s string) io.Reader { return strings.NewReader(s) }
