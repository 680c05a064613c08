// Package loadgen is the small HTTP load generator of the server benchmarks
// (.ci/bench-server.sh): N concurrent clients send GETs to one loopback URL for a fixed duration
// or request count ([Run]), and a long-poll mode holds N waiting requests on one server and
// measures how fast a change wakes them and what they cost in server memory ([LongPoll]).
//
// It only targets loopback addresses (127.0.0.0/8, ::1, localhost): it is a benchmark tool, not
// a way to load someone else's server. Every run is bounded in time, requests and clients.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Limits of a run.
const (
	MaxConcurrency = 2000
	MaxDuration    = 5 * time.Minute
	MaxRequests    = 20_000_000
	MaxClients     = 10_000
	// maxSamples bounds the latency samples kept per run (memory); later requests still count.
	maxSamples = 4_000_000
)

// ErrConfig reports a configuration that cannot run: a non-loopback URL, missing or
// out-of-range settings.
var ErrConfig = errors.New("loadgen: invalid configuration")

// Config is one GET load run.
type Config struct {
	// URL is the loopback http URL to GET.
	URL string
	// Header is sent with every request (e.g. Authorization, X-Vault-Token).
	Header http.Header
	// Concurrency is the number of clients, each with its own keep-alive connection.
	Concurrency int
	// Duration ends the run after this long (0: only Requests ends it).
	Duration time.Duration
	// Requests ends the run after this many requests in total (0: only Duration ends it).
	Requests int
	// Warmup runs the clients this long before measuring (connections opened, caches filled).
	Warmup time.Duration
	// Timeout bounds each request; default 10s.
	Timeout time.Duration
}

// Result is what a run measured. Latencies are in milliseconds.
type Result struct {
	URL         string           `json:"url"`
	Concurrency int              `json:"concurrency"`
	Requests    int64            `json:"requests"`
	Errors      int64            `json:"errors"` // transport errors and statuses other than 200 and 304
	Statuses    map[string]int64 `json:"statuses"`
	Bytes       int64            `json:"bytes"` // response body bytes read
	Seconds     float64          `json:"seconds"`
	RPS         float64          `json:"rps"`
	P50Ms       float64          `json:"p50_ms"`
	P90Ms       float64          `json:"p90_ms"`
	P99Ms       float64          `json:"p99_ms"`
	MaxMs       float64          `json:"max_ms"`
	FirstError  string           `json:"first_error,omitempty"`
}

// String is a one-line summary.
func (r Result) String() string {
	return fmt.Sprintf("%d requests in %.1fs: %.0f req/s, p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.1f ms, %d errors",
		r.Requests, r.Seconds, r.RPS, r.P50Ms, r.P90Ms, r.P99Ms, r.MaxMs, r.Errors)
}

// CheckLoopback returns an error wrapping [ErrConfig] unless rawURL is an http URL whose host is
// a loopback IP address or "localhost".
func CheckLoopback(rawURL string) (*url.URL, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%w: url: %v", ErrConfig, err)
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("%w: url %q: only http:// is supported", ErrConfig, rawURL)
	}
	host := u.Hostname()
	if host == "localhost" {
		return u, nil
	}
	a, err := netip.ParseAddr(host)
	if err != nil || !a.Unmap().IsLoopback() {
		return nil, fmt.Errorf("%w: url %q: only loopback addresses (127.0.0.1, ::1, localhost) may be targeted", ErrConfig, rawURL)
	}
	return u, nil
}

