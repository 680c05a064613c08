package httpapi

import (
	"fmt"
	"net/http"
	"time"

	"github.com/dpkeyring/dpkeyring/internal/ringcache"
	"github.com/dpkeyring/dpkeyring/keyring"
)

// keyJSON is a key in the status answer.
type keyJSON struct {
	KeyID      string    `json:"key_id"`
	Created    time.Time `json:"created"`
	Activation time.Time `json:"activation"`
	Expiration time.Time `json:"expiration"`
	Status     string    `json:"status"`
}

func describeKey(r *keyring.Ring, k *keyring.Key, now time.Time) *keyJSON {
	if k == nil {
		return nil
	}
	return &keyJSON{KeyID: k.ID.String(), Created: k.Created, Activation: k.Activation, Expiration: k.Expiration,
		Status: r.Status(*k, now).String()}
}

// keyCounts counts a ring's keys by status.
type keyCounts struct {
	Active       int `json:"active"`
	NotYetActive int `json:"not_yet_active"`
	Expired      int `json:"expired"`
	Revoked      int `json:"revoked"`
	Unreadable   int `json:"unreadable"`
}

// ringReport is the health of one ring at a time, shared by status, readyz and metrics.
type ringReport struct {
	ring     string
	loaded   bool
	entry    ringcache.Entry
	health   ringcache.Health
	dflt     *keyring.Key
	next     *keyring.Key
	decision keyring.Decision
	last     time.Time // creation date of the newest key
	problems []string
}

// report evaluates ring at now. A ring is healthy when it is loaded, its last refresh
// succeeded, and it has a default key for longer than its policy's lead time from now
// (counting successors that take over: the policy's coverage).
func (h *handler) report(ring string, now time.Time) ringReport {
	rr := ringReport{ring: ring, health: h.cfg.Cache.Health(ring)}
	if rr.health.Err != nil {
		rr.problems = append(rr.problems, rr.health.Err.Error())
	}
	e, err := h.cfg.Cache.Get(ring)
	if err != nil {
		if rr.health.Err == nil {
			rr.problems = append(rr.problems, err.Error())
		}
		return rr
	}
	rr.loaded, rr.entry = true, e
	policy := h.rings[ring].Policy
	res := e.Keys.ResolveDefaultKey(now)
	rr.dflt = res.Default
	rr.decision = policy.Decide(e.Keys, now)
	var next *keyring.Key
	for _, k := range e.Keys.Keys() {
		if k.Created.After(rr.last) {
			rr.last = k.Created
		}
		if e.Keys.IsRevoked(k) || !k.Activation.After(now) {
			continue
		}
		if rr.dflt != nil && k.ID == rr.dflt.ID {
			continue
		}
		if next == nil || k.Activation.Before(next.Activation) {
			next = &k
		}
	}
	rr.next = next
	switch {
	case rr.dflt == nil:
		rr.problems = append(rr.problems, fmt.Sprintf("ring %s has no default key", ring))
	case rr.decision.CoveredUntil.Sub(now) <= policy.LeadTime:
		rr.problems = append(rr.problems, fmt.Sprintf("ring %s has a default key only until %s, within the lead time %s, and no successor",
			ring, rr.decision.CoveredUntil.UTC().Format(time.RFC3339), policy.LeadTime))
	}
	return rr
}

func (rr ringReport) healthy() bool { return rr.loaded && len(rr.problems) == 0 }

// statusJSON is the answer of GET /v1/rings/{ring}/status.
type statusJSON struct {
	Ring                       string       `json:"ring"`
	Version                    uint64       `json:"version"`
	Fetched                    time.Time    `json:"fetched"`
	Stale                      bool         `json:"stale"`
	Healthy                    bool         `json:"healthy"`
	Problems                   []string     `json:"problems"`
	DefaultKey                 *keyJSON     `json:"default_key"`
	SecondsUntilDefaultExpires *float64     `json:"seconds_until_default_expires"`
	NextKey                    *keyJSON     `json:"next_key"`
	CoveredUntil               time.Time    `json:"covered_until"`
	LastRotation               *time.Time   `json:"last_rotation"`
	SecondsSinceLastRotation   *float64     `json:"seconds_since_last_rotation"`
	NextRotation               time.Time    `json:"next_rotation"`
	RotationDue                bool         `json:"rotation_due"`
	KeyCounts                  keyCounts    `json:"key_counts"`
	Nodes                      []nodeStatus `json:"nodes"`
	LaggingNodes               int          `json:"lagging_nodes"`
}

