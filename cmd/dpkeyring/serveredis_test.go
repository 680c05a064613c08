package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisAddr returns the test Redis (KEYRING_TEST_REDIS_ADDR), skipping the test without one
// (failing under CI=true).
func redisAddr(tb testing.TB) string {
	tb.Helper()
	addr := os.Getenv("KEYRING_TEST_REDIS_ADDR")
	if addr == "" {
		if os.Getenv("CI") == "true" {
			tb.Fatal("KEYRING_TEST_REDIS_ADDR is not set (CI=true needs a real Redis)")
		}
		tb.Skip("KEYRING_TEST_REDIS_ADDR is not set: no real Redis to test against")
	}
	return addr
}

func randomName(tb testing.TB) string {
	tb.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		tb.Fatal(err)
	}
	return "dpk-serve-test-" + hex.EncodeToString(b[:])
}

// TestServeRedis runs serve on a real Redis: it logs the store and its warnings, creates the
// ring's first key there, and "rotate --store" against the same Redis agrees nothing is due.
func TestServeRedis(t *testing.T) {
	addr, prefix := redisAddr(t), randomName(t)
	spec := "redis://" + addr + "/0?prefix=" + prefix
	t.Cleanup(func() { deleteRedisKeys(t, addr, prefix) })
	s := startServe(t, t.TempDir(), "--store", spec)
	code, body := do(t, nil, "GET", s.url+"/v1/rings/default/keys", s.tokens["node"], "")
	if code != 200 || !strings.Contains(body, "<key ") {
		t.Fatalf("GET keys: %d %s", code, body)
	}
	if !strings.Contains(s.stderr.String(), `"msg":"store opened"`) {
		t.Errorf("no store opened log line")
	}
	r := runCLI(t, time.Now(), "", "rotate", "--store", spec)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "not due") {
		t.Errorf("rotate --store redis: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
}

// deleteRedisKeys removes the test's keys (prefix*) so runs leave nothing behind.
func deleteRedisKeys(tb testing.TB, addr, prefix string) {
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	ctx := context.Background()
	iter := c.Scan(ctx, 0, prefix+"*", 100).Iterator()
	for iter.Next(ctx) {
		c.Del(ctx, iter.Val())
	}
	if err := iter.Err(); err != nil {
		tb.Logf("cleaning up redis keys %s*: %v", prefix, err)
	}
}
