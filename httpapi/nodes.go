package httpapi

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dpkeyring/dpkeyring/internal/ringcache"
)

// nodeTracker remembers, per ring, the nodes that read it: when each was last seen and which
// ring version it holds. It is kept in memory only (each replica knows its own readers).
type nodeTracker struct {
	max   int
	mu    sync.RWMutex
	rings map[string]map[string]nodeSeen
}

type nodeSeen struct {
	lastSeen time.Time
	version  uint64
}

// seenResolution is how stale a node's last_seen may be: a node read again within it with an
// unchanged version is not written again.
const seenResolution = time.Second

func newNodeTracker(max int) *nodeTracker {
	return &nodeTracker{max: max, rings: make(map[string]map[string]nodeSeen)}
}

// seen records that node holds version of ring at now (last_seen to within [seenResolution]).
// When the ring already tracks max nodes, the least recently seen one is dropped.
func (t *nodeTracker) seen(ring, node string, version uint64, now time.Time) {
	if node == "" {
		return
	}
	// Most reads are by a node that already holds the version: under the read lock, and
	// without a write, unless its last_seen is a second old or more.
	t.mu.RLock()
	s, ok := t.rings[ring][node]
	t.mu.RUnlock()
	if ok && s.version == version && !now.Before(s.lastSeen) && now.Sub(s.lastSeen) < seenResolution {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.rings[ring]
	if m == nil {
		m = make(map[string]nodeSeen)
		t.rings[ring] = m
	}
	if _, ok := m[node]; !ok && len(m) >= t.max {
		oldest, first := "", true
		for name, s := range m {
			if first || s.lastSeen.Before(m[oldest].lastSeen) {
				oldest, first = name, false
			}
		}
		delete(m, oldest)
	}
	m[node] = nodeSeen{lastSeen: now, version: version}
}

// nodeStatus is one node in the status answer.
type nodeStatus struct {
	Node       string    `json:"node"`
	LastSeen   time.Time `json:"last_seen"`
	Version    uint64    `json:"version"`
	Current    bool      `json:"current"`
	LagSeconds float64   `json:"lag_seconds"`
	Lagging    bool      `json:"lagging"`
}

// snapshot returns the ring's nodes seen since now-forget, sorted by name, with their lag: 0
// for a node holding the current version, else the time since this server first saw a newer
// version than the node's (from the cache's version history; at least the age of the oldest
// remembered version when the node's is older still). A node is lagging when its lag exceeds
// threshold.
func (t *nodeTracker) snapshot(ring string, current uint64, history []ringcache.VersionSeen, now time.Time, forget, threshold time.Duration) []nodeStatus {
	t.mu.Lock()
	out := make([]nodeStatus, 0, len(t.rings[ring]))
	for name, s := range t.rings[ring] {
		if now.Sub(s.lastSeen) > forget {
			delete(t.rings[ring], name)
			continue
		}
		out = append(out, nodeStatus{Node: name, LastSeen: s.lastSeen, Version: s.version})
	}
	t.mu.Unlock()
	for i := range out {
		n := &out[i]
		n.Current = n.Version == current
		if n.Current {
			continue
		}
		var since time.Time
		for _, h := range history {
			if h.Version > n.Version {
				since = h.Seen
				break
			}
		}
		if !since.IsZero() && now.After(since) {
			n.LagSeconds = now.Sub(since).Seconds()
		}
		n.Lagging = n.LagSeconds > threshold.Seconds()
	}
	slices.SortFunc(out, func(a, b nodeStatus) int { return strings.Compare(a.Node, b.Node) })
	return out
}
