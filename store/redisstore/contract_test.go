package redisstore_test

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dpkeyring/dpkeyring/store"
	"github.com/dpkeyring/dpkeyring/store/redisstore"
)

// TestContract checks the store contract (STORES.md) on standalone, Sentinel and Cluster.
func TestContract(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			cfg := m.cfg(t)
			s := mustOpen(t, cfg)
			t.Run("ListAppend", func(t *testing.T) { testListAppend(t, s) })
			t.Run("Invalid", func(t *testing.T) { testInvalid(t, s) })
			t.Run("Lock", func(t *testing.T) { testLock(t, s) })
			t.Run("Meta", func(t *testing.T) { testMeta(t, s) })
			t.Run("Rings", func(t *testing.T) { testRings(t, cfg) })
			t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, s) })
		})
	}
}

func testListAppend(t *testing.T, s *redisstore.Store) {
	ctx := ctxT(t)
	ring := "r-" + randHex(t, 4)
	if _, err := s.List(ctx, ring); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("List(new ring) error = %v, want ErrNotFound", err)
	}
	var want []store.Element
	var last uint64
	for range 3 {
		name, xml := keyElement(t)
		v, err := s.Append(ctx, ring, store.Element{Name: name, XML: []byte(xml)}, 0)
		if err != nil {
			t.Fatalf("Append(%s): %v", name, err)
		}
		if v <= last {
			t.Errorf("Append version %d after %d, want it to grow", v, last)
		}
		last = v
		want = append(want, store.Element{Name: name, XML: []byte(xml)})
	}
	snap, err := s.List(ctx, ring)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, snap.Elements); diff != "" {
		t.Errorf("List elements (-want +got):\n%s", diff)
	}
	if snap.Version != last {
		t.Errorf("List version = %d, want the last Append's %d", snap.Version, last)
	}

	// Idempotent: the same element again, also in file form, changes nothing.
	for _, x := range []string{string(want[1].XML), indented(string(want[1].XML))} {
		v, err := s.Append(ctx, ring, store.Element{Name: want[1].Name, XML: []byte(x)}, 0)
		if err != nil || v != last {
			t.Errorf("Append(same element again) = %d, %v; want %d, nil", v, err, last)
		}
	}
	// Same name, other bytes: refused, nothing rewritten.
	_, other := keyElement(t)
	if _, err := s.Append(ctx, ring, store.Element{Name: want[1].Name, XML: []byte(other)}, 0); !errors.Is(err, store.ErrExists) {
		t.Errorf("Append(same name, other XML) error = %v, want ErrExists", err)
	}
	snap, err = s.List(ctx, ring)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, snap.Elements); diff != "" || snap.Version != last {
		t.Errorf("after no-op appends: version %d (want %d), elements (-want +got):\n%s", snap.Version, last, diff)
	}
}

func testInvalid(t *testing.T, s *redisstore.Store) {
	ctx := ctxT(t)
	name, xml := keyElement(t)
	tests := []struct {
		name string
		ring string
		e    store.Element
	}{
		{"bad ring", "Bad Ring", store.Element{Name: name, XML: []byte(xml)}},
		{"bad element name", "ok", store.Element{Name: "a/b", XML: []byte(xml)}},
		{"not XML", "ok", store.Element{Name: name, XML: []byte("not xml")}},
		{"two elements", "ok", store.Element{Name: name, XML: []byte("<a/><b/>")}},
		{"empty", "ok", store.Element{Name: name}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.Append(ctx, tc.ring, tc.e, 0); !errors.Is(err, store.ErrInvalidName) {
				t.Errorf("Append error = %v, want ErrInvalidName", err)
			}
		})
	}
	if _, err := s.List(ctx, "../x"); !errors.Is(err, store.ErrInvalidName) {
		t.Errorf("List(../x) error = %v, want ErrInvalidName", err)
	}
	if _, err := s.Lock(ctx, "ok", "me", 0); err == nil {
		t.Error("Lock with ttl 0 succeeded")
	}
}

