package redisstore

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// Check inspects the server configuration and the ring keys and returns warnings about what
// could lose keys: a maxmemory-policy that evicts any key (allkeys-*), persistence turned off
// (no RDB save points and no AOF), and a TTL on a ring key (list, names, version, token, meta:
// they would expire, and volatile-* policies may evict them early). The lease key's own expiry
// is intended and not reported. Check does not log: the caller logs the warnings (at start and
// in readiness). The error reports a failure to ask, not a warning: a server that forbids
// CONFIG GET (some managed services) gives a warning saying so instead.
func (s *Store) Check(ctx context.Context) ([]string, error) {
	var warnings []string
	masters, err := s.masters(ctx)
	if err != nil {
		return nil, s.fail("CONFIG GET", "", err)
	}
	for _, c := range masters {
		addr := c.Options().Addr
		cfg, err := c.ConfigGet(ctx, "*").Result()
		if err != nil {
			warnings = append(warnings, fmt.Sprintf("redis %s: cannot read the server configuration (%v): check by hand that maxmemory-policy is noeviction or volatile-* and that persistence (RDB or AOF) is on", addr, err))
			continue
		}
		if p := cfg["maxmemory-policy"]; strings.HasPrefix(p, "allkeys-") {
			warnings = append(warnings, fmt.Sprintf("redis %s: maxmemory-policy is %s (maxmemory %s): Redis may evict Data Protection keys when memory runs out; use noeviction or a volatile-* policy", addr, p, cfg["maxmemory"]))
		}
		if strings.TrimSpace(cfg["save"]) == "" && cfg["appendonly"] != "yes" {
			warnings = append(warnings, fmt.Sprintf("redis %s: persistence is off (no RDB save points, appendonly no): a restart of this server loses every key it holds", addr))
		}
	}
	rings, err := s.Rings(ctx)
	if err != nil {
		return nil, err
	}
	for _, ring := range rings {
		k := keysFor(s.cfg.ListKey(ring))
		for _, key := range []string{k.list, k.names, k.version, k.token, k.meta} {
			ttl, err := s.uc.PTTL(ctx, key).Result()
			if err != nil {
				return nil, s.fail("PTTL", key, err)
			}
			if ttl > 0 {
				warnings = append(warnings, fmt.Sprintf("redis: key %q of ring %q has a TTL (%s left): it will expire or be evicted (volatile-* policies), losing keys; remove it with PERSIST", key, ring, ttl))
			}
		}
	}
	return warnings, nil
}

// masters returns a client per master (one unless Cluster).
func (s *Store) masters(ctx context.Context) ([]*redis.Client, error) {
	if s.cluster == nil {
		return []*redis.Client{s.single}, nil
	}
	var mu sync.Mutex
	var masters []*redis.Client
	err := s.cluster.ForEachMaster(ctx, func(_ context.Context, c *redis.Client) error {
		mu.Lock()
		defer mu.Unlock()
		masters = append(masters, c)
		return nil
	})
	slices.SortFunc(masters, func(a, b *redis.Client) int { return strings.Compare(a.Options().Addr, b.Options().Addr) })
	return masters, err
}
