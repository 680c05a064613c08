package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/dpkeyring/dpkeyring/httpapi"
	"github.com/google/go-cmp/cmp"
)

// TestFastPathTakes: the fast path answers exactly the bodiless, query-less GET of a served
// ring's keys; everything else goes to chi.
func TestFastPathTakes(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		method, target string
		body           string
		want           bool
	}{
		{"GET", "/v1/rings/default/keys", "", true},
		{"GET", "/v1/rings/other/keys", "", true},
		{"HEAD", "/v1/rings/default/keys", "", false},
		{"POST", "/v1/rings/default/keys", "", false},
		{"GET", "/v1/rings/default/keys", "x", false},
		{"GET", "/v1/rings/default/keys?wait=10s", "", false},
		{"GET", "/v1/rings/default/keys?version=2", "", false},
		{"GET", "/v1/rings/nope/keys", "", false},
		{"GET", "/v1/rings//keys", "", false},
		{"GET", "/v1/rings/default/keys/", "", false},
		{"GET", "/v1/rings/default/x/keys", "", false},
		{"GET", "/v1/rings/def%61ult/keys", "", false},
		{"GET", "/v1/rings/default/keys/3d6d01fd-c0e7-44ae-82dd-013b996b4093", "", false},
		{"GET", "/v1/rings/default/status", "", false},
	} {
		t.Run(tc.method+" "+tc.target, func(t *testing.T) {
			var r *http.Request
			if tc.body != "" {
				r = httptest.NewRequest(tc.method, tc.target, strings.NewReader(tc.body))
			} else {
				r = httptest.NewRequest(tc.method, tc.target, nil)
			}
			if got := httpapi.FastPathTakes(e.h, r); got != tc.want {
				t.Errorf("FastPathTakes = %v, want %v", got, tc.want)
			}
		})
	}
}

// answer is what a client and the operator see of one request: the response and the access
// log line (without its time and duration).
type answer struct {
	Status int
	Header http.Header
	Body   string
	Log    map[string]any
}

func serveAnswer(tb testing.TB, e *env, h http.Handler, r req) answer {
	tb.Helper()
	hr := httptest.NewRequest(http.MethodGet, r.path, nil)
	hr.RemoteAddr = "127.0.0.1:40000"
	hr.Header.Set("X-Request-Id", "req-fastpath-1")
	if r.token != "" {
		hr.Header.Set("Authorization", "Bearer "+r.token)
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	before := len(e.logs.String())
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, hr)
	var line map[string]any
	for l := range strings.Lines(e.logs.String()[before:]) {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			tb.Fatalf("log line %q: %v", l, err)
		}
		if m["msg"] == "request" {
			line = m
		}
	}
	if line == nil {
		tb.Fatal("no access log line")
	}
	delete(line, "time")
	delete(line, "duration_ms")
	return answer{Status: rec.Code, Header: rec.Header(), Body: rec.Body.String(), Log: line}
}

// TestFastPathSameAsChi: every ring GET answer (200 XML and JSON, 304, 401, 403, 404, stale)
// is the same, status, headers, body and access log line, through the fast path and through
// chi, and both count in the same metrics series.
func TestFastPathSameAsChi(t *testing.T) {
	const keys = "/v1/rings/default/keys"
	cases := []struct {
		name   string
		r      req
		status int
	}{
		{"xml", req{path: keys, token: tokNode}, http.StatusOK},
		{"xml node id", req{path: keys, token: tokNode, header: map[string]string{"X-Node-Id": "cm-1"}}, http.StatusOK},
		{"admin", req{path: keys, token: tokAdmin}, http.StatusOK},
		{"json", req{path: keys, token: tokNode, header: map[string]string{"Accept": "application/json"}}, http.StatusOK},
		{"other version", req{path: keys, token: tokNode, header: map[string]string{"If-None-Match": `"1"`}}, http.StatusOK},
		{"not modified", req{path: keys, token: tokNode, header: map[string]string{"If-None-Match": `"2"`}}, http.StatusNotModified},
		{"not modified weak list", req{path: keys, token: tokNode, header: map[string]string{"If-None-Match": `"7", W/"2"`}}, http.StatusNotModified},
		{"not modified json", req{path: keys, token: tokNode, header: map[string]string{"Accept": "application/json", "If-None-Match": `"2.json"`}}, http.StatusNotModified},
		{"no token", req{path: keys}, http.StatusUnauthorized},
		{"bad token", req{path: keys, token: "dpk_nope"}, http.StatusUnauthorized},
		{"wrong role", req{path: keys, token: tokDebug}, http.StatusForbidden},
		{"wrong ring", req{path: keys, token: tokOther}, http.StatusForbidden},
		{"unknown ring", req{path: "/v1/rings/nope/keys", token: tokAdmin}, http.StatusNotFound},
	}
	for _, stale := range []bool{false, true} {
		e := newEnv(t)
		if stale {
			e.store.failing.Store(true)
			e.cache.RefreshAll(context.Background())
		}
		viaChi := httpapi.WithoutFastPath(e.h)
		for _, tc := range cases {
			name := tc.name
			if stale {
				name = "stale " + name
			}
			t.Run(name, func(t *testing.T) {
				fast := serveAnswer(t, e, e.h, tc.r)
				slow := serveAnswer(t, e, viaChi, tc.r)
				if fast.Status != tc.status {
					t.Errorf("status %d, want %d", fast.Status, tc.status)
				}
				if diff := cmp.Diff(slow, fast); diff != "" {
					t.Errorf("fast path differs from chi (-chi +fast):\n%s", diff)
				}
				if stale && fast.Status == http.StatusOK && fast.Header.Get("Warning") == "" {
					t.Error("stale answer without Warning")
				}
			})
		}
		rec := e.do(t, req{path: "/metrics", token: tokAdmin})
		for _, want := range []string{
			`dpkeyring_http_requests_total{code="200",method="GET",route="/v1/rings/{ring}/keys"} 10`,
			`dpkeyring_http_requests_total{code="304",method="GET",route="/v1/rings/{ring}/keys"} 6`,
			`dpkeyring_http_requests_total{code="401",method="GET",route="/v1/rings/{ring}/keys"} 4`,
			`dpkeyring_http_requests_total{code="403",method="GET",route="/v1/rings/{ring}/keys"} 4`,
			`dpkeyring_http_requests_total{code="404",method="GET",route="/v1/rings/{ring}/keys"} 2`,
		} {
			if !strings.Contains(rec.Body.String(), want) {
				t.Errorf("stale=%v: metrics lack %s", stale, want)
			}
		}
	}
}
