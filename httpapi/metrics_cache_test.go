package httpapi_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestMetricsCountEveryRequest checks the cached series: repeated requests of one route and
// status keep counting, and another status of the same route gets its own series.
func TestMetricsCountEveryRequest(t *testing.T) {
	e := newEnv(t)
	for range 3 {
		if rec := e.do(t, req{path: "/v1/rings/default/keys", token: tokNode}); rec.Code != http.StatusOK {
			t.Fatalf("GET: %d", rec.Code)
		}
	}
	for range 2 {
		if rec := e.do(t, req{path: "/v1/rings/default/keys"}); rec.Code != http.StatusUnauthorized {
			t.Fatalf("GET without token: %d", rec.Code)
		}
	}
	body := e.do(t, req{path: "/metrics", token: tokNode}).Body.String()
	for _, want := range []string{
		`dpkeyring_http_requests_total{code="200",method="GET",route="/v1/rings/{ring}/keys"} 3`,
		`dpkeyring_http_requests_total{code="401",method="GET",route="/v1/rings/{ring}/keys"} 2`,
		`dpkeyring_http_request_duration_seconds_count{route="/v1/rings/{ring}/keys"} 5`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestMetricsRoutePatterns checks the cached route patterns: each route keeps its own pattern
// on repeated requests, and paths that match no route are "unmatched".
func TestMetricsRoutePatterns(t *testing.T) {
	e := newEnv(t)
	for range 2 {
		e.do(t, req{path: "/healthz"})
		e.do(t, req{path: "/v1/rings/default/keys", token: tokNode})
		e.do(t, req{path: "/v1/rings/default/keys/3d6d01fd-c0e7-44ae-82dd-013b996b4093", token: tokNode})
		e.do(t, req{path: "/v1/rings/default/status", token: tokAdmin})
		e.do(t, req{path: "/no/such/path"})
	}
	body := e.do(t, req{path: "/metrics", token: tokNode}).Body.String()
	for _, route := range []string{"/healthz", "/v1/rings/{ring}/keys", "/v1/rings/{ring}/keys/{id}", "/v1/rings/{ring}/status", "unmatched"} {
		if want := `dpkeyring_http_request_duration_seconds_count{route="` + route + `"} 2`; !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
