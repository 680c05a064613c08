package redisstore_test

import (
	"strings"
	"testing"
	"time"

	"github.com/dpkeyring/dpkeyring/store"
)

// TestCheck changes the standalone test server's configuration (and restores it) to see each
// warning appear and go away.
func TestCheck(t *testing.T) {
	ctx := ctxT(t)
	cfg := standaloneConfig(t)
	s := mustOpen(t, cfg)
	raw := rawClient(t, cfg)
	name, xml := keyElement(t)
	if _, err := s.Append(ctx, "default", store.Element{Name: name, XML: []byte(xml)}, 0); err != nil {
		t.Fatal(err)
	}

	saved, err := raw.ConfigGet(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	restore := func() {
		for _, k := range []string{"maxmemory-policy", "save", "appendonly"} {
			if err := raw.ConfigSet(ctx, k, saved[k]).Err(); err != nil {
				t.Errorf("restoring %s=%q: %v", k, saved[k], err)
			}
		}
	}
	t.Cleanup(restore)
	set := func(k, v string) {
		t.Helper()
		if err := raw.ConfigSet(ctx, k, v).Err(); err != nil {
			t.Fatalf("CONFIG SET %s %q: %v", k, v, err)
		}
	}
	warnings := func() string {
		t.Helper()
		w, err := s.Check(ctx)
		if err != nil {
			t.Fatalf("Check: %v", err)
		}
		return strings.Join(w, "\n")
	}

	set("save", "")
	set("appendonly", "no")
	set("maxmemory-policy", "noeviction")
	if w := warnings(); !strings.Contains(w, "persistence is off") || strings.Contains(w, "maxmemory-policy") {
		t.Errorf("persistence off, noeviction: warnings %q, want only the persistence one", w)
	}
	set("save", "3600 1")
	if w := warnings(); w != "" {
		t.Errorf("RDB on, noeviction: warnings %q, want none", w)
	}
	set("maxmemory-policy", "allkeys-lru")
	if w := warnings(); !strings.Contains(w, "maxmemory-policy is allkeys-lru") {
		t.Errorf("allkeys-lru: warnings %q, want the eviction warning", w)
	}
	set("maxmemory-policy", "volatile-lru")
	if w := warnings(); w != "" {
		t.Errorf("volatile-lru without TTLs: warnings %q, want none", w)
	}
	names := "{" + cfg.KeyPrefix + "}:names"
	if err := raw.PExpire(ctx, names, time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	if w := warnings(); !strings.Contains(w, names) || !strings.Contains(w, "has a TTL") {
		t.Errorf("TTL on %s: warnings %q, want a TTL warning naming it", names, w)
	}
	if err := raw.Persist(ctx, names).Err(); err != nil {
		t.Fatal(err)
	}
	// The lease's own expiry is by design.
	if _, err := s.Lock(ctx, "default", "me", time.Minute); err != nil {
		t.Fatal(err)
	}
	if w := warnings(); w != "" {
		t.Errorf("lease held: warnings %q, want none", w)
	}
}
