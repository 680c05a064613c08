package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
)

// logInfo collects what inner handlers learn for the access log (the token's name and role).
type logInfo struct {
	token string
	role  string
}

type logInfoKey struct{}

func logInfoFrom(ctx context.Context) *logInfo {
	info, _ := ctx.Value(logInfoKey{}).(*logInfo)
	return info
}

// requestID sets the request id (chi's RequestID, which keeps a client's X-Request-Id) and
// echoes it in the X-Request-Id response header.
func requestID(next http.Handler) http.Handler {
	return middleware.RequestID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(middleware.RequestIDHeader, middleware.GetReqID(r.Context()))
		next.ServeHTTP(w, r)
	}))
}

// accessLog logs one JSON line per request (request id, method, path, status, bytes, duration,
// token name and role; never headers, query values, cookies or bodies) and records the
// request metrics by route pattern.
func (h *handler) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		info := &logInfo{}
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r.WithContext(context.WithValue(r.Context(), logInfoKey{}, info)))
		d := time.Since(start)
		status := ww.Status()
		if status == 0 {
			status = http.StatusOK
		}
		route := "unmatched"
		if rc := chi.RouteContext(r.Context()); rc != nil && rc.RoutePattern() != "" {
			route = rc.RoutePattern()
		}
		h.metrics.observeRequest(route, r.Method, status, d)
		attrs := []slog.Attr{
			slog.String("request_id", middleware.GetReqID(r.Context())),
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.String("route", route),
			slog.Int("status", status),
			slog.Int("bytes", ww.BytesWritten()),
			slog.Float64("duration_ms", float64(d.Microseconds())/1000),
			slog.String("remote", r.RemoteAddr),
		}
		if info.token != "" {
			attrs = append(attrs, slog.String("token_name", info.token), slog.String("role", info.role))
		}
		h.log.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
	})
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
				slog.String("request_id", middleware.GetReqID(r.Context())),
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
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes)
		}
		next.ServeHTTP(w, r)
	})
}
