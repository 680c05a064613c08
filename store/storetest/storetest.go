// Package storetest is the conformance suite every key-ring store passes, in the spirit of
// testing/fstest.TestFS: a backend's test calls [Run] with a [Harness] that opens stores on
// fresh, isolated namespaces, and the suite checks every rule of the store contract (package
// store): listing, create-only idempotent appends, versions, names, the lease lock with fencing,
// metadata compare-and-swap, ring listing, a 200-key ring, and races between 50 goroutines and
// between 3 operating-system processes.
//
// # Using it
//
//	func TestMain(m *testing.M) {
//		storetest.MaybeRunChild(openSpec) // child processes of the multi-process race
//		os.Exit(m.Run())
//	}
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, storetest.Harness{
//			NewSpec: func(t *testing.T) string { return t.TempDir() },
//			Open:    openSpec,
//		})
//	}
//
// A spec is any string the backend's test understands (a directory, a JSON document with an
// address and a random key prefix...). It is passed to child processes in the environment, so
// it must not hold secrets the children cannot find themselves: children inherit the parent's
// environment.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dpkeyring/dpkeyring/keyring"
	"github.com/dpkeyring/dpkeyring/store"
)

// Store is the store contract the suite checks: the method set every backend's *Store has.
type Store = store.Store

// Harness tells [Run] how to reach a backend.
type Harness struct {
	// NewSpec returns a spec naming a fresh, empty namespace that no other test uses (a new
	// temporary directory, a random key prefix...). Required. The backend's test cleans the
	// namespace up (t.Cleanup) if it wants to.
	NewSpec func(t *testing.T) string
	// Open opens a store on the namespace spec names. Required; the same function the
	// backend's TestMain passes to [MaybeRunChild]. The suite closes every store it opens.
	Open func(ctx context.Context, spec string) (Store, error)
	// LeaseTTL is the short lease the expiry tests take and wait out. Zero means 200ms. A
	// backend whose expiry is coarse (a server clock in seconds) sets more.
	LeaseTTL time.Duration
	// WriteForeign, if set, writes one element into a ring the way ASP.NET Core itself
	// would, bypassing the store (a key file dropped in the folder, an RPUSH to the Redis
	// list). name is the friendly name ASP.NET Core would pass (the file name), xml the
	// element in compact form. If nil the foreign-writer tests are skipped.
	WriteForeign func(t *testing.T, spec, ring, name string, xml []byte)
	// Processes is the number of OS processes in the multi-process race. Zero means 3; a
	// negative number skips that test (say why in the backend's test).
	Processes int
}

func (h Harness) leaseTTL() time.Duration {
	if h.LeaseTTL > 0 {
		return h.LeaseTTL
	}
	return 200 * time.Millisecond
}

// Run runs the conformance suite against the backend h describes.
func Run(t *testing.T, h Harness) {
	if h.NewSpec == nil || h.Open == nil {
		t.Fatal("storetest: Harness.NewSpec and Harness.Open are required")
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, h Harness)
	}{
		{"ListMissingRing", testListMissingRing},
		{"AppendList", testAppendList},
		{"AppendCompactsFileForm", testAppendCompactsFileForm},
		{"AppendIdempotent", testAppendIdempotent},
		{"AppendExists", testAppendExists},
		{"AppendInvalidXML", testAppendInvalidXML},
		{"Versions", testVersions},
		{"InvalidNames", testInvalidNames},
		{"RingsIsolated", testRingsIsolated},
		{"Lock", testLock},
		{"LockExpiry", testLockExpiry},
		{"FencedWrites", testFencedWrites},
		{"Meta", testMeta},
		{"Rings", testRings},
		{"Ring200", testRing200},
		{"Foreign", testForeign},
		{"ConcurrentAppend", testConcurrentAppend},
		{"ConcurrentConflict", testConcurrentConflict},
		{"ConcurrentLock", testConcurrentLock},
		{"Processes", testProcesses},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, h) })
	}
}

// open opens a store on a fresh namespace and closes it when the test ends.
func open(t *testing.T, h Harness) (Store, string) {
	t.Helper()
	spec := h.NewSpec(t)
	return openSpec(t, h, spec), spec
}

