package httpapi_test

import (
	"bytes"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/dpkeyring/dpkeyring/httpapi"
	"github.com/go-chi/chi/v5"
)

func TestOpenAPICopyInDocs(t *testing.T) {
	docs, err := os.ReadFile("../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(docs, httpapi.OpenAPI) {
		t.Fatal("docs/openapi.yaml differs from httpapi/openapi.yaml: cp httpapi/openapi.yaml docs/openapi.yaml")
	}
}

func TestOpenAPIServed(t *testing.T) {
	e := newEnv(t)
	rec := e.do(t, req{path: "/v1/openapi.yaml"})
	if rec.Code != http.StatusOK || !bytes.Equal(rec.Body.Bytes(), httpapi.OpenAPI) || rec.Header().Get("Content-Type") != "application/yaml" {
		t.Fatalf("GET /v1/openapi.yaml: %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
}

// TestOpenAPIDocumentsEveryRoute walks the router: every route must be a path of the document,
// and every documented path a route.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	e := newEnv(t)
	routes, ok := e.h.(chi.Routes)
	if !ok {
		t.Fatalf("handler is %T, not a chi router", e.h)
	}
	routed := map[string]bool{}
	err := chi.Walk(routes, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		route = strings.TrimSuffix(route, "/")
		routed[route] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(routed) < 12 {
		t.Fatalf("walked only %d routes: %v", len(routed), routed)
	}
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^  (/[^:]*):$`).FindAllStringSubmatch(string(httpapi.OpenAPI), -1) {
		documented[m[1]] = true
	}
	for r := range routed {
		if !documented[r] {
			t.Errorf("route %s is not in openapi.yaml", r)
		}
	}
	for d := range documented {
		if !routed[d] {
			t.Errorf("openapi.yaml documents %s, which is not routed", d)
		}
	}
	// Every error code the package answers with is documented.
	src, err := os.ReadFile("errors.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`code\w+\s+= "(\w+)"`).FindAllStringSubmatch(string(src), -1) {
		if !strings.Contains(string(httpapi.OpenAPI), m[1]) {
			t.Errorf("error code %s is not documented", m[1])
		}
	}
}
