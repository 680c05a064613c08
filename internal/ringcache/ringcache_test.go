package ringcache_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dpkeyring/dpkeyring/internal/ringcache"
	"github.com/dpkeyring/dpkeyring/keyring"
	"github.com/dpkeyring/dpkeyring/store"
)

var t0 = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// fakeStore is a Lister whose snapshot and error are set by the test.
type fakeStore struct {
	mu   sync.Mutex
	snap store.Snapshot
	err  error
	list func(ctx context.Context, ring string) (store.Snapshot, error)
}

var _ ringcache.Lister = (*fakeStore)(nil)

func (f *fakeStore) List(ctx context.Context, ring string) (store.Snapshot, error) {
	if f.list != nil {
		return f.list(ctx, ring)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return store.Snapshot{}, f.err
	}
	if f.snap.Version == 0 {
		return store.Snapshot{}, fmt.Errorf("ring %s: %w", ring, store.ErrNotFound)
	}
	return f.snap, nil
}

// set replaces the ring with keys given as "activationDays:expirationDays" offsets from t0.
func (f *fakeStore) set(version uint64, keys ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.snap = store.Snapshot{Version: version}
	for i, k := range keys {
		f.snap.Elements = append(f.snap.Elements, store.Element{Name: fmt.Sprintf("key-%d", i), XML: []byte(k)})
	}
}

func (f *fakeStore) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

// fakeParse reads the "activationDays:expirationDays" elements of fakeStore into usable keys.
func fakeParse(elements [][]byte) (*keyring.Ring, error) {
	var keys []keyring.Key
	for i, e := range elements {
		var act, exp int
		if _, err := fmt.Sscanf(string(e), "%d:%d", &act, &exp); err != nil {
			return nil, fmt.Errorf("%w: %q", keyring.ErrMalformedKey, e)
		}
		var id keyring.KeyID
		id[0] = byte(i + 1)
		keys = append(keys, keyring.Key{
			ID:         id,
			Created:    t0.AddDate(0, 0, act-1),
			Activation: t0.AddDate(0, 0, act),
			Expiration: t0.AddDate(0, 0, exp),
			Descriptor: &keyring.Descriptor{
				Encryption: keyring.AES256CBC, Validation: keyring.HMACSHA256,
				MasterKey: keyring.NewSecret(make([]byte, 64)),
			},
		})
	}
	return keyring.NewRing(keys, nil, nil)
}

func mustCache(tb testing.TB, s ringcache.Lister, now time.Time) *ringcache.Cache {
	tb.Helper()
	c, err := ringcache.New(ringcache.Config{
		Store: s, Rings: []string{"default"}, Parse: fakeParse,
		Now: func() time.Time { return now },
	})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func TestGetBeforeLoad(t *testing.T) {
	c := mustCache(t, &fakeStore{}, t0)
	if _, err := c.Get("default"); !errors.Is(err, ringcache.ErrNotLoaded) {
		t.Fatalf("Get before load: err = %v, want ErrNotLoaded", err)
	}
	if _, err := c.Get("other"); !errors.Is(err, ringcache.ErrUnknownRing) {
		t.Fatalf("Get unknown: err = %v, want ErrUnknownRing", err)
	}
	if err := c.Refresh(t.Context(), "other"); !errors.Is(err, ringcache.ErrUnknownRing) {
		t.Fatalf("Refresh unknown: err = %v, want ErrUnknownRing", err)
	}
}

func TestEmptyRingIsNeverServed(t *testing.T) {
	s := &fakeStore{}
	c := mustCache(t, s, t0)
	if err := c.Refresh(t.Context(), "default"); !errors.Is(err, ringcache.ErrUnusableRing) || !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Refresh of missing ring: err = %v, want ErrUnusableRing wrapping ErrNotFound", err)
	}
	s.set(1) // exists, no keys
	if err := c.Refresh(t.Context(), "default"); !errors.Is(err, ringcache.ErrUnusableRing) {
		t.Fatalf("Refresh of empty ring: err = %v, want ErrUnusableRing", err)
	}
	if _, err := c.Get("default"); !errors.Is(err, ringcache.ErrNotLoaded) || !errors.Is(err, ringcache.ErrUnusableRing) {
		t.Fatalf("Get: err = %v, want ErrNotLoaded wrapping ErrUnusableRing", err)
	}
}

