package httpapi

import (
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
)

// routeRingKeys is chi's pattern of the ring GET route, the route label of its metrics and
// access log lines.
const routeRingKeys = "/v1/rings/{ring}/keys"

// fastMux answers the ring GET (GET /v1/rings/{ring}/keys of a served ring, no query, no body)
// without chi's routing: the same middleware and handler code, called directly, in the same
// order (access log and metrics, recoverer, authentication, [handler.serveKeys]). limitBody and
// GetHead do nothing for a bodiless GET, so they are skipped. Every other request goes to chi.
// It embeds the chi router, so it is a chi.Routes and chi.Walk still lists every route.
type fastMux struct {
	*chi.Mux
	h    *handler
	keys map[string]http.Handler // per served ring: recoverer, authenticate and serveKeys
	off  bool                    // tests: always use chi
}

// withFastPath puts the ring GET fast path in front of the chi router next.
func (h *handler) withFastPath(next *chi.Mux) http.Handler {
	keys := make(map[string]http.Handler, len(h.rings))
	for ring := range h.rings {
		keys[ring] = h.recoverer(h.authenticate(h.wrap(func(w http.ResponseWriter, r *http.Request) error {
			return h.serveKeys(w, r, ring)
		})))
	}
	return &fastMux{Mux: next, h: h, keys: keys}
}

func (m *fastMux) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !m.off {
		if ring, ok := m.h.fastRing(r); ok {
			m.h.logged(w, r, routeRingKeys, m.keys[ring])
			return
		}
	}
	m.Mux.ServeHTTP(w, r)
}

// fastRing returns the ring of a request the fast path answers exactly as chi would: GET of
// /v1/rings/RING/keys where RING is a served ring, with no query (so no ?wait= long-poll), no
// escaped path, no body and no enclosing chi router. Anything else (an unknown ring's 404
// included) is chi's.
func (h *handler) fastRing(r *http.Request) (string, bool) {
	if r.Method != http.MethodGet || r.URL.RawQuery != "" || r.URL.RawPath != "" ||
		r.ContentLength != 0 || (r.Body != nil && r.Body != http.NoBody) {
		return "", false
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/v1/rings/")
	if !ok {
		return "", false
	}
	ring, ok := strings.CutSuffix(rest, "/keys")
	if !ok || ring == "" || strings.IndexByte(ring, '/') >= 0 {
		return "", false
	}
	if _, ok := h.rings[ring]; !ok {
		return "", false
	}
	if chi.RouteContext(r.Context()) != nil { // mounted in another chi router: let it route
		return "", false
	}
	return ring, true
}
