package client_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/dpkeyring/dpkeyring/httpapi"
	"github.com/dpkeyring/dpkeyring/internal/ringcache"
	"github.com/dpkeyring/dpkeyring/internal/rotation"
	"github.com/dpkeyring/dpkeyring/keyring"
	"github.com/dpkeyring/dpkeyring/store/filestore"
)

const (
	nodeToken  = "dpk_node_test_token"
	adminToken = "dpk_admin_test_token"
)

// testServer is the real API handler over a real file store, behind httptest.
type testServer struct {
	*httptest.Server
}

// startServer runs the real httpapi handler over a file store in a temporary directory, with a
// node and an admin token, and creates the ring "default" with a first key.
func startServer(tb testing.TB, logOut io.Writer) *testServer {
	tb.Helper()
	s, stop, err := newServer(logOut, false)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(stop)
	return s
}

// newServer is startServer for examples and TLS (the server's certificate is s.Certificate()): it returns the server and a function that stops it
// and removes its files.
func newServer(logOut io.Writer, useTLS bool) (_ *testServer, stop func(), err error) {
	dir, err := os.MkdirTemp("", "dpkeyring-client-")
	if err != nil {
		return nil, nil, err
	}
	var cleanups []func()
	stop = func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}
	cleanups = append(cleanups, func() { os.RemoveAll(dir) })
	defer func() {
		if err != nil {
			stop()
		}
	}()
	ctx := context.Background()
	fs, err := filestore.Open(ctx, filestore.Config{Dir: dir})
	if err != nil {
		return nil, nil, err
	}
	cleanups = append(cleanups, func() { fs.Close() })
	cache, err := ringcache.New(ringcache.Config{Store: fs, Rings: []string{"default"},
		Parse: func(elems [][]byte) (*keyring.Ring, error) {
			return keyring.ParseElements(elems, keyring.ParseOptions{})
		}})
	if err != nil {
		return nil, nil, err
	}
	principals := map[string]httpapi.Principal{
		nodeToken:  {Name: "node", Role: httpapi.RoleNode},
		adminToken: {Name: "admin", Role: httpapi.RoleAdmin},
	}
	if logOut == nil {
		logOut = io.Discard
	}
	h, err := httpapi.New(httpapi.Config{
		Rings: []httpapi.Ring{{Name: "default", Policy: keyring.DefaultPolicy()}},
		Cache: cache,
		Auth: httpapi.AuthenticatorFunc(func(token string) (httpapi.Principal, bool) {
			p, ok := principals[token]
			return p, ok
		}),
		Writers: httpapi.WritersFunc(func(ring string) (httpapi.RingWriter, error) {
			return &rotation.Rotator{Store: fs, Ring: ring, Policy: keyring.DefaultPolicy(), Owner: "test"}, nil
		}),
		Logger: slog.New(slog.NewTextHandler(logOut, nil)),
	})
	if err != nil {
		return nil, nil, err
	}
	s := &testServer{Server: httptest.NewUnstartedServer(h)}
	if useTLS {
		s.StartTLS()
	} else {
		s.Start()
	}
	cleanups = append(cleanups, s.Close)
	if _, err := s.postErr("/v1/rings/default/rotate", `{}`); err != nil {
		return nil, nil, err
	}
	return s, stop, nil
}

// rotate posts body to the rotate endpoint and returns the answer.
func (s *testServer) rotate(tb testing.TB, body string) map[string]any {
	tb.Helper()
	return s.post(tb, "/v1/rings/default/rotate", body)
}

func (s *testServer) post(tb testing.TB, path, body string) map[string]any {
	tb.Helper()
	out, err := s.postErr(path, body)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

func (s *testServer) postErr(path, body string) (map[string]any, error) {
	req, err := http.NewRequest(http.MethodPost, s.URL+path, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.Client().Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("POST %s: %d %s", path, resp.StatusCode, b)
	}
	var out map[string]any
	err = json.Unmarshal(b, &out)
	return out, err
}

// status returns the ring's status as the admin sees it.
func (s *testServer) status(tb testing.TB) map[string]any {
	tb.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.URL+"/v1/rings/default/status", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := s.Client().Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		tb.Fatal(err)
	}
	return out
}
