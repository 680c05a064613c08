package httpapi

import (
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
)

// routes builds the router. Every route of the API is here; the ring GET is also answered
// by the fast path in front of chi ([handler.withFastPath]), with the same code.
//
// HEAD is answered for every GET route (chi's GetHead). Public (no token): GET /healthz, GET /readyz, GET /v1/openapi.yaml, and GET /metrics when
// MetricsPublic. Everything else needs a bearer token; each handler checks the role and ring.
func (h *handler) routes() http.Handler {
	r := chi.NewRouter()
	r.Use(h.accessLog, h.recoverer, h.limitBody, middleware.GetHead)
	r.NotFound(h.wrap(func(w http.ResponseWriter, r *http.Request) error {
		return errorf(http.StatusNotFound, codeNotFound, "no such endpoint")
	}))
	r.MethodNotAllowed(h.wrap(func(w http.ResponseWriter, r *http.Request) error {
		return errorf(http.StatusMethodNotAllowed, codeMethodNotAllowed, "method %s is not allowed here", r.Method)
	}))

	r.Get("/healthz", h.wrap(h.healthz))
	r.Get("/readyz", h.wrap(h.readyz))
	r.Get("/v1/openapi.yaml", h.wrap(h.openapi))
	if h.cfg.MetricsPublic {
		r.Get("/metrics", h.metrics.handler.ServeHTTP)
	} else {
		r.With(h.authenticate).Get("/metrics", h.metrics.handler.ServeHTTP)
	}

	r.Route("/v1/rings", func(r chi.Router) {
		r.Group(func(r chi.Router) {
			r.Use(h.authenticate)
			r.Get("/", h.wrap(h.listRings))
			r.Get("/{ring}/keys", h.wrap(h.getKeys))
			r.Get("/{ring}/keys/{id}", h.wrap(h.getKey))
			r.Get("/{ring}/status", h.wrap(h.status))
			r.Post("/{ring}/rotate", h.wrap(h.rotate))
			r.Post("/{ring}/revoke", h.wrap(h.revokeBefore))
			r.Post("/{ring}/keys/{id}/revoke", h.wrap(h.revokeKey))
		})
		if h.cfg.EnableDebugDecrypt {
			// Loopback only and no proxies, checked before the token.
			r.With(h.debugOnly, h.authenticate).Post("/{ring}/debug/decrypt-cookie", h.wrap(h.decryptCookie))
		}
	})
	return h.withFastPath(r)
}
