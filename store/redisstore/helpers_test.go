package redisstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dpkeyring/dpkeyring/keyring"
	"github.com/dpkeyring/dpkeyring/store/redisstore"
)

// Env vars naming the real servers (see .ci/redis.sh).
const (
	envAddr           = "KEYRING_TEST_REDIS_ADDR"
	envSentinelAddrs  = "KEYRING_TEST_REDIS_SENTINEL_ADDRS"
	envSentinelMaster = "KEYRING_TEST_REDIS_SENTINEL_MASTER"
	envClusterAddrs   = "KEYRING_TEST_REDIS_CLUSTER_ADDRS"
	envStateDir       = "KEYRING_TEST_REDIS_STATE_DIR"
)

// requireEnv returns the values of the env vars, skipping the test when one is unset (failing
// it under CI=true, where the servers must be there).
func requireEnv(tb testing.TB, names ...string) []string {
	tb.Helper()
	vals := make([]string, len(names))
	for i, n := range names {
		vals[i] = os.Getenv(n)
		if vals[i] == "" {
			msg := fmt.Sprintf("%s is not set: start the servers with `eval \"$(.ci/redis.sh start DIR)\"`", n)
			if os.Getenv("CI") == "true" {
				tb.Fatal(msg)
			}
			tb.Skip(msg)
		}
	}
	return vals
}

// mode is one way of reaching Redis, with the config for a fresh key prefix.
type mode struct {
	name string
	cfg  func(tb testing.TB) redisstore.Config
}

var modes = []mode{
	{"standalone", standaloneConfig},
	{"sentinel", sentinelConfig},
	{"cluster", clusterConfig},
}

func standaloneConfig(tb testing.TB) redisstore.Config {
	v := requireEnv(tb, envAddr)
	return redisstore.Config{Mode: redisstore.ModeStandalone, Addrs: []string{v[0]}, KeyPrefix: newPrefix(tb)}
}

func sentinelConfig(tb testing.TB) redisstore.Config {
	v := requireEnv(tb, envSentinelAddrs, envSentinelMaster)
	return redisstore.Config{Mode: redisstore.ModeSentinel, Addrs: strings.Split(v[0], ","), MasterName: v[1], KeyPrefix: newPrefix(tb)}
}

func clusterConfig(tb testing.TB) redisstore.Config {
	v := requireEnv(tb, envClusterAddrs)
	return redisstore.Config{Mode: redisstore.ModeCluster, Addrs: strings.Split(v[0], ","), KeyPrefix: newPrefix(tb)}
}

// newPrefix returns a fresh key prefix, so runs never collide, and deletes its keys after the
// test.
func newPrefix(tb testing.TB) string {
	tb.Helper()
	p := "dpktest-" + randHex(tb, 6)
	return p
}

func randHex(tb testing.TB, n int) string {
	tb.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// mustOpen opens a store and closes it, and deletes the keys of its prefix, after the test.
func mustOpen(tb testing.TB, cfg redisstore.Config) *redisstore.Store {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := redisstore.Open(ctx, cfg)
	if err != nil {
		tb.Fatalf("Open(%v): %v", cfg, err)
	}
	raw := rawClient(tb, cfg)
	tb.Cleanup(func() {
		_ = s.Close()
		deletePrefix(tb, raw, cfg.KeyPrefix)
	})
	return s
}

// rawClient is a plain go-redis client for the same servers, as a .NET node would use them.
func rawClient(tb testing.TB, cfg redisstore.Config) redis.UniversalClient {
	tb.Helper()
	var c redis.UniversalClient
	switch cfg.Mode {
	case redisstore.ModeStandalone:
		c = redis.NewClient(&redis.Options{Addr: cfg.Addrs[0], DisableIdentity: true})
	case redisstore.ModeSentinel:
		c = redis.NewFailoverClient(&redis.FailoverOptions{MasterName: cfg.MasterName, SentinelAddrs: cfg.Addrs, DisableIdentity: true})
	case redisstore.ModeCluster:
		c = redis.NewClusterClient(&redis.ClusterOptions{Addrs: cfg.Addrs, DisableIdentity: true})
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// deletePrefix deletes the keys a test made: "<prefix>…" lists and "{<prefix>…}:…" companions.
func deletePrefix(tb testing.TB, c redis.UniversalClient, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	del := func(ctx context.Context, n *redis.Client) error {
		for _, pattern := range []string{prefix + "*", "{" + prefix + "*"} {
			iter := n.Scan(ctx, 0, pattern, 1000).Iterator()
			for iter.Next(ctx) {
				_ = n.Del(ctx, iter.Val()).Err()
			}
		}
		return nil
	}
	switch c := c.(type) {
	case *redis.ClusterClient:
		_ = c.ForEachMaster(ctx, del)
	case *redis.Client:
		_ = del(ctx, c)
	}
}

// keyElement returns a new key element as ASP.NET Core writes it (compact, the master key
// unencrypted), made by the format core.
func keyElement(tb testing.TB) (name, xml string) {
	tb.Helper()
	k := newKey(tb)
	return "key-" + k.ID.String(), string(k.XML)
}

// newKey returns a new key with its XML element in k.XML.
func newKey(tb testing.TB) keyring.Key {
	tb.Helper()
	now := time.Now()
	k, err := keyring.NewKey(now, now, now.Add(90*24*time.Hour))
	if err != nil {
		tb.Fatal(err)
	}
	k.XML, err = keyring.MarshalKey(k)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// indented returns xml as a key file holds it: declaration and indentation.
func indented(xml string) string {
	r := strings.NewReplacer("><", ">\n  <")
	return `<?xml version="1.0" encoding="utf-8"?>` + "\n" + r.Replace(xml)
}

func ctxT(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	tb.Cleanup(cancel)
	return ctx
}
