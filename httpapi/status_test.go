package httpapi_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dpkeyring/dpkeyring/keyring"
	"github.com/dpkeyring/dpkeyring/store"
)

type keyDoc struct {
	KeyID      string    `json:"key_id"`
	Activation time.Time `json:"activation"`
	Expiration time.Time `json:"expiration"`
	Status     string    `json:"status"`
}

type nodeDoc struct {
	Node       string  `json:"node"`
	Version    uint64  `json:"version"`
	Current    bool    `json:"current"`
	LagSeconds float64 `json:"lag_seconds"`
	Lagging    bool    `json:"lagging"`
}

type statusDoc struct {
	Ring                       string     `json:"ring"`
	Version                    uint64     `json:"version"`
	Stale                      bool       `json:"stale"`
	Healthy                    bool       `json:"healthy"`
	Problems                   []string   `json:"problems"`
	DefaultKey                 *keyDoc    `json:"default_key"`
	SecondsUntilDefaultExpires *float64   `json:"seconds_until_default_expires"`
	NextKey                    *keyDoc    `json:"next_key"`
	CoveredUntil               time.Time  `json:"covered_until"`
	LastRotation               *time.Time `json:"last_rotation"`
	SecondsSinceLastRotation   *float64   `json:"seconds_since_last_rotation"`
	NextRotation               time.Time  `json:"next_rotation"`
	RotationDue                bool       `json:"rotation_due"`
	KeyCounts                  struct {
		Active       int `json:"active"`
		NotYetActive int `json:"not_yet_active"`
		Expired      int `json:"expired"`
		Revoked      int `json:"revoked"`
	} `json:"key_counts"`
	Nodes        []nodeDoc `json:"nodes"`
	LaggingNodes int       `json:"lagging_nodes"`
}

func TestStatus(t *testing.T) {
	e := newEnv(t)
	st := decode[statusDoc](t, e.do(t, req{path: "/v1/rings/default/status", token: tokAdmin}))
	day := 24 * time.Hour
	if st.Ring != "default" || st.Version != 2 || st.Stale || !st.Healthy || len(st.Problems) != 0 {
		t.Fatalf("status = %+v", st)
	}
	if st.DefaultKey == nil || st.DefaultKey.KeyID != e.cur.ID.String() || st.DefaultKey.Status != "active" {
		t.Fatalf("default_key = %+v", st.DefaultKey)
	}
	if st.SecondsUntilDefaultExpires == nil || *st.SecondsUntilDefaultExpires != (80*day).Seconds() {
		t.Errorf("seconds_until_default_expires = %v, want %v", st.SecondsUntilDefaultExpires, (80 * day).Seconds())
	}
	if st.NextKey != nil {
		t.Errorf("next_key = %+v, want none", st.NextKey)
	}
	if st.LastRotation == nil || !st.LastRotation.Equal(t0.Add(-20*day)) || *st.SecondsSinceLastRotation != (20*day).Seconds() {
		t.Errorf("last_rotation = %v (%v s)", st.LastRotation, st.SecondsSinceLastRotation)
	}
	// The default policy makes the successor due 96 h before the default key expires.
	if st.RotationDue || !st.NextRotation.Equal(t0.Add(80*day-96*time.Hour)) || !st.CoveredUntil.Equal(t0.Add(80*day)) {
		t.Errorf("next_rotation %v covered_until %v due %v", st.NextRotation, st.CoveredUntil, st.RotationDue)
	}
	if st.KeyCounts.Active != 1 || st.KeyCounts.Expired != 1 {
		t.Errorf("key_counts = %+v", st.KeyCounts)
	}

	// Once the successor is due and created, status shows it as the next key.
	e.clock.set(t0.Add(80*day - 90*time.Hour))
	rot := decode[rotateDoc](t, e.do(t, req{method: "POST", path: "/v1/rings/default/rotate", token: tokAdmin}))
	if rot.Result != "created" {
		t.Fatalf("rotate = %+v", rot)
	}
	st = decode[statusDoc](t, e.do(t, req{path: "/v1/rings/default/status", token: tokAdmin}))
	if st.NextKey == nil || st.NextKey.KeyID != rot.KeyID || st.NextKey.Status != "not-yet-active" || st.KeyCounts.NotYetActive != 1 {
		t.Fatalf("after rotation: next_key %+v counts %+v", st.NextKey, st.KeyCounts)
	}
	if !st.Healthy {
		t.Errorf("not healthy after rotation: %v", st.Problems)
	}
}

