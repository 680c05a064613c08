package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dpkeyring/dpkeyring/httpapi"
	"github.com/dpkeyring/dpkeyring/internal/rotation"
	"github.com/dpkeyring/dpkeyring/keyring"
)

func TestBodyTooLarge(t *testing.T) {
	e := newEnv(t, func(c *httpapiConfig) { c.MaxBodyBytes = 1024 })
	big := `{"reason":"` + strings.Repeat("x", 2000) + `"}`
	paths := []string{
		"/v1/rings/default/rotate",
		"/v1/rings/default/revoke",
		"/v1/rings/default/keys/" + e.old.ID.String() + "/revoke",
		"/v1/rings/default/debug/decrypt-cookie",
	}
	for _, p := range paths {
		tok := tokAdmin
		if strings.Contains(p, "debug") {
			tok = tokDebug
		}
		// With a Content-Length.
		checkError(t, e.do(t, req{method: "POST", path: p, token: tok, body: big}), http.StatusRequestEntityTooLarge, "body_too_large")
		// Without one (chunked): caught while reading.
		hr := httptest.NewRequest("POST", p, io.NopCloser(strings.NewReader(big)))
		hr.ContentLength = -1
		hr.RemoteAddr = "127.0.0.1:1"
		hr.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, hr)
		checkError(t, rec, http.StatusRequestEntityTooLarge, "body_too_large")
	}
	if n := len(e.store.rings["default"].elems); n != 2 {
		t.Fatalf("oversized requests wrote to the store: %d elements", n)
	}
}

// fakeWriter is a RingWriter with func fields.
type fakeWriter struct {
	rotate func(ctx context.Context, req rotation.Request) (rotation.Result, error)
	revoke func(ctx context.Context, rev keyring.Revocation) (uint64, error)
}

var _ httpapi.RingWriter = (*fakeWriter)(nil)

func (f *fakeWriter) Rotate(ctx context.Context, req rotation.Request) (rotation.Result, error) {
	return f.rotate(ctx, req)
}

func (f *fakeWriter) Revoke(ctx context.Context, rev keyring.Revocation) (uint64, error) {
	return f.revoke(ctx, rev)
}

// FuzzRotateBody: whatever the body, the answer is never a 5xx, and every non-200 answer is a
// JSON error with a code.
func FuzzRotateBody(f *testing.F) {
	for _, seed := range []string{``, `{}`, `{"immediate":true}`, `{"immediate":true,"revoke_previous":true,"reason":"x"}`,
		`{"reason":"\u0000"}`, `{"immediate":1}`, `[`, `{"reason":"a"}{}`, `null`, `"x"`, `{"before":"2020-01-01T00:00:00Z"}`} {
		f.Add(seed, "application/json")
	}
	f.Add(`{}`, "text/plain")
	e := newEnv(f, func(c *httpapiConfig) {
		c.Writers = httpapi.WritersFunc(func(string) (httpapi.RingWriter, error) {
			return &fakeWriter{
				rotate: func(ctx context.Context, req rotation.Request) (rotation.Result, error) {
					return rotation.Result{NextDue: t0.Add(time.Hour), Version: 2}, nil
				},
				revoke: func(ctx context.Context, rev keyring.Revocation) (uint64, error) { return 3, nil },
			}, nil
		})
	})
	f.Fuzz(func(t *testing.T, body, contentType string) {
		for _, p := range []string{"/v1/rings/default/rotate", "/v1/rings/default/revoke",
			"/v1/rings/default/keys/" + e.old.ID.String() + "/revoke", "/v1/rings/default/debug/decrypt-cookie"} {
			tok := tokAdmin
			if strings.Contains(p, "debug") {
				tok = tokDebug
			}
			rec := e.do(t, req{method: "POST", path: p, token: tok, body: body, header: map[string]string{"Content-Type": contentType}})
			if rec.Code >= 500 {
				t.Fatalf("%s with %q: %d %s", p, body, rec.Code, rec.Body)
			}
			if rec.Code != http.StatusOK {
				var eb struct {
					Error string `json:"error"`
					Code  string `json:"code"`
				}
				if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || eb.Code == "" || eb.Error == "" {
					t.Fatalf("%s with %q: %d not a JSON error: %s", p, body, rec.Code, rec.Body)
				}
			}
		}
	})
}
