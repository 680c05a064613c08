package httpapi

import "net/http"

// WithoutFastPath returns a copy of the handler h (from [New]) that sends every request
// through chi, sharing h's state, so that tests can compare both paths.
func WithoutFastPath(h http.Handler) http.Handler {
	m := *h.(*fastMux)
	m.off = true
	return &m
}

// FastPathTakes reports whether h's fast path answers r.
func FastPathTakes(h http.Handler, r *http.Request) bool {
	_, ok := h.(*fastMux).h.fastRing(r)
	return ok
}

// AcceptsGzip is acceptsGzip, for the tests of the Accept-Encoding parser.
var AcceptsGzip = acceptsGzip
