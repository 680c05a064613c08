package client_test

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dpkeyring/dpkeyring/httpapi/client"
	"github.com/dpkeyring/dpkeyring/keyring"
	"github.com/google/go-cmp/cmp"
)

func mustClient(tb testing.TB, url string, opts ...client.Option) *client.Client {
	tb.Helper()
	c, err := client.New(url, append([]client.Option{client.WithToken(nodeToken)}, opts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func mustFetch(tb testing.TB, c *client.Client, etag string) *client.RingDoc {
	tb.Helper()
	doc, err := c.Fetch(context.Background(), "default", etag)
	if err != nil {
		tb.Fatal(err)
	}
	return doc
}

func TestFetchETagAndLongPoll(t *testing.T) {
	s := startServer(t, t.Output())
	c := mustClient(t, s.URL, client.WithNodeID("web-1"))
	ctx := context.Background()

	doc := mustFetch(t, c, "")
	if doc.Keys.Len() != 1 || doc.ETag == "" || doc.Version == 0 || len(doc.Elements) != 1 {
		t.Fatalf("first fetch: %d keys, etag %q, version %d, %d elements", doc.Keys.Len(), doc.ETag, doc.Version, len(doc.Elements))
	}
	k := doc.Keys.Keys()[0]
	if doc.Elements[0].Name != "key-"+k.ID.String() {
		t.Errorf("element name %q, want key-%s", doc.Elements[0].Name, k.ID)
	}
	// 304: the same document comes back.
	if again := mustFetch(t, c, doc.ETag); again != doc {
		t.Errorf("conditional fetch of an unchanged ring returned another document (version %d)", again.Version)
	}
	// An ETag the client does not hold: the whole ring is read.
	if other := mustFetch(t, c, `"999999"`); other.Version != doc.Version || other == doc {
		t.Errorf("unknown ETag: got version %d (same pointer %v)", other.Version, other == doc)
	}
	doc = mustFetch(t, c, "")

	// A long-poll with no change ends with the same document after the wait.
	start := time.Now()
	got, err := c.Poll(ctx, "default", doc.ETag, 300*time.Millisecond)
	if err != nil || got != doc {
		t.Fatalf("long-poll without change: %v (same %v)", err, got == doc)
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Errorf("long-poll answered after %s, before the wait", d)
	}

	// A long-poll wakes at once on a rotation.
	type result struct {
		doc *client.RingDoc
		err error
		at  time.Time
	}
	done := make(chan result, 1)
	go func() {
		d, err := c.Poll(ctx, "default", doc.ETag, 30*time.Second)
		done <- result{d, err, time.Now()}
	}()
	time.Sleep(100 * time.Millisecond)
	rotated := time.Now()
	out := s.rotate(t, `{"immediate":true,"reason":"test"}`)
	var r result
	select {
	case r = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("long-poll did not wake on the rotation")
	}
	if r.err != nil || r.doc.Version <= doc.Version || r.doc.Keys.Len() != 2 {
		t.Fatalf("after rotation: %v, version %d (was %d)", r.err, r.doc.Version, doc.Version)
	}
	// Generous under -race on a loaded machine; the agent's end-to-end test asserts < 1 s.
	if lat := r.at.Sub(rotated); lat > 3*time.Second {
		t.Errorf("long-poll woke %s after the rotation, want well under 1s", lat)
	}
	def, err := r.doc.Keys.DefaultKey(time.Now())
	if err != nil || def.ID.String() != out["key_id"] {
		t.Errorf("default key %v (%v), want the new key %v", def.ID, err, out["key_id"])
	}

	// The server records the node and the version it holds.
	nodes, _ := s.status(t)["nodes"].([]any)
	found := false
	for _, n := range nodes {
		m := n.(map[string]any)
		if m["node"] == "web-1" && uint64(m["version"].(float64)) == r.doc.Version {
			found = true
		}
	}
	if !found {
		t.Errorf("status does not show node web-1 at version %d: %v", r.doc.Version, nodes)
	}
}

func TestWatchFollowsRotations(t *testing.T) {
	s := startServer(t, nil)
	c := mustClient(t, s.URL)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	docs := make(chan *client.RingDoc, 10)
	contacts := make(chan struct{}, 100)
	done := make(chan error, 1)
	go func() {
		done <- c.Watch(ctx, "default", func(d *client.RingDoc) error { docs <- d; return nil },
			client.WatchOptions{Wait: 20 * time.Second, OnContact: func(*client.RingDoc) {
				select {
				case contacts <- struct{}{}:
				default:
				}
			}})
	}()
	next := func() *client.RingDoc {
		t.Helper()
		select {
		case d := <-docs:
			return d
		case <-time.After(10 * time.Second):
			t.Fatal("no document from Watch")
		}
		return nil
	}
	first := next()
	<-contacts
	s.rotate(t, `{"immediate":true,"reason":"one"}`)
	second := next()
	s.rotate(t, `{"immediate":true,"reason":"two"}`)
	third := next()
	if !(first.Version < second.Version && second.Version < third.Version) || third.Keys.Len() != 3 {
		t.Errorf("versions %d %d %d, %d keys", first.Version, second.Version, third.Version, third.Keys.Len())
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Watch returned %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Watch did not end with its context")
	}
}

func TestWatchRetriesCallbackErrors(t *testing.T) {
	s := startServer(t, nil)
	c := mustClient(t, s.URL)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	calls := 0
	var errs []error
	done := make(chan error, 1)
	go func() {
		done <- c.Watch(ctx, "default", func(d *client.RingDoc) error {
			calls++
			if calls < 3 {
				return errors.New("disk full")
			}
			cancel()
			return nil
		}, client.WatchOptions{MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
			OnError: func(err error, _ time.Duration) { errs = append(errs, err) }})
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Watch did not retry the callback")
	}
	if calls != 3 || len(errs) != 2 {
		t.Errorf("callback called %d times with %d errors reported, want 3 and 2", calls, len(errs))
	}
}

func TestOfflineStartFromCache(t *testing.T) {
	s := startServer(t, nil)
	dir := filepath.Join(t.TempDir(), "cache")
	c := mustClient(t, s.URL, client.WithCacheDir(dir))
	doc := mustFetch(t, c, "")

	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("cache dir: %v %v, want mode 0700", fi.Mode(), err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(files) != 1 || filepath.Base(files[0]) != "ring-default.json" {
		t.Fatalf("cache files %v, want only ring-default.json (no temporary files left)", files)
	}
	if fi, _ := os.Stat(files[0]); fi.Mode().Perm() != 0o600 {
		t.Errorf("cache file mode %v, want 0600", fi.Mode().Perm())
	}

	url := s.URL
	s.Close() // the server is gone

	// A new process starts from the cache.
	c2 := mustClient(t, url, client.WithCacheDir(dir))
	got, err := c2.Get(context.Background(), "default")
	if err != nil {
		t.Fatalf("Get with the server down: %v", err)
	}
	if !got.Stale || got.Version != doc.Version || got.ETag != doc.ETag {
		t.Errorf("offline Get: stale %v version %d etag %s, want stale version %d", got.Stale, got.Version, got.ETag, doc.Version)
	}
	if diff := cmp.Diff(doc.Keys.Keys()[0].ID, got.Keys.Keys()[0].ID); diff != "" {
		t.Error(diff)
	}
	plain := []byte("still works offline")
	payload, err := doc.Protect(plain, []string{"p"})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := got.Unprotect(payload, []string{"p"}); err != nil || string(out) != string(plain) {
		t.Errorf("unprotect with the cached ring: %q %v", out, err)
	}

	// Watch hands over the cached ring, then reports the unreachable server and retries.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var delivered *client.RingDoc
	var reported error
	err = c2.Watch(ctx, "default", func(d *client.RingDoc) error { delivered = d; return nil },
		client.WatchOptions{MinBackoff: time.Millisecond, OnError: func(err error, _ time.Duration) {
			reported = err
			cancel()
		}})
	if !errors.Is(err, context.Canceled) || delivered == nil || delivered.Version != doc.Version {
		t.Errorf("Watch offline: %v, delivered %v", err, delivered)
	}
	if !errors.Is(reported, client.ErrUnavailable) {
		t.Errorf("Watch reported %v, want ErrUnavailable", reported)
	}

	// Without a cache there is nothing to fall back to.
	c3 := mustClient(t, url)
	if _, err := c3.Get(context.Background(), "default"); !errors.Is(err, client.ErrUnavailable) {
		t.Errorf("Get with no cache and no server: %v, want ErrUnavailable", err)
	}
}

func TestErrors(t *testing.T) {
	s := startServer(t, nil)
	bad, err := client.New(s.URL, client.WithToken("dpk_wrong"), client.WithCacheDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	_, err = bad.Get(context.Background(), "default")
	var re *client.ResponseError
	if !errors.As(err, &re) || re.StatusCode != 401 || re.Code != "unauthorized" || !errors.Is(err, client.ErrBadResponse) {
		t.Errorf("wrong token: %v", err)
	}
	c := mustClient(t, s.URL)
	if _, err := c.Fetch(context.Background(), "other", ""); !errors.As(err, &re) || re.StatusCode != 404 {
		t.Errorf("unknown ring: %v", err)
	}
	if _, err := c.Fetch(context.Background(), "../x", ""); !errors.Is(err, client.ErrInvalidOption) {
		t.Errorf("bad ring name: %v", err)
	}
	if _, err := c.Cached("default"); !errors.Is(err, client.ErrNotCached) {
		t.Errorf("Cached before any fetch: %v", err)
	}

	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(nodeToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		url  string
		opts []client.Option
		ok   bool
	}{
		{"token file", s.URL, []client.Option{client.WithTokenFile(tokenFile)}, true},
		{"no token", s.URL, nil, false},
		{"missing token file", s.URL, []client.Option{client.WithTokenFile(tokenFile + ".no")}, false},
		{"ftp URL", "ftp://host", []client.Option{client.WithToken("t")}, false},
		{"user in URL", "http://u:p@host", []client.Option{client.WithToken("t")}, false},
		{"bad node id", s.URL, []client.Option{client.WithToken("t"), client.WithNodeID("a b")}, false},
		{"token with spaces", s.URL, []client.Option{client.WithToken("a b")}, false},
		{"missing CA", s.URL, []client.Option{client.WithToken("t"), client.WithTLSCA(tokenFile + ".no")}, false},
		{"CA without PEM", s.URL, []client.Option{client.WithToken("t"), client.WithTLSCA(tokenFile)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := client.New(tc.url, tc.opts...)
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				mustFetch(t, c, "")
				return
			}
			if !errors.Is(err, client.ErrInvalidOption) {
				t.Errorf("New: %v, want ErrInvalidOption", err)
			}
		})
	}
}

func TestDecryptCookie(t *testing.T) {
	s := startServer(t, nil)
	doc := mustFetch(t, mustClient(t, s.URL), "")
	ticket := &keyring.Ticket{Scheme: keyring.UmbracoScheme, Identities: []keyring.Identity{{
		AuthenticationType: keyring.UmbracoScheme,
		Claims:             []keyring.Claim{{Type: keyring.DefaultNameClaimType, Value: "editor@example.com"}},
	}}}
	cookie, err := doc.Keys.EncryptCookie(time.Now(), ticket, "umbraco-site", keyring.UmbracoScheme)
	if err != nil {
		t.Fatal(err)
	}
	res, err := doc.DecryptCookie(cookie, keyring.CookieOptions{Scheme: keyring.UmbracoScheme, AppNames: []string{"other", "umbraco-site"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.AppName != "umbraco-site" || res.Ticket.Identities[0].Claims[0].Value != "editor@example.com" {
		t.Errorf("decrypted: app %q, ticket %+v", res.AppName, res.Ticket)
	}
	if _, err := doc.DecryptCookie(cookie, keyring.CookieOptions{Scheme: keyring.UmbracoScheme}); !errors.Is(err, keyring.ErrDecryptionFailed) {
		t.Errorf("wrong application name: %v, want ErrDecryptionFailed", err)
	}
}

// FuzzCachedRing feeds arbitrary bytes to the cache reader (the cache file is on disk, so it is
// untrusted input): it must return a ring or an error wrapping ErrNotCached, never panic.
func FuzzCachedRing(f *testing.F) {
	s := startServer(f, nil)
	dir := f.TempDir()
	c := mustClient(f, s.URL, client.WithCacheDir(dir))
	mustFetch(f, c, "")
	seed, err := os.ReadFile(filepath.Join(dir, "ring-default.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte(`{"ring":"default","etag":"\"1\"","document":""}`))
	f.Add([]byte(`{"ring":"default","etag":"\"1\"","document":"PHJlcG9zaXRvcnkvPg=="}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "ring-default.json"), b, 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := client.New("http://127.0.0.1:1", client.WithToken("t"), client.WithCacheDir(dir))
		if err != nil {
			t.Fatal(err)
		}
		doc, err := c.Cached("default")
		if err != nil {
			if !errors.Is(err, client.ErrNotCached) {
				t.Fatalf("error %v does not wrap ErrNotCached", err)
			}
			return
		}
		if doc.Keys == nil || doc.ETag == "" {
			t.Fatalf("cached ring without keys or ETag")
		}
	})
}

func TestTLSCA(t *testing.T) {
	s, stop, err := newServer(nil, true)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	c := mustClient(t, s.URL, client.WithTLSCA(ca))
	if doc := mustFetch(t, c, ""); doc.Keys.Len() != 1 {
		t.Errorf("over TLS: %d keys", doc.Keys.Len())
	}
	// Without the CA the server's certificate is not trusted.
	if _, err := mustClient(t, s.URL).Fetch(context.Background(), "default", ""); !errors.Is(err, client.ErrUnavailable) || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("without the CA: %v", err)
	}
}

// uncompressedRecorder is a RoundTripper that notes whether the transport received a
// gzip-compressed answer and decompressed it (http.Response.Uncompressed).
type uncompressedRecorder struct {
	next         http.RoundTripper
	uncompressed []bool
}

func (u *uncompressedRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := u.next.RoundTrip(r)
	if err == nil {
		u.uncompressed = append(u.uncompressed, resp.Uncompressed)
	}
	return resp, err
}

// TestFetchIsCompressed checks that the client, with Go's default transport, receives the ring
// gzip-compressed, gets the document byte for byte, and follows the compressed ETag with 304s.
func TestFetchIsCompressed(t *testing.T) {
	s := startServer(t, t.Output())
	rec := &uncompressedRecorder{next: http.DefaultTransport}
	c := mustClient(t, s.URL, client.WithHTTPClient(&http.Client{Transport: rec}))
	doc := mustFetch(t, c, "")
	if len(rec.uncompressed) != 1 || !rec.uncompressed[0] {
		t.Fatalf("ring answer decompressed by the transport: %v, want [true]", rec.uncompressed)
	}
	if want := fmt.Sprintf(`"%d.gz"`, doc.Version); doc.ETag != want {
		t.Errorf("ETag %s, want %s", doc.ETag, want)
	}
	plain := mustClient(t, s.URL, client.WithHTTPClient(&http.Client{Transport: &http.Transport{DisableCompression: true}}))
	if pdoc := mustFetch(t, plain, ""); !bytes.Equal(pdoc.Document, doc.Document) || pdoc.Version != doc.Version {
		t.Errorf("compressed and identity fetches differ: %d and %d bytes", len(doc.Document), len(pdoc.Document))
	}
	if again := mustFetch(t, c, doc.ETag); again != doc {
		t.Errorf("conditional fetch with the gzip ETag returned another document (version %d)", again.Version)
	}
}