func openSpec(t *testing.T, h Harness, spec string) Store {
	t.Helper()
	s, err := h.Open(t.Context(), spec)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func mustAppend(t *testing.T, s Store, ring string, e store.Element, fence store.Fence) uint64 {
	t.Helper()
	v, err := s.Append(t.Context(), ring, e, fence)
	if err != nil {
		t.Fatalf("Append(%s, %s, fence %d): %v", ring, e.Name, fence, err)
	}
	return v
}

func mustList(t *testing.T, s Store, ring string) store.Snapshot {
	t.Helper()
	snap, err := s.List(t.Context(), ring)
	if err != nil {
		t.Fatalf("List(%s): %v", ring, err)
	}
	return snap
}

func mustLock(t *testing.T, s Store, ring, owner string, ttl time.Duration) store.Lease {
	t.Helper()
	l, err := s.Lock(t.Context(), ring, owner, ttl)
	if err != nil {
		t.Fatalf("Lock(%s, %s): %v", ring, owner, err)
	}
	return l
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: error %v, want one wrapping %v", what, err, target)
	}
}

// sortedByName returns elements sorted by name.
func sortedByName(es []store.Element) []store.Element {
	es = slices.Clone(es)
	slices.SortFunc(es, func(a, b store.Element) int { return strings.Compare(a.Name, b.Name) })
	return es
}

// bytesEqual makes go-cmp compare byte slices as wholes, which keeps diffs of 200 elements fast.
var bytesEqual = cmp.Comparer(bytes.Equal)

// checkElements checks that got holds exactly want, either in want's (append) order or sorted
// by name, byte for byte.
func checkElements(t *testing.T, got, want []store.Element) {
	t.Helper()
	if slices.IsSortedFunc(got, func(a, b store.Element) int { return strings.Compare(a.Name, b.Name) }) {
		want = sortedByName(want)
	}
	if diff := cmp.Diff(want, got, bytesEqual); diff != "" {
		t.Errorf("listed elements differ or are neither in append order nor sorted by name (-want +got):\n%s", diff)
	}
}

func testListMissingRing(t *testing.T, h Harness) {
	s, _ := open(t, h)
	_, err := s.List(t.Context(), "missing")
	wantErr(t, "List of a ring never written", err, store.ErrNotFound)
	_, err = s.Meta(t.Context(), "missing")
	wantErr(t, "Meta of a ring never written", err, store.ErrNotFound)
}

func testAppendList(t *testing.T, h Harness) {
	s, _ := open(t, h)
	k1, k2 := RandomKeyElement(t), RandomKeyElement(t)
	id, err := keyring.NewKeyID()
	if err != nil {
		t.Fatal(err)
	}
	k3, r3 := KeyElement(t, id), RevocationElement(t, id)
	want := []store.Element{k1, k2, k3, r3}
	var last uint64
	for _, e := range want {
		v := mustAppend(t, s, "r", e, 0)
		if v <= last {
			t.Errorf("Append(%s) = version %d, want > %d", e.Name, v, last)
		}
		last = v
	}
	snap := mustList(t, s, "r")
	checkElements(t, snap.Elements, want)
	if snap.Version != last {
		t.Errorf("List version = %d, want %d (the version of the last Append)", snap.Version, last)
	}
	for _, e := range snap.Elements {
		name, err := keyring.ElementName(e.XML)
		if err != nil || name != e.Name {
			t.Errorf("listed element %s: ElementName = %q, %v", e.Name, name, err)
		}
	}
	// A second store on the same namespace sees the same ring.
	again := mustList(t, s, "r")
	if !cmp.Equal(snap, again, bytesEqual) {
		t.Errorf("second List differs:\n%s", cmp.Diff(snap, again, bytesEqual))
	}
}

