package vaultstore_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dpkeyring/dpkeyring/store"
	"github.com/dpkeyring/dpkeyring/store/vaultstore"
)

// fakeVault answers the token lookup Open does, and every other request with fail. It exists
// only to inject faults the real server will not produce on demand; the behaviour itself is
// tested against the real server.
func fakeVault(t *testing.T, fail http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/auth/token/lookup-self" {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"data":{"ttl":0,"renewable":false}}`))
			return
		}
		calls.Add(1)
		fail(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

func status(code int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, _ = w.Write([]byte(body))
	}
}

func TestFaults(t *testing.T) {
	hang := func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}
	tests := []struct {
		name      string
		handler   http.HandlerFunc
		retries   int
		wantErr   error
		wantCalls int32
		wantText  []string
	}{
		{"500", status(500, `{"errors":["internal error"]}`), 0, store.ErrUnavailable, 1, []string{"500", "internal error"}},
		{"503 retried", status(503, `{"errors":["Vault is sealed"]}`), 2, store.ErrUnavailable, 3, []string{"503", "sealed"}},
		{"429", status(429, `{"errors":["rate limited"]}`), 0, store.ErrUnavailable, 1, []string{"429"}},
		{"timeout", hang, 0, store.ErrUnavailable, 1, []string{"127.0.0.1"}},
		{"403", status(403, `{"errors":["permission denied"]}`), 0, store.ErrPermission, 1,
			[]string{"secret/metadata/pfx/rings/r/elements", `"list"`}},
		{"not json", status(502, `<html>bad gateway</html>`), 0, store.ErrUnavailable, 1, []string{"502"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, calls := fakeVault(t, tc.handler)
			timeout := 3 * time.Second
			if tc.name == "timeout" {
				timeout = 300 * time.Millisecond
			}
			s, err := vaultstore.Open(t.Context(), vaultstore.Config{
				Address: srv.URL, Token: "t", Prefix: "pfx", Retries: tc.retries, Timeout: timeout,
			})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer s.Close()
			start := time.Now()
			_, err = s.List(t.Context(), "r")
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("List: %v, want %v", err, tc.wantErr)
			}
			for _, w := range tc.wantText {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if got := calls.Load(); got != tc.wantCalls {
				t.Errorf("%d requests, want %d", got, tc.wantCalls)
			}
			if d := time.Since(start); d > 4*time.Second {
				t.Errorf("List took %v", d)
			}
		})
	}
}

func TestFaultCanceledContext(t *testing.T) {
	srv, _ := fakeVault(t, status(500, `{}`))
	s, err := vaultstore.Open(t.Context(), vaultstore.Config{Address: srv.URL, Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = s.Append(ctx, "r", store.Element{Name: "key-a", XML: []byte("<key/>")}, 0)
	if !errors.Is(err, store.ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Errorf("Append with a canceled context: %v, want ErrUnavailable wrapping context.Canceled", err)
	}
}

// TestOpenFaults checks that Open reports an unreachable or failing server as unavailable.
func TestOpenFaults(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(503)
	}))
	defer srv.Close()
	_, err := vaultstore.Open(t.Context(), vaultstore.Config{Address: srv.URL, Token: "t"})
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Open against a 503: %v, want ErrUnavailable", err)
	}
}
