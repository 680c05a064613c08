package httpapi_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/dpkeyring/dpkeyring/httpapi"
	"github.com/dpkeyring/dpkeyring/internal/ringcache"
	"github.com/dpkeyring/dpkeyring/internal/rotation"
	"github.com/dpkeyring/dpkeyring/keyring"
	"github.com/dpkeyring/dpkeyring/store/filestore"
)

// TestFileStoreEndToEnd runs the API over a real HTTP server, the real file store, the ring
// cache and the rotator: an empty ring is not served, a rotation creates the first key, and the
// ring then reads back with it as the default key; a long-poll wakes on the next write.
func TestFileStoreEndToEnd(t *testing.T) {
	ctx := context.Background()
	fs, err := filestore.Open(ctx, filestore.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	clk := func() time.Time { return now }
	cache, err := ringcache.New(ringcache.Config{Store: fs, Rings: []string{"default"}, Now: clk,
		Parse: func(elems [][]byte) (*keyring.Ring, error) {
			return keyring.ParseElements(elems, keyring.ParseOptions{})
		}})
	if err != nil {
		t.Fatal(err)
	}
	cache.RefreshAll(ctx)
	h, err := httpapi.New(httpapi.Config{
		Rings: []httpapi.Ring{{Name: "default", Policy: keyring.DefaultPolicy()}},
		Cache: cache,
		Auth: httpapi.AuthenticatorFunc(func(token string) (httpapi.Principal, bool) {
			p, ok := principals[token]
			return p, ok
		}),
		Writers: httpapi.WritersFunc(func(ring string) (httpapi.RingWriter, error) {
			return &rotation.Rotator{Store: fs, Ring: ring, Policy: keyring.DefaultPolicy(), Owner: "test", Now: clk}, nil
		}),
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil)),
		Now:    clk,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	call := func(method, path, token string, hdr map[string]string) *http.Response {
		t.Helper()
		r, err := http.NewRequest(method, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		r.Header.Set("Authorization", "Bearer "+token)
		for k, v := range hdr {
			r.Header.Set(k, v)
		}
		resp, err := srv.Client().Do(r)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}

	if resp := call("GET", "/v1/rings/default/keys", tokNode, nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("empty ring served: %d", resp.StatusCode)
	}
	if resp := call("POST", "/v1/rings/default/rotate", tokAdmin, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("first rotation: %d", resp.StatusCode)
	}
	resp := call("GET", "/v1/rings/default/keys", tokNode, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET after first rotation: %d", resp.StatusCode)
	}
	etag := resp.Header.Get("ETag")
	r, err := keyring.ParseRepository(mustReadAll(t, resp), keyring.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.DefaultKey(now); err != nil || r.Len() != 1 {
		t.Fatalf("served ring: %d keys, %v", r.Len(), err)
	}

	done := make(chan *http.Response)
	go func() {
		done <- call("GET", "/v1/rings/default/keys?wait=20s", tokNode, map[string]string{"If-None-Match": etag})
	}()
	time.Sleep(50 * time.Millisecond)
	if resp := call("POST", "/v1/rings/default/rotate", tokAdmin, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("second rotation (not due): %d", resp.StatusCode)
	}
	select {
	case resp := <-done:
		t.Fatalf("long-poll returned %d although nothing was due", resp.StatusCode)
	case <-time.After(100 * time.Millisecond):
	}
	req, _ := http.NewRequest("POST", srv.URL+"/v1/rings/default/rotate", stringsReader(`{"immediate":true,"reason":"test"}`))
	req.Header.Set("Authorization", "Bearer "+tokAdmin)
	if resp, err := srv.Client().Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("immediate rotation: %v %v", resp, err)
	}
	select {
	case resp := <-done:
		if resp.StatusCode != http.StatusOK || resp.Header.Get("ETag") == etag {
			t.Fatalf("long-poll: %d ETag %s", resp.StatusCode, resp.Header.Get("ETag"))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("long-poll did not wake")
	}
}