func testAppendCompactsFileForm(t *testing.T, h Harness) {
	s, _ := open(t, h)
	e := RandomKeyElement(t)
	file, err := keyring.FileXML(e.XML)
	if err != nil {
		t.Fatal(err)
	}
	v := mustAppend(t, s, "r", store.Element{Name: e.Name, XML: file}, 0)
	checkElements(t, mustList(t, s, "r").Elements, []store.Element{e})
	// The compact form of the same element is the same element: a no-op.
	if v2 := mustAppend(t, s, "r", e, 0); v2 != v {
		t.Errorf("re-Append of the compact form = version %d, want %d (no-op)", v2, v)
	}
}

func testAppendIdempotent(t *testing.T, h Harness) {
	s, _ := open(t, h)
	e := RandomKeyElement(t)
	v1 := mustAppend(t, s, "r", e, 0)
	for i := range 3 {
		if v := mustAppend(t, s, "r", e, 0); v != v1 {
			t.Errorf("re-Append #%d = version %d, want %d", i+1, v, v1)
		}
	}
	snap := mustList(t, s, "r")
	checkElements(t, snap.Elements, []store.Element{e})
	if snap.Version != v1 {
		t.Errorf("List version after no-op appends = %d, want %d", snap.Version, v1)
	}
}

func testAppendExists(t *testing.T, h Harness) {
	s, _ := open(t, h)
	id, err := keyring.NewKeyID()
	if err != nil {
		t.Fatal(err)
	}
	e := KeyElement(t, id)
	v1 := mustAppend(t, s, "r", e, 0)
	other := store.Element{Name: e.Name, XML: []byte(strings.Replace(string(e.XML), "AES_256_CBC", "AES_128_CBC", 1))}
	_, err = s.Append(t.Context(), "r", other, 0)
	wantErr(t, "Append of the same name with different bytes", err, store.ErrExists)
	snap := mustList(t, s, "r")
	checkElements(t, snap.Elements, []store.Element{e})
	if snap.Version != v1 {
		t.Errorf("version after a refused Append = %d, want %d", snap.Version, v1)
	}
}

func testAppendInvalidXML(t *testing.T, h Harness) {
	s, _ := open(t, h)
	mustAppend(t, s, "r", RandomKeyElement(t), 0)
	before := mustList(t, s, "r")
	for _, raw := range []string{"", "not xml", "<key id=", "<a/><b/>", "<key></wrong>"} {
		_, err := s.Append(t.Context(), "r", store.Element{Name: "key-bad", XML: []byte(raw)}, 0)
		if err == nil {
			t.Errorf("Append of %q: no error", raw)
		}
	}
	after := mustList(t, s, "r")
	if !cmp.Equal(before, after, bytesEqual) {
		t.Errorf("refused appends changed the ring:\n%s", cmp.Diff(before, after, bytesEqual))
	}
}

func testVersions(t *testing.T, h Harness) {
	s, _ := open(t, h)
	seen := map[uint64]bool{}
	var last uint64
	for i := range 5 {
		e := RandomKeyElement(t)
		v := mustAppend(t, s, "r", e, 0)
		if v <= last || seen[v] {
			t.Fatalf("Append #%d = version %d after %d", i, v, last)
		}
		seen[v], last = true, v
		if got := mustList(t, s, "r").Version; got != v {
			t.Fatalf("List version = %d, want %d", got, v)
		}
		if v2 := mustAppend(t, s, "r", e, 0); v2 != v {
			t.Fatalf("no-op Append = version %d, want %d", v2, v)
		}
	}
	// Versions belong to their ring: writing another ring does not move this one.
	mustAppend(t, s, "other", RandomKeyElement(t), 0)
	if got := mustList(t, s, "r").Version; got != last {
		t.Errorf("version of r after writing ring other = %d, want %d", got, last)
	}
}

