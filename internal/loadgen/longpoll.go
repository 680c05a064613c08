package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// LongPollConfig is one long-poll run: Clients requests wait on URL for a change; Trigger makes
// the change.
type LongPollConfig struct {
	// URL is the loopback ring URL (without ?wait=, which is added).
	URL string
	// Header is sent with every request, the first GET and the metrics requests.
	Header http.Header
	// Clients is the number of waiting requests, each on its own connection.
	Clients int
	// Wait is the ?wait= of each request; default 110s.
	Wait time.Duration
	// MetricsURL, if set, is polled until its dpkeyring_longpoll_waiting gauge reaches Clients
	// (so the memory is read with every request parked in the server).
	MetricsURL string
	// PID is the server's process id, whose VmRSS is read from /proc (0: not read).
	PID int
	// TriggerURL, if set, is POSTed (with TriggerHeader and TriggerBody as JSON) once every
	// client waits; the run then measures how long each client takes to get the new version.
	// Without it the clients are held for Hold and then released.
	TriggerURL    string
	TriggerHeader http.Header
	TriggerBody   string
	// Hold is how long to hold the clients without a trigger; default 2s.
	Hold time.Duration
	// Timeout bounds the whole run; default 3 minutes.
	Timeout time.Duration
}

// LongPollResult is what a long-poll run measured. Wake latencies are from the trigger's POST to
// each client's answer.
type LongPollResult struct {
	Clients        int     `json:"clients"`
	Waiting        int     `json:"waiting"`         // clients whose request was written
	ServerWaiting  int     `json:"server_waiting"`  // the server's dpkeyring_longpoll_waiting, -1 unknown
	ConnectSeconds float64 `json:"connect_seconds"` // until every request was written
	RSSBeforeMiB   float64 `json:"rss_before_mib"`  // server VmRSS before the clients connected
	RSSWaitingMiB  float64 `json:"rss_waiting_mib"` // server VmRSS with every client waiting
	HWMMiB         float64 `json:"rss_peak_mib"`    // server VmHWM (peak RSS) at the end
	TriggerStatus  int     `json:"trigger_status"`  // status of the trigger POST
	Woken          int     `json:"woken"`           // clients answered 200 with a new version
	Unchanged      int     `json:"unchanged"`       // clients answered 304
	Errors         int     `json:"errors"`          // transport errors and other statuses
	WakeP50Ms      float64 `json:"wake_p50_ms"`     // from the trigger to the answer
	WakeP99Ms      float64 `json:"wake_p99_ms"`     //
	WakeMaxMs      float64 `json:"wake_max_ms"`     //
	FirstError     string  `json:"first_error,omitempty"`
}

// String is a one-line summary.
func (r LongPollResult) String() string {
	return fmt.Sprintf("%d clients waiting (server: %d) after %.1fs; server RSS %.1f MiB before, %.1f MiB waiting (peak %.1f); "+
		"%d woken (p50 %.0f ms, p99 %.0f ms, max %.0f ms), %d unchanged, %d errors",
		r.Waiting, r.ServerWaiting, r.ConnectSeconds, r.RSSBeforeMiB, r.RSSWaitingMiB, r.HWMMiB,
		r.Woken, r.WakeP50Ms, r.WakeP99Ms, r.WakeMaxMs, r.Unchanged, r.Errors)
}