func TestNodeLag(t *testing.T) {
	e := newEnv(t)
	e.do(t, req{path: "/v1/rings/default/keys", token: tokNode, header: map[string]string{"X-Node-Id": "web-1"}})
	e.do(t, req{path: "/v1/rings/default/keys", token: tokNode, header: map[string]string{"X-Node-Id": "web-2"}})
	// The ring changes; web-2 catches up, web-1 does not.
	if rec := e.do(t, req{method: "POST", path: "/v1/rings/default/rotate", token: tokAdmin, body: `{"immediate":true,"reason":"test"}`}); rec.Code != http.StatusOK {
		t.Fatalf("rotate: %d %s", rec.Code, rec.Body)
	}
	e.clock.set(t0.Add(10 * time.Minute))
	e.do(t, req{path: "/v1/rings/default/keys", token: tokNode, header: map[string]string{"X-Node-Id": "web-2"}})
	st := decode[statusDoc](t, e.do(t, req{path: "/v1/rings/default/status", token: tokAdmin}))
	want := []nodeDoc{
		{Node: "web-1", Version: 2, Current: false, LagSeconds: 600, Lagging: true},
		{Node: "web-2", Version: 3, Current: true},
	}
	if len(st.Nodes) != 2 || st.Nodes[0] != want[0] || st.Nodes[1] != want[1] || st.LaggingNodes != 1 {
		t.Fatalf("nodes = %+v (lagging %d), want %+v", st.Nodes, st.LaggingNodes, want)
	}
	// Nodes not seen for a day are forgotten.
	e.clock.set(t0.Add(25 * time.Hour))
	st = decode[statusDoc](t, e.do(t, req{path: "/v1/rings/default/status", token: tokAdmin}))
	if len(st.Nodes) != 0 {
		t.Fatalf("nodes after a day = %+v", st.Nodes)
	}
}

func TestReadyz(t *testing.T) {
	e := newEnv(t)
	if rec := e.do(t, req{path: "/readyz"}); rec.Code != http.StatusOK {
		t.Fatalf("readyz = %d %s", rec.Code, rec.Body)
	}
	// 47 h before the default key expires, with no successor: within the 48 h lead time.
	e.clock.set(t0.Add(80*24*time.Hour - 47*time.Hour))
	rec := e.do(t, req{path: "/readyz"})
	checkError(t, rec, http.StatusServiceUnavailable, "not_ready")
	if !strings.Contains(rec.Body.String(), "within the lead time") {
		t.Errorf("readyz body does not say why: %s", rec.Body)
	}
	// A rotation fixes it.
	if rec := e.do(t, req{method: "POST", path: "/v1/rings/default/rotate", token: tokAdmin}); rec.Code != http.StatusOK {
		t.Fatalf("rotate: %d %s", rec.Code, rec.Body)
	}
	if rec := e.do(t, req{path: "/readyz"}); rec.Code != http.StatusOK {
		t.Fatalf("readyz after rotation = %d %s", rec.Code, rec.Body)
	}
}