func testInvalidNames(t *testing.T, h Harness) {
	s, _ := open(t, h)
	ctx := t.Context()
	e := RandomKeyElement(t)
	for _, ring := range []string{"", "UPPER", "../up", "a/b", ".hidden", "-dash", "sp ace", strings.Repeat("a", 64)} {
		_, err := s.List(ctx, ring)
		wantErr(t, fmt.Sprintf("List(%q)", ring), err, store.ErrInvalidName)
		_, err = s.Append(ctx, ring, e, 0)
		wantErr(t, fmt.Sprintf("Append(%q)", ring), err, store.ErrInvalidName)
		_, err = s.Lock(ctx, ring, "owner", time.Minute)
		wantErr(t, fmt.Sprintf("Lock(%q)", ring), err, store.ErrInvalidName)
		_, err = s.Meta(ctx, ring)
		wantErr(t, fmt.Sprintf("Meta(%q)", ring), err, store.ErrInvalidName)
		_, err = s.PutMeta(ctx, ring, []byte("{}"), 0, 0)
		wantErr(t, fmt.Sprintf("PutMeta(%q)", ring), err, store.ErrInvalidName)
	}
	for _, name := range []string{"", "../key", "key x", "key/x", "key.xml", strings.Repeat("k", 201)} {
		_, err := s.Append(ctx, "r", store.Element{Name: name, XML: e.XML}, 0)
		wantErr(t, fmt.Sprintf("Append of element %q", name), err, store.ErrInvalidName)
	}
	if rings, err := s.Rings(ctx); err != nil || len(rings) != 0 {
		t.Errorf("Rings after invalid writes = %q, %v; want none", rings, err)
	}
}

func testRingsIsolated(t *testing.T, h Harness) {
	s, _ := open(t, h)
	a, b := RandomKeyElement(t), RandomKeyElement(t)
	mustAppend(t, s, "one", a, 0)
	mustAppend(t, s, "two", b, 0)
	checkElements(t, mustList(t, s, "one").Elements, []store.Element{a})
	checkElements(t, mustList(t, s, "two").Elements, []store.Element{b})
	// Locks are per ring too.
	mustLock(t, s, "one", "alice", time.Minute)
	mustLock(t, s, "two", "bob", time.Minute)
}

func testLock(t *testing.T, h Harness) {
	s, _ := open(t, h)
	ctx := t.Context()
	const ttl = time.Minute
	start := time.Now()
	a := mustLock(t, s, "r", "alice", ttl)
	if a.Ring != "r" || a.Owner != "alice" || a.Token == 0 {
		t.Errorf("Lock = %+v, want ring r, owner alice, a non-zero token", a)
	}
	if a.Expires.Before(start.Add(ttl-5*time.Second)) || a.Expires.After(time.Now().Add(ttl+5*time.Second)) {
		t.Errorf("Lock expires %v, want about now + %v", a.Expires, ttl)
	}

	// Renewal by the same owner keeps the token and pushes the expiry.
	a2 := mustLock(t, s, "r", "alice", 2*ttl)
	if a2.Token != a.Token {
		t.Errorf("renewal token = %d, want %d", a2.Token, a.Token)
	}
	if !a2.Expires.After(a.Expires) {
		t.Errorf("renewal expires %v, want after %v", a2.Expires, a.Expires)
	}

	_, err := s.Lock(ctx, "r", "bob", ttl)
	wantErr(t, "Lock by another owner", err, store.ErrLocked)
	if err != nil && !strings.Contains(err.Error(), "alice") {
		t.Errorf("ErrLocked message %q does not name the holder", err)
	}
	for _, bad := range []time.Duration{0, -time.Second} {
		if _, err := s.Lock(ctx, "r2", "bob", bad); err == nil {
			t.Errorf("Lock with ttl %v: no error", bad)
		}
	}

	stale := a
	stale.Token++
	wantErr(t, "Unlock with a token never granted", s.Unlock(ctx, stale), store.ErrFenced)

	if err := s.Unlock(ctx, a2); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	b := mustLock(t, s, "r", "bob", ttl)
	if b.Token <= a.Token {
		t.Errorf("token after unlock = %d, want > %d", b.Token, a.Token)
	}
	wantErr(t, "Unlock of a lease that was replaced", s.Unlock(ctx, a), store.ErrFenced)
	// Bob still holds it.
	_, err = s.Lock(ctx, "r", "alice", ttl)
	wantErr(t, "Lock after a refused stale Unlock", err, store.ErrLocked)
}