func testLock(t *testing.T, s *redisstore.Store) {
	ctx := ctxT(t)
	ring := "l-" + randHex(t, 4)
	a, err := s.Lock(ctx, ring, "a", 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if a.Token != 1 || a.Owner != "a" || a.Ring != ring || time.Until(a.Expires) > 300*time.Millisecond {
		t.Errorf("first lease = %+v, want token 1, owner a, expiring within 300ms", a)
	}
	if _, err := s.Lock(ctx, ring, "b", time.Second); !errors.Is(err, store.ErrLocked) {
		t.Errorf("Lock by b while a holds it: error = %v, want ErrLocked", err)
	}
	renewed, err := s.Lock(ctx, ring, "a", 300*time.Millisecond)
	if err != nil || renewed.Token != a.Token || !renewed.Expires.After(a.Expires) {
		t.Errorf("renewal = %+v, %v; want token %d and a later expiry", renewed, err, a.Token)
	}

	// Fenced writes: the current token writes, a stale one does not.
	name, xml := keyElement(t)
	if _, err := s.Append(ctx, ring, store.Element{Name: name, XML: []byte(xml)}, a.Token); err != nil {
		t.Errorf("Append with the current fence: %v", err)
	}

	time.Sleep(400 * time.Millisecond) // a's lease lapses
	b, err := s.Lock(ctx, ring, "b", time.Minute)
	if err != nil {
		t.Fatalf("Lock by b after a's lease expired: %v", err)
	}
	if b.Token != a.Token+1 {
		t.Errorf("b's token = %d, want %d", b.Token, a.Token+1)
	}
	name2, xml2 := keyElement(t)
	if _, err := s.Append(ctx, ring, store.Element{Name: name2, XML: []byte(xml2)}, a.Token); !errors.Is(err, store.ErrFenced) {
		t.Errorf("Append with a's stale fence: error = %v, want ErrFenced", err)
	}
	if _, err := s.PutMeta(ctx, ring, []byte("x"), 0, a.Token); !errors.Is(err, store.ErrFenced) {
		t.Errorf("PutMeta with a's stale fence: error = %v, want ErrFenced", err)
	}
	if err := s.Unlock(ctx, a); !errors.Is(err, store.ErrFenced) {
		t.Errorf("Unlock(a) after b took the lock: error = %v, want ErrFenced", err)
	}
	if err := s.Unlock(ctx, b); err != nil {
		t.Fatalf("Unlock(b): %v", err)
	}
	c, err := s.Lock(ctx, ring, "c", time.Minute)
	if err != nil || c.Token != b.Token+1 {
		t.Errorf("Lock after Unlock = %+v, %v; want token %d", c, err, b.Token+1)
	}
	snap, err := s.List(ctx, ring)
	if err != nil || len(snap.Elements) != 1 || snap.Elements[0].Name != name {
		t.Errorf("List = %+v, %v; want only %s", snap, err, name)
	}
}

func testMeta(t *testing.T, s *redisstore.Store) {
	ctx := ctxT(t)
	ring := "m-" + randHex(t, 4)
	if _, err := s.Meta(ctx, ring); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Meta(new ring) error = %v, want ErrNotFound", err)
	}
	v1, err := s.PutMeta(ctx, ring, []byte("one"), 0, 0)
	if err != nil || v1 == 0 {
		t.Fatalf("PutMeta(expect 0) = %d, %v", v1, err)
	}
	if _, err := s.PutMeta(ctx, ring, []byte("again"), 0, 0); !errors.Is(err, store.ErrConflict) {
		t.Errorf("PutMeta(expect 0) on an existing record: error = %v, want ErrConflict", err)
	}
	v2, err := s.PutMeta(ctx, ring, []byte("two"), v1, 0)
	if err != nil || v2 <= v1 {
		t.Fatalf("PutMeta(expect %d) = %d, %v", v1, v2, err)
	}
	if _, err := s.PutMeta(ctx, ring, []byte("stale"), v1, 0); !errors.Is(err, store.ErrConflict) {
		t.Errorf("PutMeta(stale expect) error = %v, want ErrConflict", err)
	}
	got, err := s.Meta(ctx, ring)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(store.Meta{Data: []byte("two"), Version: v2}, got); diff != "" {
		t.Errorf("Meta (-want +got):\n%s", diff)
	}
	l, err := s.Lock(ctx, ring, "w", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutMeta(ctx, ring, []byte("three"), v2, l.Token); err != nil {
		t.Errorf("PutMeta with the current fence: %v", err)
	}
}

func testRings(t *testing.T, cfg redisstore.Config) {
	ctx := ctxT(t)
	cfg.KeyPrefix = newPrefix(t)
	cfg.Keys = map[string]string{"own": cfg.KeyPrefix + "-own-list"}
	s := mustOpen(t, cfg)
	if got, err := s.Rings(ctx); err != nil || len(got) != 0 {
		t.Fatalf("Rings(empty prefix) = %v, %v", got, err)
	}
	for _, ring := range []string{"default", "zeta", "alpha", "own"} {
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
	want := []string{"alpha", "default", "metaonly", "own", "zeta"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Rings (-want +got):\n%s", diff)
	}
}

// testConcurrent races 50 goroutines appending (each its own element plus one shared element)
// and 50 taking the lock: every element survives exactly once, and one lock holder wins.
func testConcurrent(t *testing.T, s *redisstore.Store) {
	ctx := ctxT(t)
	ring := "c-" + randHex(t, 4)
	sharedName, sharedXML := keyElement(t)
	const n = 50
	names := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range n {
		name, xml := keyElement(t)
		names[i] = name
		wg.Go(func() {
			if _, err := s.Append(ctx, ring, store.Element{Name: name, XML: []byte(xml)}, 0); err != nil {
				errs <- fmt.Errorf("append %s: %w", name, err)
			}
			if _, err := s.Append(ctx, ring, store.Element{Name: sharedName, XML: []byte(sharedXML)}, 0); err != nil {
				errs <- fmt.Errorf("append shared: %w", err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	snap, err := s.List(ctx, ring)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range snap.Elements {
		got = append(got, e.Name)
	}
	want := append(slices.Clone(names), sharedName)
	slices.Sort(got)
	slices.Sort(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("elements after the race (-want +got):\n%s", diff)
	}

	var mu sync.Mutex
	var holders []string
	lockRing := "cl-" + randHex(t, 4)
	for i := range n {
		owner := fmt.Sprintf("owner-%d", i)
		wg.Go(func() {
			_, err := s.Lock(ctx, lockRing, owner, time.Minute)
			switch {
			case err == nil:
				mu.Lock()
				holders = append(holders, owner)
				mu.Unlock()
			case !errors.Is(err, store.ErrLocked):
				t.Errorf("Lock(%s): %v", owner, err)
			}
		})
	}
	wg.Wait()
	if len(holders) != 1 {
		t.Errorf("lock holders = %v, want exactly one", holders)
	}
}
