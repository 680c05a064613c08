package httpapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// TestLongPollWakesOnWrite: a long-polling GET returns the new version as soon as a rotation
// through the API writes it.
func TestLongPollWakesOnWrite(t *testing.T) {
	e := newEnv(t)
	type result struct {
		rec  *httptest.ResponseRecorder
		done time.Time
	}
	const pollers = 50
	results := make(chan result, pollers)
	for i := range pollers {
		go func() {
			rec := e.do(t, req{path: "/v1/rings/default/keys?wait=30s", token: tokNode,
				header: map[string]string{"If-None-Match": `"2"`, "X-Node-Id": "poller-" + string(rune('a'+i%26))}})
			results <- result{rec, time.Now()}
		}()
	}
	// Wait until every poller is waiting.
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(e.do(t, req{path: "/metrics", token: tokAdmin}).Body.String(), "dpkeyring_longpoll_waiting 50") {
		if time.Now().After(deadline) {
			t.Fatal("pollers did not start waiting")
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case r := <-results:
		t.Fatalf("a poller returned before the ring changed: %d", r.rec.Code)
	default:
	}
	rot := decode[rotateDoc](t, e.do(t, req{method: "POST", path: "/v1/rings/default/rotate", token: tokAdmin,
		body: `{"immediate":true,"reason":"test"}`}))
	written := time.Now()
	for range pollers {
		r := <-results
		if r.rec.Code != http.StatusOK || r.rec.Header().Get("ETag") != `"3"` || rot.Version != 3 {
			t.Fatalf("poller got %d ETag %s (rotation wrote version %d)", r.rec.Code, r.rec.Header().Get("ETag"), rot.Version)
		}
		if d := r.done.Sub(written); d > 100*time.Millisecond {
			t.Errorf("poller returned %v after the write, want < 100ms", d)
		}
	}
}

func TestLongPollTimesOut(t *testing.T) {
	tests := []struct {
		name  string
		query string
		hdr   map[string]string
		want  int
		after time.Duration
	}{
		{"unchanged", "?wait=60s", map[string]string{"If-None-Match": `"2"`}, http.StatusNotModified, 60 * time.Second},
		{"seconds", "?wait=5", map[string]string{"If-None-Match": `"2"`}, http.StatusNotModified, 5 * time.Second},
		{"capped", "?wait=1h", map[string]string{"If-None-Match": `"2"`}, http.StatusNotModified, 120 * time.Second},
		{"version param", "?wait=30s&version=2", nil, http.StatusNotModified, 30 * time.Second},
		{"list of tags", "?wait=30s", map[string]string{"If-None-Match": `"1", "2"`}, http.StatusNotModified, 30 * time.Second},
		{"old version returns at once", "?wait=60s", map[string]string{"If-None-Match": `"1"`}, http.StatusOK, 0},
		{"no version returns at once", "?wait=60s", nil, http.StatusOK, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t)
				start := time.Now()
				rec := e.do(t, req{path: "/v1/rings/default/keys" + tc.query, token: tokNode, header: tc.hdr})
				if rec.Code != tc.want {
					t.Fatalf("status = %d, want %d: %s", rec.Code, tc.want, rec.Body)
				}
				if d := time.Since(start); d != tc.after {
					t.Fatalf("returned after %v, want %v", d, tc.after)
				}
			})
		})
	}
}

// TestLongPollSeesOtherWriters: a change made by another writer (seen by the cache's refresh)
// wakes the poller too.
func TestLongPollSeesOtherWriters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go func() { _ = e.cache.Run(ctx) }()
		go func() {
			time.Sleep(10 * time.Second)
			mustAppendKey(t, e.store, "default", mustKey(t, t0, 0, 3, 93))
		}()
		start := time.Now()
		rec := e.do(t, req{path: "/v1/rings/default/keys?wait=60s", token: tokNode, header: map[string]string{"If-None-Match": `"2"`}})
		if rec.Code != http.StatusOK || rec.Header().Get("ETag") != `"3"` {
			t.Fatalf("status %d ETag %s", rec.Code, rec.Header().Get("ETag"))
		}
		if d := time.Since(start); d > 11*time.Second {
			t.Fatalf("woke after %v, want within the 1s refresh interval of the write at 10s", d)
		}
	})
}

func TestLongPollClientGone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		ctx, cancel := context.WithCancel(t.Context())
		go func() {
			time.Sleep(3 * time.Second)
			cancel()
		}()
		start := time.Now()
		rec := e.do(t, req{path: "/v1/rings/default/keys?wait=60s", token: tokNode, header: map[string]string{"If-None-Match": `"2"`}, ctx: ctx})
		if rec.Code != http.StatusNotModified {
			t.Errorf("status = %d, want 304 (the client may be a poller of a server shutting down)", rec.Code)
		}
		if d := time.Since(start); d != 3*time.Second {
			t.Fatalf("returned %v after the start, want when the client left (3s)", d)
		}
	})
}