func testLockExpiry(t *testing.T, h Harness) {
	s, _ := open(t, h)
	ctx := t.Context()
	ttl := h.leaseTTL()
	a := mustLock(t, s, "r", "alice", ttl)
	_, err := s.Lock(ctx, "r", "bob", ttl)
	// Only a call that returned before the lease expired must have been refused (a slow,
	// loaded machine may take longer than the short TTL).
	if time.Now().Before(a.Expires) {
		wantErr(t, "Lock before expiry", err, store.ErrLocked)
	}

	time.Sleep(time.Until(a.Expires) + ttl/2 + 20*time.Millisecond)
	b := mustLock(t, s, "r", "bob", time.Minute)
	if b.Token <= a.Token {
		t.Errorf("takeover token = %d, want > %d", b.Token, a.Token)
	}
	wantErr(t, "Unlock of an expired, taken-over lease", s.Unlock(ctx, a), store.ErrFenced)
	_, err = s.Lock(ctx, "r", "alice", ttl)
	wantErr(t, "renewal of an expired, taken-over lease", err, store.ErrLocked)

	// An expired lease that nobody took over is also replaced, with a new token.
	if err := s.Unlock(ctx, b); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	c := mustLock(t, s, "r", "carol", ttl)
	time.Sleep(time.Until(c.Expires) + ttl/2 + 20*time.Millisecond)
	c2 := mustLock(t, s, "r", "carol", ttl)
	if c2.Token <= c.Token {
		t.Errorf("Lock after own lease expired: token %d, want > %d", c2.Token, c.Token)
	}
}

func testFencedWrites(t *testing.T, h Harness) {
	s, _ := open(t, h)
	ctx := t.Context()
	ttl := h.leaseTTL()

	_, err := s.Append(ctx, "r", RandomKeyElement(t), 7)
	wantErr(t, "fenced Append on a ring never locked", err, store.ErrFenced)

	a := mustLock(t, s, "r", "alice", ttl)
	mustAppend(t, s, "r", RandomKeyElement(t), a.Token)
	_, err = s.Append(ctx, "r", RandomKeyElement(t), a.Token+1)
	wantErr(t, "Append with a future fence", err, store.ErrFenced)
	mv, err := s.PutMeta(ctx, "r", []byte("m1"), 0, a.Token)
	if err != nil {
		t.Fatalf("PutMeta with the current fence: %v", err)
	}

	time.Sleep(time.Until(a.Expires) + ttl/2 + 20*time.Millisecond)
	b := mustLock(t, s, "r", "bob", time.Minute)

	before := mustList(t, s, "r")
	late := RandomKeyElement(t)
	_, err = s.Append(ctx, "r", late, a.Token)
	wantErr(t, "Append with a stale fence", err, store.ErrFenced)
	_, err = s.PutMeta(ctx, "r", []byte("m2"), mv, a.Token)
	wantErr(t, "PutMeta with a stale fence", err, store.ErrFenced)
	if after := mustList(t, s, "r"); !cmp.Equal(before, after, bytesEqual) {
		t.Errorf("fenced-out Append changed the ring:\n%s", cmp.Diff(before, after, bytesEqual))
	}
	if m, err := s.Meta(ctx, "r"); err != nil || string(m.Data) != "m1" || m.Version != mv {
		t.Errorf("Meta after a fenced-out PutMeta = %q v%d, %v; want m1 v%d", m.Data, m.Version, err, mv)
	}

	mustAppend(t, s, "r", late, b.Token)
	if _, err := s.PutMeta(ctx, "r", []byte("m2"), mv, b.Token); err != nil {
		t.Errorf("PutMeta with the current fence: %v", err)
	}
	// The zero fence writes whoever holds the lock.
	mustAppend(t, s, "r", RandomKeyElement(t), 0)
	if len(mustList(t, s, "r").Elements) != 3 {
		t.Errorf("want 3 elements after the fenced and unfenced appends")
	}
}

