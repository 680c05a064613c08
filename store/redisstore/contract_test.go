package redisstore_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dpkeyring/dpkeyring/store"
	"github.com/dpkeyring/dpkeyring/store/redisstore"
)

// The store contract itself is checked by storetest (conformance_test.go); these tests cover
// what is particular to this store.

// TestRingsOwnKeys checks ring discovery with a ring that has a list key of its own.
func TestRingsOwnKeys(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			ctx := ctxT(t)
			cfg := m.cfg(t)
			cfg.Keys = map[string]string{"own": cfg.KeyPrefix + "-own-list", "shop": "{" + cfg.KeyPrefix + "}shop"}
			s := mustOpen(t, cfg)
			raw := rawClient(t, cfg)
			t.Cleanup(func() { deletePrefix(t, raw, "{"+cfg.KeyPrefix+"}shop") })
			if got, err := s.Rings(ctx); err != nil || len(got) != 0 {
				t.Fatalf("Rings(empty prefix) = %v, %v", got, err)
			}
			for _, ring := range []string{"default", "zeta", "alpha", "own", "shop"} {
				name, xml := keyElement(t)
				if _, err := s.Append(ctx, ring, store.Element{Name: name, XML: []byte(xml)}, 0); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := s.PutMeta(ctx, "metaonly", []byte("m"), 0, 0); err != nil {
				t.Fatal(err)
			}
			got, err := s.Rings(ctx)
			if err != nil {
				t.Fatal(err)
			}
			want := []string{"alpha", "default", "metaonly", "own", "shop", "zeta"}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Rings (-want +got):\n%s", diff)
			}
			if n, err := raw.LLen(ctx, cfg.KeyPrefix+"-own-list").Result(); err != nil || n != 1 {
				t.Errorf("LLEN of ring own's own key = %d, %v; want 1", n, err)
			}
		})
	}
}

// TestWaitReplicas checks the automatic replica count: 0 without replicas, 1 with.
func TestWaitReplicas(t *testing.T) {
	for _, tc := range []struct {
		mode mode
		want int
	}{{modes[0], 0}, {modes[1], 1}, {modes[2], 1}} {
		t.Run(tc.mode.name, func(t *testing.T) {
			s := mustOpen(t, tc.mode.cfg(t))
			if got := s.WaitReplicas(); got != tc.want {
				t.Errorf("WaitReplicas() = %d, want %d", got, tc.want)
			}
		})
	}
	t.Run("WaitNone", func(t *testing.T) {
		cfg := sentinelConfig(t)
		cfg.WaitReplicas = redisstore.WaitNone
		if got := mustOpen(t, cfg).WaitReplicas(); got != 0 {
			t.Errorf("WaitReplicas() with WaitNone = %d, want 0", got)
		}
	})
}
