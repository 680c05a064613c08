package redisstore_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dpkeyring/dpkeyring/store"
	"github.com/dpkeyring/dpkeyring/store/redisstore"
)

func TestOpenUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg := redisstore.Config{Mode: redisstore.ModeStandalone, Addrs: []string{"127.0.0.1:1"}, DialTimeout: time.Second}
	_, err := redisstore.Open(ctx, cfg)
	if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("Open(unreachable) error = %v, want ErrUnavailable naming the address", err)
	}
}

// TestACL creates an ACL user on the standalone server that may touch only its own prefix:
// a wrong password is ErrPermission, and a ring outside the allowed keys is ErrPermission
// naming the key. The commands granted are the ones the store needs (docs/backends.md).
func TestACL(t *testing.T) {
	ctx := ctxT(t)
	cfg := standaloneConfig(t)
	raw := rawClient(t, cfg)
	user, pass := "dpktest-"+randHex(t, 4), randHex(t, 16)
	if err := raw.Do(ctx, "ACL", "SETUSER", user, "on", ">"+pass, "resetkeys",
		"~"+cfg.KeyPrefix+"*", "~{"+cfg.KeyPrefix+"}*", "resetchannels", "-@all",
		"+ping", "+info", "+hello", "+auth", "+client", "+eval", "+evalsha", "+script", "+wait",
		"+lrange", "+hgetall", "+get", "+multi", "+exec", "+hmget", "+scan", "+exists", "+pttl",
		"+llen", "+hget", "+hset", "+hlen", "+hsetnx", "+rpush", "+incr", "+set", "+del").Err(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = raw.Do(context.Background(), "ACL", "DELUSER", user).Err() })

	wrong := cfg
	wrong.Username, wrong.Password = user, "not-the-password"
	if _, err := redisstore.Open(ctx, wrong); !errors.Is(err, store.ErrPermission) || !strings.Contains(err.Error(), user) {
		t.Errorf("Open(wrong password) error = %v, want ErrPermission naming the user", err)
	}

	good := cfg
	good.Username, good.Password = user, pass
	s := mustOpen(t, good)
	name, xml := keyElement(t)
	if _, err := s.Append(ctx, "default", store.Element{Name: name, XML: []byte(xml)}, 0); err != nil {
		t.Fatalf("Append within the allowed keys: %v", err)
	}
	if _, err := s.List(ctx, "default"); err != nil {
		t.Errorf("List within the allowed keys: %v", err)
	}

	other := good
	other.Keys = map[string]string{"elsewhere": "not-" + cfg.KeyPrefix}
	s2 := mustOpen(t, other)
	_, err := s2.Append(ctx, "elsewhere", store.Element{Name: name, XML: []byte(xml)}, 0)
	if !errors.Is(err, store.ErrPermission) || !strings.Contains(err.Error(), "not-"+cfg.KeyPrefix) {
		t.Errorf("Append outside the allowed keys: error = %v, want ErrPermission naming the key", err)
	}
}