// status answers GET /v1/rings/{ring}/status (admin).
func (h *handler) status(w http.ResponseWriter, r *http.Request) error {
	ring, _, err := h.ringParam(r, RoleAdmin)
	if err != nil {
		return err
	}
	now := h.cfg.Now()
	rr := h.report(ring, now)
	if !rr.loaded {
		_, err := h.cfg.Cache.Get(ring)
		return err
	}
	h.setStale(w, ring)
	e := rr.entry
	out := statusJSON{
		Ring: ring, Version: e.Version, Fetched: e.Fetched, Stale: rr.health.Stale(),
		Healthy: rr.healthy(), Problems: rr.problems,
		DefaultKey:   describeKey(e.Keys, rr.dflt, now),
		NextKey:      describeKey(e.Keys, rr.next, now),
		CoveredUntil: rr.decision.CoveredUntil,
		NextRotation: rr.decision.NextDue,
		RotationDue:  rr.decision.Due,
		Nodes: h.nodes.snapshot(ring, e.Version, h.cfg.Cache.History(ring), now,
			h.cfg.NodeForget, h.cfg.NodeLagThreshold),
	}
	if out.Problems == nil {
		out.Problems = []string{}
	}
	if rr.decision.Due {
		out.NextRotation = now
	}
	if rr.dflt != nil {
		s := rr.dflt.Expiration.Sub(now).Seconds()
		out.SecondsUntilDefaultExpires = &s
	}
	if !rr.last.IsZero() {
		last := rr.last
		s := now.Sub(last).Seconds()
		out.LastRotation, out.SecondsSinceLastRotation = &last, &s
	}
	for _, k := range e.Keys.Keys() {
		switch e.Keys.Status(k, now) {
		case keyring.StatusActive:
			out.KeyCounts.Active++
		case keyring.StatusNotYetActive:
			out.KeyCounts.NotYetActive++
		case keyring.StatusExpired:
			out.KeyCounts.Expired++
		case keyring.StatusRevoked:
			out.KeyCounts.Revoked++
		}
	}
	for _, s := range e.Keys.Skipped() {
		if s.Name != "" {
			out.KeyCounts.Unreadable++
		}
	}
	for _, n := range out.Nodes {
		if n.Lagging {
			out.LaggingNodes++
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// healthz answers GET /healthz: the process is alive.
func (h *handler) healthz(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

// readyz answers GET /readyz: 200 when every ring is loaded, its store answered the last
// refresh and it has a default key beyond the lead time; else 503 not_ready with the reasons.
func (h *handler) readyz(w http.ResponseWriter, r *http.Request) error {
	now := h.cfg.Now()
	type ringReady struct {
		Ring     string   `json:"ring"`
		Ready    bool     `json:"ready"`
		Problems []string `json:"problems,omitempty"`
	}
	out := struct {
		Status string      `json:"status"`
		Code   string      `json:"code,omitempty"`
		Error  string      `json:"error,omitempty"`
		Rings  []ringReady `json:"rings"`
	}{Status: "ready"}
	status := http.StatusOK
	for _, ring := range h.cfg.Rings {
		rr := h.report(ring.Name, now)
		out.Rings = append(out.Rings, ringReady{Ring: ring.Name, Ready: rr.healthy(), Problems: rr.problems})
		if !rr.healthy() {
			status = http.StatusServiceUnavailable
		}
	}
	if status != http.StatusOK {
		out.Status, out.Code, out.Error = "not ready", codeNotReady, "one or more rings are not healthy"
	}
	writeJSON(w, status, out)
	return nil
}