func TestKeepsGoodEntry(t *testing.T) {
	tests := []struct {
		name       string
		breakStore func(s *fakeStore)
		wantErr    error
		storeErrs  uint64
	}{
		{"store unavailable", func(s *fakeStore) { s.fail(fmt.Errorf("dial: %w", store.ErrUnavailable)) }, store.ErrUnavailable, 1},
		{"only expired keys", func(s *fakeStore) { s.set(2, "-20:-10") }, ringcache.ErrUnusableRing, 0},
		{"unparsable ring", func(s *fakeStore) { s.set(2, "0:90", "garbage") }, keyring.ErrMalformedKey, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &fakeStore{}
			s.set(1, "-1:89")
			c := mustCache(t, s, t0)
			if err := c.Refresh(t.Context(), "default"); err != nil {
				t.Fatal(err)
			}
			tc.breakStore(s)
			if err := c.Refresh(t.Context(), "default"); !errors.Is(err, tc.wantErr) {
				t.Fatalf("Refresh: err = %v, want %v", err, tc.wantErr)
			}
			e, err := c.Get("default")
			if err != nil || e.Version != 1 || e.Keys.Len() != 1 {
				t.Fatalf("Get = version %d, %v; want the good version 1", e.Version, err)
			}
			h := c.Health("default")
			if !h.Stale() || !h.Loaded || h.Version != 1 || h.StoreErrors != tc.storeErrs {
				t.Fatalf("Health = %+v, want stale, loaded version 1, %d store errors", h, tc.storeErrs)
			}
			// Recovery: a good new version replaces it and clears the error.
			s.fail(nil)
			s.set(3, "-1:89", "80:170")
			if err := c.Refresh(t.Context(), "default"); err != nil {
				t.Fatal(err)
			}
			if e, _ := c.Get("default"); e.Version != 3 {
				t.Fatalf("after recovery version = %d, want 3", e.Version)
			}
			if h := c.Health("default"); h.Stale() {
				t.Fatalf("after recovery Health = %+v, want not stale", h)
			}
		})
	}
}

func TestHistory(t *testing.T) {
	s := &fakeStore{}
	c := mustCache(t, s, t0)
	for v := uint64(1); v <= 70; v++ {
		s.set(v, "-1:89")
		if err := c.Refresh(t.Context(), "default"); err != nil {
			t.Fatal(err)
		}
	}
	h := c.History("default")
	if len(h) != 64 || h[0].Version != 7 || h[63].Version != 70 {
		t.Fatalf("History: %d entries from %v to %v, want 64 from 7 to 70", len(h), h[0], h[len(h)-1])
	}
}

func TestWaitWakesOnChange(t *testing.T) {
	s := &fakeStore{}
	s.set(1, "-1:89")
	c := mustCache(t, s, t0)
	if err := c.Refresh(t.Context(), "default"); err != nil {
		t.Fatal(err)
	}
	// Already different: returns at once.
	if e, err := c.Wait(t.Context(), "default", 0); err != nil || e.Version != 1 {
		t.Fatalf("Wait(have 0) = %d, %v; want 1", e.Version, err)
	}
	const waiters = 1000
	var wg sync.WaitGroup
	got := make(chan uint64, waiters)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for range waiters {
		wg.Go(func() {
			e, err := c.Wait(ctx, "default", 1)
			if err != nil {
				t.Error(err)
			}
			got <- e.Version
		})
	}
	time.Sleep(50 * time.Millisecond) // let them block
	s.set(2, "-1:89", "80:170")
	start := time.Now()
	if err := c.Invalidate(t.Context(), "default"); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("waking %d waiters took %v, want < 100ms", waiters, d)
	}
	close(got)
	for v := range got {
		if v != 2 {
			t.Fatalf("waiter got version %d, want 2", v)
		}
	}
}

func TestWaitTimesOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &fakeStore{}
		s.set(1, "-1:89")
		c := mustCache(t, s, t0)
		if err := c.Refresh(t.Context(), "default"); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
		defer cancel()
		start := time.Now()
		e, err := c.Wait(ctx, "default", 1)
		if !errors.Is(err, context.DeadlineExceeded) || e.Version != 1 {
			t.Fatalf("Wait = %d, %v; want version 1 and DeadlineExceeded", e.Version, err)
		}
		if d := time.Since(start); d != 60*time.Second {
			t.Fatalf("Wait returned after %v, want 60s", d)
		}
	})
}

func TestWaitForFirstLoad(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &fakeStore{}
		c := mustCache(t, s, t0)
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		go func() {
			time.Sleep(time.Second)
			s.set(5, "-1:89")
			_ = c.Refresh(ctx, "default")
		}()
		e, err := c.Wait(ctx, "default", 0)
		if err != nil || e.Version != 5 {
			t.Fatalf("Wait = %d, %v; want 5", e.Version, err)
		}
	})
}

func TestRunRefreshesOnInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &fakeStore{}
		s.set(1, "-1:89")
		c, err := ringcache.New(ringcache.Config{Store: s, Rings: []string{"a", "b"}, Parse: fakeParse,
			Now: func() time.Time { return t0 }})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- c.Run(ctx) }()
		synctest.Wait()
		if e, err := c.Get("b"); err != nil || e.Version != 1 {
			t.Fatalf("after start: %d, %v", e.Version, err)
		}
		s.set(2, "-1:89")
		time.Sleep(time.Second)
		synctest.Wait()
		if e, _ := c.Get("a"); e.Version != 2 {
			t.Fatalf("after one interval: version %d, want 2", e.Version)
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Run = %v", err)
		}
	})
}

func TestNewValidates(t *testing.T) {
	if _, err := ringcache.New(ringcache.Config{Store: &fakeStore{}, Parse: fakeParse, Rings: []string{"Bad Name"}}); err == nil ||
		!strings.Contains(err.Error(), "Bad Name") {
		t.Fatalf("New with bad ring name: %v", err)
	}
	if _, err := ringcache.New(ringcache.Config{Rings: []string{"a"}}); err == nil {
		t.Fatal("New without store: no error")
	}
}
