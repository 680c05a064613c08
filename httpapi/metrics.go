package httpapi

import (
	"maps"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the API's Prometheus metrics, on their own registry.
type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	waiting  prometheus.Gauge
	handler  http.Handler

	cacheMu sync.Mutex // serializes writers of cache
	cache   atomic.Pointer[map[requestLabels]requestSeries]
}

func newMetrics(reg *prometheus.Registry, h *handler) (*metrics, error) {
	if reg == nil {
		reg = prometheus.NewRegistry()
		if err := reg.Register(collectors.NewGoCollector()); err != nil {
			return nil, err
		}
		if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
			return nil, err
		}
	}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dpkeyring_http_requests_total",
			Help: "HTTP requests by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "dpkeyring_http_request_duration_seconds",
			Help:    "HTTP request latency by route pattern (long-polls included).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120},
		}, []string{"route"}),
		waiting: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "dpkeyring_longpoll_waiting",
			Help: "Ring GETs currently long-polling.",
		}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.waiting, ringCollector{h}} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	return m, nil
}

// requestLabels identifies one series pair of the request metrics.
type requestLabels struct {
	route, method string
	status        int
}

// requestSeries are the counter and histogram of one requestLabels, looked up once.
type requestSeries struct {
	count   prometheus.Counter
	latency prometheus.Observer
}

// maxCachedSeries bounds the series cache (methods and statuses come from clients).
const maxCachedSeries = 1024

func (m *metrics) observeRequest(route, method string, status int, d time.Duration) {
	s := m.series(requestLabels{route, method, status})
	s.count.Inc()
	s.latency.Observe(d.Seconds())
}

// series returns the metrics of l from a copy-on-write map read without locks, so the hot path
// does no label hashing, strconv or allocation once a route has been seen.
func (m *metrics) series(l requestLabels) requestSeries {
	if cached := m.cache.Load(); cached != nil {
		if s, ok := (*cached)[l]; ok {
			return s
		}
	}
	s := requestSeries{
		count:   m.requests.WithLabelValues(l.route, l.method, strconv.Itoa(l.status)),
		latency: m.latency.WithLabelValues(l.route),
	}
	m.cacheMu.Lock()
	defer m.cacheMu.Unlock()
	var old map[requestLabels]requestSeries
	if p := m.cache.Load(); p != nil {
		old = *p
	}
	if len(old) >= maxCachedSeries {
		return s
	}
	next := make(map[requestLabels]requestSeries, len(old)+1)
	maps.Copy(next, old)
	next[l] = s
	m.cache.Store(&next)
	return s
}

var (
	descVersion = prometheus.NewDesc("dpkeyring_ring_version",
		"Version of the ring served from memory.", []string{"ring"}, nil)
	descStale = prometheus.NewDesc("dpkeyring_ring_stale",
		"1 when the last refresh of the ring failed and an older version is served.", []string{"ring"}, nil)
	descHealthy = prometheus.NewDesc("dpkeyring_ring_healthy",
		"1 when the ring is loaded, fresh, and has a default key beyond the policy lead time.", []string{"ring"}, nil)
	descDefaultExpiry = prometheus.NewDesc("dpkeyring_ring_default_key_expiry_seconds",
		"Seconds until the ring's default key expires (absent when there is none).", []string{"ring"}, nil)
	descCovered = prometheus.NewDesc("dpkeyring_ring_covered_seconds",
		"Seconds until the ring has no default key, counting successors that take over.", []string{"ring"}, nil)
	descSinceRotation = prometheus.NewDesc("dpkeyring_ring_last_rotation_age_seconds",
		"Seconds since the newest key of the ring was created.", []string{"ring"}, nil)
	descStoreErrors = prometheus.NewDesc("dpkeyring_store_errors_total",
		"Ring refreshes that failed because the store failed.", []string{"ring"}, nil)
	descNodes = prometheus.NewDesc("dpkeyring_ring_nodes",
		"Nodes that read the ring from this server recently.", []string{"ring"}, nil)
	descLagging = prometheus.NewDesc("dpkeyring_ring_lagging_nodes",
		"Nodes holding an old version of the ring for longer than the lag threshold.", []string{"ring"}, nil)
)

// ringCollector reports each ring's state at scrape time.
type ringCollector struct{ h *handler }

func (c ringCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descVersion, descStale, descHealthy, descDefaultExpiry, descCovered,
		descSinceRotation, descStoreErrors, descNodes, descLagging} {
		ch <- d
	}
}

func (c ringCollector) Collect(ch chan<- prometheus.Metric) {
	h := c.h
	now := h.cfg.Now()
	b2f := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	for _, ring := range h.cfg.Rings {
		name := ring.Name
		rr := h.report(name, now)
		ch <- prometheus.MustNewConstMetric(descStale, prometheus.GaugeValue, b2f(rr.health.Stale()), name)
		ch <- prometheus.MustNewConstMetric(descHealthy, prometheus.GaugeValue, b2f(rr.healthy()), name)
		ch <- prometheus.MustNewConstMetric(descStoreErrors, prometheus.CounterValue, float64(rr.health.StoreErrors), name)
		if !rr.loaded {
			continue
		}
		ch <- prometheus.MustNewConstMetric(descVersion, prometheus.GaugeValue, float64(rr.entry.Version), name)
		if rr.dflt != nil {
			ch <- prometheus.MustNewConstMetric(descDefaultExpiry, prometheus.GaugeValue, rr.dflt.Expiration.Sub(now).Seconds(), name)
		}
		ch <- prometheus.MustNewConstMetric(descCovered, prometheus.GaugeValue, rr.decision.CoveredUntil.Sub(now).Seconds(), name)
		if !rr.last.IsZero() {
			ch <- prometheus.MustNewConstMetric(descSinceRotation, prometheus.GaugeValue, now.Sub(rr.last).Seconds(), name)
		}
		nodes := h.nodes.snapshot(name, rr.entry.Version, h.cfg.Cache.History(name), now, h.cfg.NodeForget, h.cfg.NodeLagThreshold)
		lagging := 0
		for _, n := range nodes {
			if n.Lagging {
				lagging++
			}
		}
		ch <- prometheus.MustNewConstMetric(descNodes, prometheus.GaugeValue, float64(len(nodes)), name)
		ch <- prometheus.MustNewConstMetric(descLagging, prometheus.GaugeValue, float64(lagging), name)
	}
}
