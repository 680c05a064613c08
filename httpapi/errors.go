package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/dpkeyring/dpkeyring/internal/cookiejson"
	"github.com/dpkeyring/dpkeyring/internal/ringcache"
	"github.com/dpkeyring/dpkeyring/internal/rotation"
	"github.com/dpkeyring/dpkeyring/keyring"
	"github.com/dpkeyring/dpkeyring/store"
)

// Error codes of the JSON error answers (documented in openapi.yaml).
const (
	codeBadRequest        = "bad_request"
	codeUnauthorized      = "unauthorized"
	codeForbidden         = "forbidden"
	codeNotFound          = "not_found"
	codeRingNotFound      = "ring_not_found"
	codeKeyNotFound       = "key_not_found"
	codeMethodNotAllowed  = "method_not_allowed"
	codeBusy              = "busy"
	codeConflict          = "conflict"
	codeWouldLeaveNoKey   = "would_leave_no_default_key"
	codeBodyTooLarge      = "body_too_large"
	codeUnsupportedMedia  = "unsupported_media_type"
	codeRateLimited       = "rate_limited"
	codeInternal          = "internal"
	codeStoreUnavailable  = "store_unavailable"
	codeRingUnavailable   = "ring_unavailable"
	codeNotReady          = "not_ready"
	codeDecryptFailed     = cookiejson.CodeDecryptFailed
	codeTimeout           = "timeout"
	retryAfterBusySeconds = 2
)

// httpError is an error with the status, code and message to answer. Err, if set, is logged
// (for 5xx only) and never sent.
type httpError struct {
	Status int
	Code   string
	Msg    string
	Err    error
}

func (e *httpError) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

func (e *httpError) Unwrap() error { return e.Err }

func errorf(status int, code, format string, args ...any) *httpError {
	return &httpError{Status: status, Code: code, Msg: fmt.Sprintf(format, args...)}
}

// errorBody is the JSON of every error answer.
type errorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// toHTTPError maps an error to its answer: an *httpError as is, the sentinels of the store,
// the cache, rotation and keyring to their statuses, anything else to 500.
func toHTTPError(err error) *httpError {
	var he *httpError
	if errors.As(err, &he) {
		return he
	}
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return &httpError{Status: http.StatusRequestEntityTooLarge, Code: codeBodyTooLarge,
			Msg: fmt.Sprintf("request body is larger than %d bytes", mbe.Limit)}
	case errors.Is(err, ringcache.ErrUnknownRing):
		return &httpError{Status: http.StatusNotFound, Code: codeRingNotFound, Msg: "ring not found"}
	case errors.Is(err, ringcache.ErrNotLoaded):
		return &httpError{Status: http.StatusServiceUnavailable, Code: codeRingUnavailable,
			Msg: "the ring has not been loaded: the store is unreachable or the ring has no usable key", Err: err}
	case errors.Is(err, rotation.ErrBusy), errors.Is(err, store.ErrLocked), errors.Is(err, store.ErrFenced), errors.Is(err, store.ErrConflict):
		return &httpError{Status: http.StatusConflict, Code: codeBusy,
			Msg: "another writer holds the ring's lock: retry later", Err: err}
	case errors.Is(err, store.ErrExists):
		return &httpError{Status: http.StatusConflict, Code: codeConflict,
			Msg: "the ring already holds a different element of that name", Err: err}
	case errors.Is(err, keyring.ErrKeyNotFound):
		return &httpError{Status: http.StatusNotFound, Code: codeKeyNotFound, Msg: "key not found in the ring"}
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, store.ErrPermission):
		return &httpError{Status: http.StatusServiceUnavailable, Code: codeStoreUnavailable,
			Msg: "the key store is unavailable", Err: err}
	case errors.Is(err, context.DeadlineExceeded):
		return &httpError{Status: http.StatusServiceUnavailable, Code: codeTimeout,
			Msg: "the operation timed out", Err: err}
	case errors.Is(err, context.Canceled):
		// The client went away; the status is for the log only.
		return &httpError{Status: 499, Code: codeTimeout, Msg: "request canceled", Err: err}
	}
	return &httpError{Status: http.StatusInternalServerError, Code: codeInternal, Msg: "internal error", Err: err}
}

// writeError answers err as JSON and logs 5xx errors with the request id.
func (h *handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	he := toHTTPError(err)
	if he.Status >= 500 && he.Status != 499 {
		h.log.LogAttrs(r.Context(), slog.LevelError, "request failed",
			slog.String("request_id", requestIDFrom(r.Context())),
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", he.Status),
			slog.String("code", he.Code),
			slog.Any("error", err))
	}
	switch he.Code {
	case codeUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="dpkeyring"`)
	case codeBusy:
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterBusySeconds))
	case codeRateLimited:
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, he.Status, errorBody{Error: he.Msg, Code: he.Code})
}

// writeJSON sets the content type, then the status, then writes v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		b, status = []byte(`{"error":"internal error","code":"internal"}`), http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// handlerFunc is a handler that returns its error for [handler.wrap] to answer.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// wrap adapts f to http.HandlerFunc: a returned error is answered with writeError.
func (h *handler) wrap(f handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := f(w, r); err != nil {
			h.writeError(w, r, err)
		}
	}
}

// decodeJSON reads r's body into v: it must be one JSON object with no unknown fields (an empty
// body leaves v as is when allowEmpty). Errors are 400 bad_request, 413 body_too_large or 415.
func decodeJSON(r *http.Request, v any, allowEmpty bool) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, _ := splitMediaType(ct)
		if mt != "application/json" {
			return errorf(http.StatusUnsupportedMediaType, codeUnsupportedMedia, "Content-Type must be application/json")
		}
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			return err
		case errors.Is(err, io.EOF) && allowEmpty:
			return nil
		case errors.Is(err, io.EOF):
			return errorf(http.StatusBadRequest, codeBadRequest, "request body is empty: a JSON object is required")
		}
		return errorf(http.StatusBadRequest, codeBadRequest, "request body is not valid JSON for this endpoint: %s", jsonErrorText(err))
	}
	if dec.More() {
		return errorf(http.StatusBadRequest, codeBadRequest, "request body holds more than one JSON value")
	}
	// Surface a too-large body even when the JSON value ended before the limit.
	var one [1]byte
	if _, err := r.Body.Read(one[:]); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
	}
	return nil
}

// jsonErrorText describes a JSON decoding error without echoing the input.
func jsonErrorText(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	case errors.As(err, &te):
		if te.Field != "" {
			return fmt.Sprintf("field %q must be %s", te.Field, te.Type)
		}
		return fmt.Sprintf("expected %s", te.Type)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected end of input"
	}
	msg := err.Error()
	if len(msg) > 120 {
		msg = msg[:120]
	}
	return msg
}
