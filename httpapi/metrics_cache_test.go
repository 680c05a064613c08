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