func testMeta(t *testing.T, h Harness) {
	s, _ := open(t, h)
	ctx := t.Context()
	_, err := s.Meta(ctx, "r")
	wantErr(t, "Meta before PutMeta", err, store.ErrNotFound)
	_, err = s.PutMeta(ctx, "r", []byte("x"), 5, 0)
	wantErr(t, "PutMeta expecting a version of a missing record", err, store.ErrConflict)

	data1 := []byte(`{"lastRotation":"2026-01-01T00:00:00Z"}`)
	v1, err := s.PutMeta(ctx, "r", data1, 0, 0)
	if err != nil || v1 == 0 {
		t.Fatalf("PutMeta create = %d, %v; want a non-zero version", v1, err)
	}
	if m, err := s.Meta(ctx, "r"); err != nil || !cmp.Equal(m, store.Meta{Data: data1, Version: v1}, bytesEqual) {
		t.Errorf("Meta = %+v, %v; want %q v%d", m, err, data1, v1)
	}
	_, err = s.PutMeta(ctx, "r", []byte("again"), 0, 0)
	wantErr(t, "PutMeta create when a record exists", err, store.ErrConflict)
	_, err = s.PutMeta(ctx, "r", []byte("wrong"), v1+1, 0)
	wantErr(t, "PutMeta with a wrong version", err, store.ErrConflict)

	data2 := []byte{0, 1, 2, 0xff, '\n'}
	v2, err := s.PutMeta(ctx, "r", data2, v1, 0)
	if err != nil || v2 <= v1 {
		t.Fatalf("PutMeta update = %d, %v; want a version > %d", v2, err, v1)
	}
	_, err = s.PutMeta(ctx, "r", []byte("stale"), v1, 0)
	wantErr(t, "PutMeta with the previous version", err, store.ErrConflict)
	if m, err := s.Meta(ctx, "r"); err != nil || !cmp.Equal(m, store.Meta{Data: data2, Version: v2}, bytesEqual) {
		t.Errorf("Meta = %+v, %v; want %q v%d", m, err, data2, v2)
	}
	// Metadata belongs to its ring.
	_, err = s.Meta(ctx, "other")
	wantErr(t, "Meta of another ring", err, store.ErrNotFound)
}

func testRings(t *testing.T, h Harness) {
	s, _ := open(t, h)
	ctx := t.Context()
	if rings, err := s.Rings(ctx); err != nil || len(rings) != 0 {
		t.Fatalf("Rings of a fresh namespace = %q, %v; want none", rings, err)
	}
	for _, r := range []string{"zeta", "alpha", "m.x_y-1", "0"} {
		mustAppend(t, s, r, RandomKeyElement(t), 0)
	}
	rings, err := s.Rings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"0", "alpha", "m.x_y-1", "zeta"}, rings, bytesEqual); diff != "" {
		t.Errorf("Rings (-want +got):\n%s", diff)
	}
}

func testRing200(t *testing.T, h Harness) {
	s, spec := open(t, h)
	want := make([]store.Element, 0, 200)
	for range 190 {
		want = append(want, RandomKeyElement(t))
	}
	for i := range 10 {
		id, err := keyring.ParseKeyID(strings.TrimPrefix(want[i*7].Name, "key-"))
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, RevocationElement(t, id))
	}
	for _, e := range want {
		mustAppend(t, s, "big", e, 0)
	}
	snap := mustList(t, s, "big")
	checkElements(t, snap.Elements, want)
	// A store opened afresh on the same namespace reads the same.
	s2 := openSpec(t, h, spec)
	snap2, err := s2.List(t.Context(), "big")
	if err != nil {
		t.Fatal(err)
	}
	if !cmp.Equal(snap, snap2, bytesEqual) {
		t.Errorf("List through a second store differs:\n%s", cmp.Diff(snap, snap2, bytesEqual))
	}
}