// LongPoll runs a long-poll measurement: it reads the ring's ETag, parks Clients requests with
// If-None-Match and ?wait=, waits until they all wait (and, with MetricsURL, until the server
// counts them), reads the server's memory, then triggers a change (or holds them for Hold) and
// collects every answer. It returns an error wrapping [ErrConfig] for a bad configuration, or
// when the first GET or the trigger fails.
func LongPoll(ctx context.Context, cfg LongPollConfig) (LongPollResult, error) {
	u, err := CheckLoopback(cfg.URL)
	if err != nil {
		return LongPollResult{}, err
	}
	for _, other := range []string{cfg.MetricsURL, cfg.TriggerURL} {
		if other != "" {
			if _, err := CheckLoopback(other); err != nil {
				return LongPollResult{}, err
			}
		}
	}
	if cfg.Clients < 1 || cfg.Clients > MaxClients {
		return LongPollResult{}, fmt.Errorf("%w: clients %d is outside 1..%d", ErrConfig, cfg.Clients, MaxClients)
	}
	if cfg.Wait <= 0 {
		cfg.Wait = 110 * time.Second
	}
	if cfg.Hold <= 0 {
		cfg.Hold = 2 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 3 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()

	tr := newTransport(cfg.Clients + 4)
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	res := LongPollResult{Clients: cfg.Clients, ServerWaiting: -1}

	etag, err := currentETag(ctx, client, cfg.URL, cfg.Header)
	if err != nil {
		return res, err
	}
	if cfg.PID > 0 {
		res.RSSBeforeMiB, _, _ = readRSS(cfg.PID)
	}

	q := u.Query()
	q.Set("wait", cfg.Wait.String())
	u.RawQuery = q.Encode()
	waitURL := u.String()

	type answer struct {
		at     time.Time
		status int
		err    error
	}
	answers := make([]answer, cfg.Clients)
	var wrote atomic.Int64
	allWritten := make(chan struct{})
	dials := make(chan struct{}, 64) // connect at most 64 at a time: no SYN storm
	clientsCtx, stopClients := context.WithCancel(ctx)
	defer stopClients()
	connectStart := time.Now()
	var wg sync.WaitGroup
	for i := range cfg.Clients {
		wg.Go(func() {
			dials <- struct{}{}
			released := false
			release := func() {
				if !released {
					released = true
					<-dials
				}
			}
			defer release()
			trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) {
				release()
				if wrote.Add(1) == int64(cfg.Clients) {
					close(allWritten)
				}
			}}
			req, err := http.NewRequestWithContext(httptrace.WithClientTrace(clientsCtx, trace), http.MethodGet, waitURL, nil)
			if err != nil {
				answers[i] = answer{at: time.Now(), err: err}
				return
			}
			for k, vs := range cfg.Header {
				req.Header[k] = vs
			}
			req.Header.Set("If-None-Match", etag)
			req.Header.Set("X-Node-Id", "loadgen-"+strconv.Itoa(i))
			resp, err := client.Do(req)
			if err != nil {
				answers[i] = answer{at: time.Now(), err: err}
				return
			}
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			answers[i] = answer{at: time.Now(), status: resp.StatusCode, err: err}
		})
	}

	select {
	case <-allWritten:
	case <-ctx.Done():
	}
	res.ConnectSeconds = time.Since(connectStart).Seconds()
	res.Waiting = int(wrote.Load())
	if cfg.MetricsURL != "" {
		res.ServerWaiting = waitForGauge(ctx, client, cfg.MetricsURL, cfg.Header, "dpkeyring_longpoll_waiting", cfg.Clients)
	} else {
		sleepCtx(ctx, time.Second) // let the server park the last requests
	}
	if cfg.PID > 0 {
		res.RSSWaitingMiB, _, _ = readRSS(cfg.PID)
	}

	var t0 time.Time
	if cfg.TriggerURL != "" && ctx.Err() == nil {
		t0 = time.Now()
		res.TriggerStatus, err = post(ctx, client, cfg.TriggerURL, cfg.TriggerHeader, cfg.TriggerBody)
		if err != nil {
			stopClients()
			wg.Wait()
			return res, fmt.Errorf("loadgen: trigger: %w", err)
		}
	} else {
		sleepCtx(ctx, cfg.Hold)
		stopClients()
	}
	wg.Wait()
	if cfg.PID > 0 {
		_, res.HWMMiB, _ = readRSS(cfg.PID)
	}

	var wake []time.Duration
	for _, a := range answers {
		switch {
		case a.err != nil && cfg.TriggerURL == "" && clientsCtx.Err() != nil:
			// released by cancellation after the hold: expected
		case a.err != nil:
			res.Errors++
			if res.FirstError == "" {
				res.FirstError = a.err.Error()
			}
		case a.status == http.StatusOK:
			res.Woken++
			if !t0.IsZero() {
				wake = append(wake, a.at.Sub(t0))
			}
		case a.status == http.StatusNotModified:
			res.Unchanged++
		default:
			res.Errors++
			if res.FirstError == "" {
				res.FirstError = "status " + strconv.Itoa(a.status)
			}
		}
	}
	slices.Sort(wake)
	res.WakeP50Ms = ms(percentile(wake, 0.50))
	res.WakeP99Ms = ms(percentile(wake, 0.99))
	if len(wake) > 0 {
		res.WakeMaxMs = ms(wake[len(wake)-1])
	}
	return res, nil
}

