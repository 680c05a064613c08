package loadgen_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dpkeyring/dpkeyring/internal/loadgen"
	"github.com/google/go-cmp/cmp"
)

func TestCheckLoopback(t *testing.T) {
	tests := []struct {
		url string
		ok  bool
	}{
		{"http://127.0.0.1:8080/v1/rings/default/keys", true},
		{"http://127.9.9.9/", true},
		{"http://[::1]:80/", true},
		{"http://localhost:1/", true},
		{"http://10.0.0.1/", false},
		{"http://example.com/", false},
		{"https://127.0.0.1/", false},
		{"ftp://127.0.0.1/", false},
		{"http://[::ffff:8.8.8.8]/", false},
		{"::", false},
	}
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			_, err := loadgen.CheckLoopback(tc.url)
			if (err == nil) != tc.ok {
				t.Fatalf("CheckLoopback(%q) = %v, want ok %v", tc.url, err, tc.ok)
			}
			if err != nil && !errors.Is(err, loadgen.ErrConfig) {
				t.Errorf("error %v does not wrap ErrConfig", err)
			}
		})
	}
}

func TestRunCountsRequests(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Vault-Token") != "t" {
			http.Error(w, "no token", http.StatusForbidden)
			return
		}
		n := hits.Add(1)
		if n%10 == 0 {
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		}
		w.Write([]byte("0123456789"))
	}))
	defer srv.Close()
	res, err := loadgen.Run(t.Context(), loadgen.Config{
		URL: srv.URL, Header: http.Header{"X-Vault-Token": {"t"}}, Concurrency: 4, Requests: 200,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 200 || hits.Load() != 200 {
		t.Errorf("requests = %d, server hits = %d, want 200", res.Requests, hits.Load())
	}
	if diff := cmp.Diff(map[string]int64{"200": 180, "500": 20}, res.Statuses); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
	if res.Errors != 20 || res.Bytes < 180*10 {
		t.Errorf("errors = %d, bytes = %d; want 20 errors and at least 1800 bytes", res.Errors, res.Bytes)
	}
	if res.RPS <= 0 || res.P50Ms <= 0 || res.P99Ms < res.P50Ms || res.MaxMs < res.P99Ms {
		t.Errorf("implausible figures: %+v", res)
	}
}

func TestRunDuration(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	start := time.Now()
	res, err := loadgen.Run(t.Context(), loadgen.Config{URL: srv.URL, Concurrency: 2, Duration: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("a 300ms run took %s", el)
	}
	if res.Requests == 0 || res.Errors != 0 {
		t.Errorf("requests %d, errors %d (first %q)", res.Requests, res.Errors, res.FirstError)
	}
}

func TestRunRefusesBadConfig(t *testing.T) {
	for _, cfg := range []loadgen.Config{
		{URL: "http://192.0.2.1/", Concurrency: 1, Requests: 1},
		{URL: "http://127.0.0.1/", Concurrency: 0, Requests: 1},
		{URL: "http://127.0.0.1/", Concurrency: loadgen.MaxConcurrency + 1, Requests: 1},
		{URL: "http://127.0.0.1/", Concurrency: 1},
		{URL: "http://127.0.0.1/", Concurrency: 1, Duration: loadgen.MaxDuration + time.Second},
		{URL: "http://127.0.0.1/", Concurrency: 1, Requests: loadgen.MaxRequests + 1},
	} {
		if _, err := loadgen.Run(t.Context(), cfg); !errors.Is(err, loadgen.ErrConfig) {
			t.Errorf("Run(%+v) = %v, want ErrConfig", cfg, err)
		}
	}
}

// ringServer is a fake long-poll endpoint: version v, waiters woken by bump.
type ringServer struct {
	mu      sync.Mutex
	version int
	changed chan struct{}
	waiting atomic.Int64
}

func (s *ringServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/metrics":
		w.Write([]byte("# HELP x\ndpkeyring_longpoll_waiting " + strconv.FormatInt(s.waiting.Load(), 10) + "\n"))
		return
	case "/bump":
		s.mu.Lock()
		s.version++
		close(s.changed)
		s.changed = make(chan struct{})
		s.mu.Unlock()
		return
	}
	s.mu.Lock()
	v, ch := s.version, s.changed
	s.mu.Unlock()
	etag := `"` + strconv.Itoa(v) + `"`
	if r.Header.Get("If-None-Match") == etag && r.URL.Query().Get("wait") != "" {
		s.waiting.Add(1)
		select {
		case <-ch:
		case <-r.Context().Done():
		case <-time.After(30 * time.Second):
		}
		s.waiting.Add(-1)
		s.mu.Lock()
		v = s.version
		s.mu.Unlock()
		etag = `"` + strconv.Itoa(v) + `"`
	}
	w.Header().Set("ETag", etag)
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Write([]byte("<repository/>"))
}

func TestLongPollWakesEveryClient(t *testing.T) {
	rs := &ringServer{changed: make(chan struct{})}
	srv := httptest.NewServer(rs)
	defer srv.Close()
	res, err := loadgen.LongPoll(t.Context(), loadgen.LongPollConfig{
		URL: srv.URL + "/ring", Clients: 50, MetricsURL: srv.URL + "/metrics",
		TriggerURL: srv.URL + "/bump", PID: os.Getpid(), Timeout: 30 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Waiting != 50 || res.ServerWaiting != 50 || res.Woken != 50 || res.Errors != 0 || res.Unchanged != 0 {
		t.Errorf("result %+v: want 50 waiting (server too) and 50 woken", res)
	}
	if res.RSSWaitingMiB <= 0 || res.HWMMiB < res.RSSWaitingMiB {
		t.Errorf("RSS not read: %+v", res)
	}
	if res.WakeMaxMs <= 0 || res.WakeMaxMs > 10_000 {
		t.Errorf("wake max %.1f ms", res.WakeMaxMs)
	}
}

func TestLongPollHoldWithoutTrigger(t *testing.T) {
	rs := &ringServer{changed: make(chan struct{})}
	srv := httptest.NewServer(rs)
	defer srv.Close()
	res, err := loadgen.LongPoll(t.Context(), loadgen.LongPollConfig{
		URL: srv.URL + "/ring", Clients: 10, Hold: 100 * time.Millisecond, Timeout: 30 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Waiting != 10 || res.Woken != 0 || res.Errors != 0 {
		t.Errorf("result %+v: want 10 waiting, released without errors", res)
	}
}

func TestParseHeaders(t *testing.T) {
	h, err := loadgen.ParseHeaders([]string{"Authorization: Bearer x", "x-vault-token:t"})
	if err != nil {
		t.Fatal(err)
	}
	want := http.Header{"Authorization": {"Bearer x"}, "X-Vault-Token": {"t"}}
	if diff := cmp.Diff(want, h); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if _, err := loadgen.ParseHeaders([]string{"novalue"}); !errors.Is(err, loadgen.ErrConfig) {
		t.Errorf("ParseHeaders(novalue) = %v, want ErrConfig", err)
	}
}