func testForeign(t *testing.T, h Harness) {
	if h.WriteForeign == nil {
		t.Skip("backend has no foreign writer (Harness.WriteForeign)")
	}
	s, spec := open(t, h)
	ours := RandomKeyElement(t)
	v1 := mustAppend(t, s, "r", ours, 0)

	theirs := RandomKeyElement(t)
	h.WriteForeign(t, spec, "r", theirs.Name, theirs.XML)
	snap := mustList(t, s, "r")
	checkElements(t, snap.Elements, []store.Element{ours, theirs})
	if snap.Version <= v1 {
		t.Errorf("version after a foreign write = %d, want > %d", snap.Version, v1)
	}
	// Appending what the foreign writer wrote is a no-op; different bytes are refused.
	if v := mustAppend(t, s, "r", theirs, 0); v != snap.Version {
		t.Errorf("Append of the foreign element = version %d, want %d (no-op)", v, snap.Version)
	}

	// An element whose name cannot be determined is still listed, with a stable valid name.
	odd, err := keyring.CompactXML([]byte(`<somethingElse a="1"><b>text</b></somethingElse>`))
	if err != nil {
		t.Fatal(err)
	}
	h.WriteForeign(t, spec, "r", "6f0c3a55-2a5d-4ea4-9c4a-1e8a2d9b7a10", odd)
	snap2 := mustList(t, s, "r")
	if snap2.Version <= snap.Version {
		t.Errorf("version after a second foreign write = %d, want > %d", snap2.Version, snap.Version)
	}
	var found *store.Element
	for i, e := range snap2.Elements {
		if string(e.XML) == string(odd) {
			found = &snap2.Elements[i]
		}
	}
	if found == nil || len(snap2.Elements) != 3 {
		t.Fatalf("unknown foreign element not listed: %d elements", len(snap2.Elements))
	}
	if err := store.ValidElementName(found.Name); err != nil {
		t.Errorf("unknown element named %q: %v", found.Name, err)
	}
	if again := mustList(t, s, "r"); !cmp.Equal(snap2, again, bytesEqual) {
		t.Errorf("listing is not deterministic:\n%s", cmp.Diff(snap2, again, bytesEqual))
	}
}