func TestMetrics(t *testing.T) {
	e := newEnv(t)
	e.do(t, req{path: "/v1/rings/default/keys", token: tokNode})
	rec := e.do(t, req{path: "/metrics", token: tokNode})
	body := rec.Body.String()
	for _, want := range []string{
		`dpkeyring_http_requests_total{code="200",method="GET",route="/v1/rings/{ring}/keys"} 1`,
		`dpkeyring_http_request_duration_seconds_count{route="/v1/rings/{ring}/keys"} 1`,
		`dpkeyring_ring_version{ring="default"} 2`,
		`dpkeyring_ring_stale{ring="default"} 0`,
		`dpkeyring_ring_healthy{ring="default"} 1`,
		`dpkeyring_ring_default_key_expiry_seconds{ring="default"} 6.912e+06`,
		`dpkeyring_ring_last_rotation_age_seconds{ring="default"} 1.728e+06`,
		`dpkeyring_store_errors_total{ring="default"} 0`,
		`dpkeyring_ring_nodes{ring="default"} 1`,
		`dpkeyring_ring_lagging_nodes{ring="default"} 0`,
		`dpkeyring_longpoll_waiting 0`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if t.Failed() {
		t.Log(body)
	}
}

func TestMetricsPublic(t *testing.T) {
	e := newEnv(t, func(c *httpapiConfig) { c.MetricsPublic = true })
	if rec := e.do(t, req{path: "/metrics"}); rec.Code != http.StatusOK {
		t.Fatalf("public metrics without token: %d", rec.Code)
	}
}

// TestStaleServing: when the store fails, reads answer from memory with a Warning, readiness
// fails, writes answer 503, and metrics count the errors.
func TestStaleServing(t *testing.T) {
	e := newEnv(t)
	e.store.failing.Store(true)
	e.cache.RefreshAll(context.Background())
	rec := e.do(t, req{path: "/v1/rings/default/keys", token: tokNode})
	if rec.Code != http.StatusOK || rec.Header().Get("Warning") != `110 - "stale: store unavailable"` || rec.Header().Get("ETag") != `"2"` {
		t.Fatalf("stale GET: %d Warning %q ETag %q", rec.Code, rec.Header().Get("Warning"), rec.Header().Get("ETag"))
	}
	if _, err := keyring.ParseRepository(rec.Body.Bytes(), keyring.ParseOptions{}); err != nil {
		t.Fatal(err)
	}
	checkError(t, e.do(t, req{path: "/readyz"}), http.StatusServiceUnavailable, "not_ready")
	checkError(t, e.do(t, req{method: "POST", path: "/v1/rings/default/rotate", token: tokAdmin}), http.StatusServiceUnavailable, "store_unavailable")
	checkError(t, e.do(t, req{method: "POST", path: "/v1/rings/default/keys/" + e.old.ID.String() + "/revoke", token: tokAdmin, body: `{"reason":"x"}`}),
		http.StatusServiceUnavailable, "store_unavailable")
	st := decode[statusDoc](t, e.do(t, req{path: "/v1/rings/default/status", token: tokAdmin}))
	if !st.Stale || st.Healthy || len(st.Problems) == 0 {
		t.Errorf("status while the store is down: %+v", st)
	}
	metrics := e.do(t, req{path: "/metrics", token: tokAdmin}).Body.String()
	for _, want := range []string{`dpkeyring_ring_stale{ring="default"} 1`, `dpkeyring_store_errors_total{ring="default"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// The store comes back: no more Warning, ready again.
	e.store.failing.Store(false)
	e.cache.RefreshAll(context.Background())
	rec = e.do(t, req{path: "/v1/rings/default/keys", token: tokNode})
	if rec.Header().Get("Warning") != "" {
		t.Errorf("Warning after recovery: %q", rec.Header().Get("Warning"))
	}
	if rec := e.do(t, req{path: "/readyz"}); rec.Code != http.StatusOK {
		t.Errorf("readyz after recovery: %d %s", rec.Code, rec.Body)
	}
}

// TestNeverServesUnusableRing: a ring version without a usable key is not served; the last good
// one is, with a Warning. A ring never loaded with a usable key answers 503.
func TestNeverServesUnusableRing(t *testing.T) {
	e := newEnv(t)
	// Someone revokes everything directly in the store.
	rev, err := keyring.MarshalRevocation(keyring.Revocation{Date: t0, All: true, Reason: "oops"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Append(context.Background(), "default", store.Element{Name: keyring.RevokeAllName(t0), XML: rev}, 0); err != nil {
		t.Fatal(err)
	}
	e.cache.RefreshAll(context.Background())
	rec := e.do(t, req{path: "/v1/rings/default/keys", token: tokNode})
	if rec.Code != http.StatusOK || rec.Header().Get("ETag") != `"2"` || rec.Header().Get("Warning") != `110 - "stale: newer ring version not usable"` {
		t.Fatalf("GET after unusable version: %d ETag %q Warning %q", rec.Code, rec.Header().Get("ETag"), rec.Header().Get("Warning"))
	}
	checkError(t, e.do(t, req{path: "/readyz"}), http.StatusServiceUnavailable, "not_ready")

	// A ring that was never usable is never served.
	e.store.mu.Lock()
	e.store.rings["other"].elems = e.store.rings["default"].elems[:1] // only the expired key
	e.store.rings["other"].version = 1
	e.store.mu.Unlock()
	fresh := newEnvWithStore(t, e.store)
	checkError(t, fresh.do(t, req{path: "/v1/rings/other/keys", token: tokAdmin}), http.StatusServiceUnavailable, "ring_unavailable")
	checkError(t, fresh.do(t, req{path: "/readyz"}), http.StatusServiceUnavailable, "not_ready")
}

func TestRingNeverLoaded(t *testing.T) {
	e := newEnv(t)
	e.store.failing.Store(true)
	fresh := newEnvWithStore(t, e.store)
	checkError(t, fresh.do(t, req{path: "/v1/rings/default/keys", token: tokNode}), http.StatusServiceUnavailable, "ring_unavailable")
	checkError(t, fresh.do(t, req{path: "/v1/rings/default/status", token: tokAdmin}), http.StatusServiceUnavailable, "ring_unavailable")
}