func (c *Config) validate() error {
	if _, err := CheckLoopback(c.URL); err != nil {
		return err
	}
	switch {
	case c.Concurrency < 1 || c.Concurrency > MaxConcurrency:
		return fmt.Errorf("%w: concurrency %d is outside 1..%d", ErrConfig, c.Concurrency, MaxConcurrency)
	case c.Duration <= 0 && c.Requests <= 0:
		return fmt.Errorf("%w: give a duration or a request count", ErrConfig)
	case c.Duration < 0 || c.Duration+c.Warmup > MaxDuration:
		return fmt.Errorf("%w: duration plus warmup must be at most %s", ErrConfig, MaxDuration)
	case c.Requests < 0 || c.Requests > MaxRequests:
		return fmt.Errorf("%w: requests %d is outside 0..%d", ErrConfig, c.Requests, MaxRequests)
	case c.Warmup < 0:
		return fmt.Errorf("%w: negative warmup", ErrConfig)
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	return nil
}

// newTransport returns a transport that keeps one connection per client.
func newTransport(conns int) *http.Transport {
	return &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
}

// worker is one client's counters; each worker writes only its own.
type worker struct {
	samples  []time.Duration
	requests int64
	errors   int64
	bytes    int64
	statuses map[int]int64
	firstErr error
}

// Run sends GETs to cfg.URL from cfg.Concurrency clients until cfg.Duration has passed or
// cfg.Requests were sent (whichever comes first), after cfg.Warmup, and reports throughput and
// latency percentiles. It returns an error wrapping [ErrConfig] for a bad cfg; failed requests
// are counted in Result.Errors, not returned.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.validate(); err != nil {
		return Result{}, err
	}
	tr := newTransport(cfg.Concurrency)
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: cfg.Timeout}

	if cfg.Warmup > 0 {
		wctx, cancel := context.WithTimeout(ctx, cfg.Warmup)
		var remaining atomic.Int64
		remaining.Store(1 << 62)
		runWorkers(wctx, client, cfg, &remaining, false)
		cancel()
	}
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}

	runCtx := ctx
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	var remaining atomic.Int64
	if cfg.Requests > 0 {
		remaining.Store(int64(cfg.Requests))
	} else {
		remaining.Store(1 << 62)
	}
	start := time.Now()
	workers := runWorkers(runCtx, client, cfg, &remaining, true)
	elapsed := time.Since(start)
	return summarize(cfg, workers, elapsed), nil
}

func runWorkers(ctx context.Context, client *http.Client, cfg Config, remaining *atomic.Int64, record bool) []*worker {
	workers := make([]*worker, cfg.Concurrency)
	perWorker := maxSamples / cfg.Concurrency
	var wg sync.WaitGroup
	for i := range workers {
		w := &worker{statuses: map[int]int64{}}
		if record {
			w.samples = make([]time.Duration, 0, min(perWorker, 1<<16))
		}
		workers[i] = w
		wg.Go(func() {
			buf := make([]byte, 32<<10)
			for ctx.Err() == nil && remaining.Add(-1) >= 0 {
				t0 := time.Now()
				status, n, err := get(ctx, client, cfg.URL, cfg.Header, buf)
				d := time.Since(t0)
				if err != nil && ctx.Err() != nil {
					break // the run ended during this request: not a failure
				}
				w.requests++
				w.bytes += n
				if err != nil {
					w.errors++
					if w.firstErr == nil {
						w.firstErr = err
					}
					continue
				}
				w.statuses[status]++
				if status != http.StatusOK && status != http.StatusNotModified {
					w.errors++
					if w.firstErr == nil {
						w.firstErr = fmt.Errorf("status %d", status)
					}
				}
				if record && len(w.samples) < perWorker {
					w.samples = append(w.samples, d)
				}
			}
		})
	}
	wg.Wait()
	return workers
}

// get sends one GET and reads the whole body.
func get(ctx context.Context, client *http.Client, rawURL string, h http.Header, buf []byte) (int, int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return 0, 0, err
	}
	for k, vs := range h {
		req.Header[k] = vs
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	n, err := io.CopyBuffer(io.Discard, resp.Body, buf)
	resp.Body.Close()
	if err != nil {
		return resp.StatusCode, n, err
	}
	return resp.StatusCode, n, nil
}

func summarize(cfg Config, workers []*worker, elapsed time.Duration) Result {
	res := Result{URL: cfg.URL, Concurrency: cfg.Concurrency, Statuses: map[string]int64{}, Seconds: elapsed.Seconds()}
	var all []time.Duration
	for _, w := range workers {
		res.Requests += w.requests
		res.Errors += w.errors
		res.Bytes += w.bytes
		for s, n := range w.statuses {
			res.Statuses[strconv.Itoa(s)] += n
		}
		if w.firstErr != nil && res.FirstError == "" {
			res.FirstError = w.firstErr.Error()
		}
		all = append(all, w.samples...)
	}
	if elapsed > 0 {
		res.RPS = float64(res.Requests) / elapsed.Seconds()
	}
	slices.Sort(all)
	res.P50Ms = ms(percentile(all, 0.50))
	res.P90Ms = ms(percentile(all, 0.90))
	res.P99Ms = ms(percentile(all, 0.99))
	if len(all) > 0 {
		res.MaxMs = ms(all[len(all)-1])
	}
	return res
}

// percentile returns the nearest-rank percentile p (0..1] of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p+0.999999) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
