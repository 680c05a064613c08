package redisstore_test

import (
	"context"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/dpkeyring/dpkeyring/store/redisstore"
	"github.com/dpkeyring/dpkeyring/store/storetest"
)

// openSpec opens the store a redis spec (URL) names. Child processes of the multi-process race
// call it too.
func openSpec(ctx context.Context, spec string) (storetest.Store, error) {
	u, err := url.Parse(spec)
	if err != nil {
		return nil, err
	}
	cfg, err := redisstore.ParseURL(u, os.Getenv)
	if err != nil {
		return nil, err
	}
	return redisstore.Open(ctx, cfg)
}

// specFor returns the spec of a test config (which has a fresh key prefix) and deletes the
// prefix's keys after the test.
func specFor(t *testing.T, cfg redisstore.Config) string {
	t.Helper()
	raw := rawClient(t, cfg)
	t.Cleanup(func() { deletePrefix(t, raw, cfg.KeyPrefix) })
	q := url.Values{"prefix": {cfg.KeyPrefix}}
	switch cfg.Mode {
	case redisstore.ModeSentinel:
		return "redis+sentinel://" + strings.Join(cfg.Addrs, ",") + "/" + cfg.MasterName + "?" + q.Encode()
	case redisstore.ModeCluster:
		return "redis+cluster://" + strings.Join(cfg.Addrs, ",") + "?" + q.Encode()
	}
	return "redis://" + cfg.Addrs[0] + "?" + q.Encode()
}

// TestConformance runs the store conformance suite on standalone, Sentinel and Cluster.
func TestConformance(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			m.cfg(t) // skip (or fail under CI) before the suite when the server is not there
			storetest.Run(t, storetest.Harness{
				NewSpec: func(t *testing.T) string { return specFor(t, m.cfg(t)) },
				Open:    openSpec,
				WriteForeign: func(t *testing.T, spec, ring, _ string, xml []byte) {
					t.Helper()
					u, err := url.Parse(spec)
					if err != nil {
						t.Fatal(err)
					}
					cfg, err := redisstore.ParseURL(u, os.Getenv)
					if err != nil {
						t.Fatal(err)
					}
					// What RedisXmlRepository.StoreElement does: RPUSH of the compact element.
					if err := rawClient(t, cfg).RPush(t.Context(), cfg.ListKey(ring), xml).Err(); err != nil {
						t.Fatal(err)
					}
				},
			})
		})
	}
}
