package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
)

// reqState is what the middleware and handlers share about one request: its id, the
// principal once authenticated (and its name and role for the access log). It is put in the
// request's context once, by [handler.accessLog], so that the chain makes one request copy.
type reqState struct {
	id        string
	principal Principal
	authed    bool
}

type reqStateKey struct{}

func reqStateFrom(ctx context.Context) *reqState {
	st, _ := ctx.Value(reqStateKey{}).(*reqState)
	return st
}

// requestIDFrom returns the request id set by [handler.accessLog] ("" outside it).
func requestIDFrom(ctx context.Context) string {
	if st := reqStateFrom(ctx); st != nil {
		return st.id
	}
	return ""
}

// requestIDPrefix starts the ids of this process (chi's form: host/random), followed by a
// counter.
var (
	requestIDPrefix = func() string {
		host, _ := os.Hostname()
		if host == "" {
			host = "localhost"
		}
		var b [6]byte
		_, _ = rand.Read(b[:])
		return host + "/" + base64.RawURLEncoding.EncodeToString(b[:]) + "-"
	}()
	requestIDCounter atomic.Uint64
)

// newRequestID returns the client's X-Request-Id, or else a new id "host/random-000042"
// (the form of chi's RequestID middleware, without fmt).
func newRequestID(r *http.Request) string {
	if id := r.Header.Get(middleware.RequestIDHeader); id != "" {
		return id
	}
	var b [64]byte
	out := append(b[:0], requestIDPrefix...)
	n := requestIDCounter.Add(1)
	for p := uint64(100000); p > 1 && n < p; p /= 10 {
		out = append(out, '0')
	}
	out = strconv.AppendUint(out, n, 10)
	return string(out)
}

// accessLog sets the request id (a client's X-Request-Id is kept), echoes it in the
// X-Request-Id response header, logs one JSON line per request (request id, method, path,
// status, bytes, duration, token name and role; never headers, query values, cookies or
// bodies) and records the request metrics by route pattern.
func (h *handler) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.logged(w, r, "", next)
	})
}

// logged is the body of [handler.accessLog]: it serves r with next, then records the metrics
// and logs the line under route ("" for chi's matched route pattern, read after next ran).
func (h *handler) logged(w http.ResponseWriter, r *http.Request, route string, next http.Handler) {
	start := time.Now()
	st := &reqState{id: newRequestID(r)}
	w.Header()[middleware.RequestIDHeader] = []string{st.id}
	ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
	next.ServeHTTP(ww, r.WithContext(context.WithValue(r.Context(), reqStateKey{}, st)))
	d := time.Since(start)
	status := ww.Status()
	if status == 0 {
		status = http.StatusOK
	}
	if route == "" {
		route = h.patterns.pattern(chi.RouteContext(r.Context()))
	}
	h.metrics.observeRequest(route, r.Method, status, d)
	if !h.log.Enabled(r.Context(), slog.LevelInfo) {
		return
	}
	// One literal argument list (not an appended slice) so the attributes stay on the stack.
	tokenName, role := slog.Attr{}, slog.Attr{} // empty attributes are not logged
	if st.authed {
		tokenName, role = slog.String("token_name", st.principal.Name), slog.String("role", st.principal.Role.String())
	}
	h.log.LogAttrs(r.Context(), slog.LevelInfo, "request",
		slog.String("request_id", st.id),
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.String("route", route),
		slog.Int("status", status),
		slog.Int("bytes", ww.BytesWritten()),
		slog.Float64("duration_ms", float64(d.Microseconds())/1000),
		slog.String("remote", r.RemoteAddr),
		tokenName, role)
}

// recoverer turns a panic into a logged 500 JSON answer (http.ErrAbortHandler is re-panicked,
// as net/http expects).
func (h *handler) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			h.log.LogAttrs(r.Context(), slog.LevelError, "panic",
				slog.String("request_id", requestIDFrom(r.Context())),
				slog.String("panic", fmt.Sprint(v)),
				slog.String("stack", string(debug.Stack())))
			writeJSON(w, http.StatusInternalServerError, errorBody{Error: "internal error", Code: codeInternal})
		}()
		next.ServeHTTP(w, r)
	})
}

// limitBody caps request bodies at MaxBodyBytes; reading past it fails with
// *http.MaxBytesError, which writeError answers with 413 body_too_large. A Content-Length
// above the cap is refused before the handler runs.
func (h *handler) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > h.cfg.MaxBodyBytes {
			h.writeError(w, r, errorf(http.StatusRequestEntityTooLarge, codeBodyTooLarge,
				"request body is larger than %s bytes", strconv.FormatInt(h.cfg.MaxBodyBytes, 10)))
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes)
		}
		next.ServeHTTP(w, r)
	})
}

// routePatterns caches chi's RoutePattern (which joins and rewrites strings on every call) by
// the matched route's pattern parts: a lookup costs no allocation.
type routePatterns struct {
	mu sync.Mutex // serializes writers of m
	m  atomic.Pointer[map[string]string]
}

// pattern returns rc's route pattern, or "unmatched".
func (c *routePatterns) pattern(rc *chi.Context) string {
	if rc == nil || len(rc.RoutePatterns) == 0 {
		return "unmatched"
	}
	var buf [256]byte
	key := buf[:0]
	for _, p := range rc.RoutePatterns {
		key = append(key, p...)
		key = append(key, 0)
	}
	if m := c.m.Load(); m != nil {
		if p, ok := (*m)[string(key)]; ok {
			return p
		}
	}
	p := rc.RoutePattern()
	if p == "" {
		p = "unmatched"
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var old map[string]string
	if m := c.m.Load(); m != nil {
		old = *m
	}
	if len(old) < 256 { // routes are few; the bound only guards against surprises
		next := make(map[string]string, len(old)+1)
		maps.Copy(next, old)
		next[string(key)] = p
		c.m.Store(&next)
	}
	return p
}