func testConcurrentAppend(t *testing.T, h Harness) {
	s, _ := open(t, h)
	const workers, own, shared = 50, 3, 5
	sharedEls := make([]store.Element, shared)
	for i := range sharedEls {
		sharedEls[i] = RandomKeyElement(t)
	}
	ownEls := make([][]store.Element, workers)
	for w := range ownEls {
		for range own {
			ownEls[w] = append(ownEls[w], RandomKeyElement(t))
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers*(own+shared))
	for w := range workers {
		wg.Go(func() {
			// Interleave own and shared elements, each worker starting at a different shared one.
			var order []store.Element
			for i := range max(own, shared) {
				if i < own {
					order = append(order, ownEls[w][i])
				}
				if i < shared {
					order = append(order, sharedEls[(w+i)%shared])
				}
			}
			for _, e := range order {
				if _, err := s.Append(t.Context(), "r", e, 0); err != nil {
					errs <- fmt.Errorf("worker %d Append %s: %w", w, e.Name, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	want := slices.Clone(sharedEls)
	for _, es := range ownEls {
		want = append(want, es...)
	}
	snap := mustList(t, s, "r")
	if diff := cmp.Diff(sortedByName(want), sortedByName(snap.Elements), bytesEqual); diff != "" {
		t.Errorf("elements after the race (-want +got):\n%s", diff)
	}
}

func testConcurrentConflict(t *testing.T, h Harness) {
	s, _ := open(t, h)
	const workers = 50
	id, err := keyring.NewKeyID()
	if err != nil {
		t.Fatal(err)
	}
	base := KeyElement(t, id)
	variants := make([]store.Element, workers)
	for w := range variants {
		// Each variant differs in the expiration date; same id, so same name.
		xml := strings.Replace(string(base.XML), keyring.FormatXMLDate(testEpoch.AddDate(0, 0, 90)),
			keyring.FormatXMLDate(testEpoch.AddDate(0, 0, 90+w)), 1)
		variants[w] = store.Element{Name: base.Name, XML: []byte(xml)}
	}
	var wg sync.WaitGroup
	var won atomic.Int32
	var winner atomic.Int32
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			_, err := s.Append(t.Context(), "r", variants[w], 0)
			switch {
			case err == nil:
				won.Add(1)
				winner.Store(int32(w))
			case !errors.Is(err, store.ErrExists):
				errs <- fmt.Errorf("worker %d: %w", w, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("racing Append of one name with different bytes: %v (want nil or ErrExists)", err)
	}
	if won.Load() != 1 {
		t.Fatalf("%d appends of one name with different bytes succeeded, want exactly 1", won.Load())
	}
	checkElements(t, mustList(t, s, "r").Elements, []store.Element{variants[winner.Load()]})
}

// holdRecord is one lock tenure, recorded by its holder.
type holdRecord struct {
	Owner string `json:"owner"`
	Token uint64 `json:"token"`
	Start int64  `json:"start"` // Unix nanoseconds, after Lock returned
	End   int64  `json:"end"`   // Unix nanoseconds, before Unlock was called
}

// checkHolds checks that no two tenures overlap, that tokens are distinct, and that token order
// is tenure order.
func checkHolds(t *testing.T, holds []holdRecord) {
	t.Helper()
	holds = slices.Clone(holds)
	slices.SortFunc(holds, func(a, b holdRecord) int {
		switch {
		case a.Token < b.Token:
			return -1
		case a.Token > b.Token:
			return 1
		}
		return 0
	})
	for i := 1; i < len(holds); i++ {
		p, c := holds[i-1], holds[i]
		if c.Token == p.Token {
			t.Errorf("token %d granted twice (%s and %s)", c.Token, p.Owner, c.Owner)
		}
		if c.Start < p.End {
			t.Errorf("tenures overlap: %s held token %d until %d, %s got token %d at %d",
				p.Owner, p.Token, p.End, c.Owner, c.Token, c.Start)
		}
	}
}

// holdOnce takes the lock on ring for owner, retrying while another owner holds it, holds it
// for hold, and releases it. inside, if not nil, runs while holding.
func holdOnce(ctx context.Context, s Store, ring, owner string, hold time.Duration, inside func(store.Lease) error) (holdRecord, error) {
	for {
		l, err := s.Lock(ctx, ring, owner, 30*time.Second)
		if errors.Is(err, store.ErrLocked) {
			select {
			case <-ctx.Done():
				return holdRecord{}, fmt.Errorf("waiting for the lock: %w", ctx.Err())
			case <-time.After(time.Millisecond):
			}
			continue
		}
		if err != nil {
			return holdRecord{}, fmt.Errorf("locking: %w", err)
		}
		rec := holdRecord{Owner: owner, Token: uint64(l.Token), Start: time.Now().UnixNano()}
		if inside != nil {
			if err := inside(l); err != nil {
				return rec, err
			}
		}
		time.Sleep(hold)
		rec.End = time.Now().UnixNano()
		if err := s.Unlock(ctx, l); err != nil {
			return rec, fmt.Errorf("unlocking: %w", err)
		}
		return rec, nil
	}
}

func testConcurrentLock(t *testing.T, h Harness) {
	s, _ := open(t, h)
	const workers = 50
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var holders, maxHolders atomic.Int32
	var mu sync.Mutex
	var holds []holdRecord
	fenced := make([]store.Element, workers)
	for w := range fenced {
		fenced[w] = RandomKeyElement(t)
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			owner := fmt.Sprintf("worker-%d", w)
			rec, err := holdOnce(ctx, s, "r", owner, 500*time.Microsecond, func(l store.Lease) error {
				n := holders.Add(1)
				defer holders.Add(-1)
				for {
					m := maxHolders.Load()
					if n <= m || maxHolders.CompareAndSwap(m, n) {
						break
					}
				}
				if _, err := s.Append(ctx, "r", fenced[w], l.Token); err != nil {
					return fmt.Errorf("fenced Append while holding token %d: %w", l.Token, err)
				}
				return nil
			})
			if err != nil {
				errs <- fmt.Errorf("%s: %w", owner, err)
				return
			}
			mu.Lock()
			holds = append(holds, rec)
			mu.Unlock()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if m := maxHolders.Load(); m != 1 {
		t.Errorf("at most %d holders at once, want exactly 1", m)
	}
	if len(holds) != workers {
		t.Errorf("%d tenures recorded, want %d", len(holds), workers)
	}
	checkHolds(t, holds)
	snap := mustList(t, s, "r")
	if diff := cmp.Diff(sortedByName(fenced), sortedByName(snap.Elements), bytesEqual); diff != "" {
		t.Errorf("elements appended under the lock (-want +got):\n%s", diff)
	}
}