func currentETag(ctx context.Context, client *http.Client, rawURL string, h http.Header) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return "", err
	}
	for k, vs := range h {
		req.Header[k] = vs
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("loadgen: first GET: %w", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	etag := resp.Header.Get("ETag")
	if resp.StatusCode != http.StatusOK || etag == "" {
		return "", fmt.Errorf("loadgen: first GET %s: status %d, ETag %q", rawURL, resp.StatusCode, etag)
	}
	return etag, nil
}

func post(ctx context.Context, client *http.Client, rawURL string, h http.Header, body string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rawURL, strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	for k, vs := range h {
		req.Header[k] = vs
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, fmt.Errorf("POST %s: status %d: %s", rawURL, resp.StatusCode, bytes.TrimSpace(b))
	}
	return resp.StatusCode, nil
}

// waitForGauge polls a Prometheus text endpoint until gauge reaches want (or ctx ends, or 60s
// pass) and returns its last value (-1 if never read).
func waitForGauge(ctx context.Context, client *http.Client, rawURL string, h http.Header, gauge string, want int) int {
	last := -1
	deadline := time.Now().Add(60 * time.Second)
	for ctx.Err() == nil && time.Now().Before(deadline) {
		if v, err := readGauge(ctx, client, rawURL, h, gauge); err == nil {
			last = v
			if v >= want {
				return v
			}
		}
		sleepCtx(ctx, 100*time.Millisecond)
	}
	return last
}

// readGauge returns the value of an unlabelled gauge from a Prometheus text endpoint.
func readGauge(ctx context.Context, client *http.Client, rawURL string, h http.Header, gauge string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return 0, err
	}
	for k, vs := range h {
		req.Header[k] = vs
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if ok && name == gauge {
			f, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
			if err != nil {
				return 0, err
			}
			return int(f), nil
		}
	}
	return 0, fmt.Errorf("loadgen: %s not found at %s", gauge, rawURL)
}

// readRSS returns a process's VmRSS and VmHWM (peak) in MiB from /proc/PID/status.
func readRSS(pid int) (rss, hwm float64, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0, err
	}
	return parseStatusKiB(b, "VmRSS:") / 1024, parseStatusKiB(b, "VmHWM:") / 1024, nil
}

// ReadRSS returns the VmRSS of process pid in MiB (Linux /proc).
func ReadRSS(pid int) (float64, error) {
	rss, _, err := readRSS(pid)
	return rss, err
}

func parseStatusKiB(status []byte, field string) float64 {
	for line := range strings.SplitSeq(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			v = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB"))
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// ParseHeaders turns "Name: value" lines into a header.
func ParseHeaders(lines []string) (http.Header, error) {
	h := http.Header{}
	for _, l := range lines {
		k, v, ok := strings.Cut(l, ":")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("%w: header %q is not Name: value", ErrConfig, l)
		}
		h.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	return h, nil
}
