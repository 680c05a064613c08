package httpapi_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/dpkeyring/dpkeyring/httpapi"
	"github.com/dpkeyring/dpkeyring/internal/ringcache"
	"github.com/dpkeyring/dpkeyring/store"
)

// fakeCache is a RingCache with func fields; unset ones delegate to the real cache.
type fakeCache struct {
	httpapi.RingCache
	get func(ring string) (ringcache.Entry, error)
}

func (f *fakeCache) Get(ring string) (ringcache.Entry, error) { return f.get(ring) }

func TestPanicIsA500JSON(t *testing.T) {
	e := newEnv(t)
	e = newEnvWithStore(t, e.store, func(c *httpapiConfig) {
		c.Cache = &fakeCache{RingCache: c.Cache, get: func(string) (ringcache.Entry, error) { panic("boom") }}
	})
	rec := e.do(t, req{path: "/v1/rings/default/keys", token: tokNode})
	checkError(t, rec, http.StatusInternalServerError, "internal")
	if !strings.Contains(e.logs.String(), `"panic":"boom"`) {
		t.Errorf("panic not logged: %s", e.logs)
	}
}

func TestErrorMapping(t *testing.T) {
	tests := []struct {
		err    error
		status int
		code   string
	}{
		{fmt.Errorf("x: %w", store.ErrUnavailable), http.StatusServiceUnavailable, "store_unavailable"},
		{fmt.Errorf("x: %w", store.ErrPermission), http.StatusServiceUnavailable, "store_unavailable"},
		{fmt.Errorf("x: %w", store.ErrLocked), http.StatusConflict, "busy"},
		{fmt.Errorf("x: %w", store.ErrFenced), http.StatusConflict, "busy"},
		{fmt.Errorf("x: %w", store.ErrExists), http.StatusConflict, "conflict"},
		{fmt.Errorf("x: %w", ringcache.ErrUnknownRing), http.StatusNotFound, "ring_not_found"},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), http.StatusServiceUnavailable, "timeout"},
		{errors.New("something odd"), http.StatusInternalServerError, "internal"},
	}
	for _, tc := range tests {
		t.Run(tc.code, func(t *testing.T) {
			e := newEnv(t, func(c *httpapiConfig) {
				c.Writers = httpapi.WritersFunc(func(string) (httpapi.RingWriter, error) { return nil, tc.err })
			})
			checkError(t, e.do(t, req{method: "POST", path: "/v1/rings/default/rotate", token: tokAdmin}), tc.status, tc.code)
			if logged := strings.Contains(e.logs.String(), "request failed"); logged != (tc.status >= 500) {
				t.Errorf("error logged = %v, want %v", logged, tc.status >= 500)
			}
		})
	}
}

func TestNewRequiresDependencies(t *testing.T) {
	e := newEnv(t)
	for _, cfg := range []httpapi.Config{
		{},
		{Rings: []httpapi.Ring{{Name: "default"}}, Cache: e.cache},
		{Rings: []httpapi.Ring{{Name: "default"}}, Auth: httpapi.AuthenticatorFunc(func(string) (httpapi.Principal, bool) { return httpapi.Principal{}, false })},
	} {
		if _, err := httpapi.New(cfg); !errors.Is(err, httpapi.ErrConfig) {
			t.Errorf("New(%+v) = %v, want ErrConfig", cfg, err)
		}
	}
}
