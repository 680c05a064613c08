package httpapi

import (
	_ "embed"
	"net/http"
)

// OpenAPI is the OpenAPI 3 document of the API (the source of truth; docs/openapi.yaml is a
// copy kept identical by a test).
//
//go:embed openapi.yaml
var OpenAPI []byte

// openapi answers GET /v1/openapi.yaml (public).
func (h *handler) openapi(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/yaml")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(OpenAPI)
	return nil
}
