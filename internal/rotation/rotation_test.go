package rotation_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dpkeyring/dpkeyring/internal/rotation"
	"github.com/dpkeyring/dpkeyring/keyring"
	"github.com/dpkeyring/dpkeyring/store"
)

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func newRotator(s rotation.Store, now *time.Time) *rotation.Rotator {
	return &rotation.Rotator{
		Store: s, Ring: "default", Policy: keyring.DefaultPolicy(), Owner: "test",
		Now: func() time.Time { return *now },
	}
}

func mustRing(t *testing.T, s rotation.Store) *keyring.Ring {
	t.Helper()
	snap, err := s.List(t.Context(), "default")
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	var elems [][]byte
	for _, e := range snap.Elements {
		elems = append(elems, e.XML)
	}
	r, err := keyring.ParseElements(elems, keyring.ParseOptions{})
	if err != nil {
		t.Fatalf("ParseElements: %v", err)
	}
	return r
}

func TestRotateEmptyRingCreatesActiveKey(t *testing.T) {
	s := newMemStore()
	now := t0
	res, err := newRotator(s, &now).Rotate(t.Context(), rotation.Request{})
	if err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	if !res.Created || res.Key == nil {
		t.Fatalf("Rotate on an empty ring created nothing: %+v", res.Decision)
	}
	ring := mustRing(t, s)
	def, err := ring.DefaultKey(now)
	if err != nil {
		t.Fatalf("DefaultKey: %v", err)
	}
	if def.ID != res.Key.ID {
		t.Errorf("default key = %s, want the new key %s", def.ID, res.Key.ID)
	}
	if got := ring.Status(def, now); got != keyring.StatusActive {
		t.Errorf("new key status = %v, want active", got)
	}
	meta, _, err := rotation.ReadMeta(t.Context(), s, "default")
	if err != nil {
		t.Fatalf("ReadMeta: %v", err)
	}
	if diff := cmp.Diff(rotation.Meta{LastRotation: now, NextRotation: res.NextDue, LastKeyID: res.Key.ID}, meta); diff != "" {
		t.Errorf("meta (-want +got):\n%s", diff)
	}
}

func TestRotateIsIdempotentWhenNotDue(t *testing.T) {
	s := newMemStore()
	now := t0
	r := newRotator(s, &now)
	if _, err := r.Rotate(t.Context(), rotation.Request{}); err != nil {
		t.Fatal(err)
	}
	now = now.Add(24 * time.Hour)
	res, err := r.Rotate(t.Context(), rotation.Request{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Created {
		t.Fatalf("second Rotate created a key although none was due")
	}
	if !res.NextDue.After(now) {
		t.Errorf("NextDue = %v, want after %v", res.NextDue, now)
	}
	if got := mustRing(t, s).Len(); got != 1 {
		t.Errorf("ring has %d keys, want 1", got)
	}
	// At the time the policy named, a successor is due and activates when the current key expires.
	now = res.NextDue
	res2, err := r.Rotate(t.Context(), rotation.Request{})
	if err != nil {
		t.Fatal(err)
	}
	if !res2.Created {
		t.Fatalf("Rotate at NextDue created nothing: %s", res2.Decision.Reason)
	}
	if !res2.Key.Activation.After(now) {
		t.Errorf("successor activates at %v, want after now %v (published ahead)", res2.Key.Activation, now)
	}
}

func TestRotateImmediateRevokesPrevious(t *testing.T) {
	s := newMemStore()
	now := t0
	r := newRotator(s, &now)
	first, err := r.Rotate(t.Context(), rotation.Request{})
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Hour)
	res, err := r.Rotate(t.Context(), rotation.Request{Immediate: true, RevokePrevious: true, Reason: "leaked"})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Created {
		t.Fatal("immediate rotation created nothing")
	}
	if diff := cmp.Diff([]keyring.KeyID{first.Key.ID}, res.Revoked); diff != "" {
		t.Errorf("revoked (-want +got):\n%s", diff)
	}
	ring := mustRing(t, s)
	old, _ := ring.Key(first.Key.ID)
	if got := ring.Status(old, now); got != keyring.StatusRevoked {
		t.Errorf("previous key status = %v, want revoked", got)
	}
	def, err := ring.DefaultKey(now)
	if err != nil || def.ID != res.Key.ID {
		t.Errorf("default key = %v, %v; want the emergency key %s", def.ID, err, res.Key.ID)
	}
}

func TestRevoke(t *testing.T) {
	s := newMemStore()
	now := t0
	r := newRotator(s, &now)
	first, err := r.Rotate(t.Context(), rotation.Request{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Revoke(t.Context(), keyring.Revocation{Date: now, KeyID: first.Key.ID, Reason: "test"}); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	ring := mustRing(t, s)
	if !ring.IsRevoked(*first.Key) {
		t.Error("key not revoked")
	}
	var nf *keyring.KeyNotFoundError
	if _, err := r.Revoke(t.Context(), keyring.Revocation{Date: now, KeyID: keyring.KeyID{1}}); !errors.As(err, &nf) {
		t.Errorf("Revoke of an unknown key: err = %v, want *KeyNotFoundError", err)
	}
	if _, err := r.Revoke(t.Context(), keyring.Revocation{Date: now.Add(time.Second), All: true, Reason: "all"}); err != nil {
		t.Fatalf("Revoke all: %v", err)
	}
}

func TestRotateBusyLock(t *testing.T) {
	s := newMemStore()
	if _, err := s.Lock(t.Context(), "default", "someone-else", time.Hour); err != nil {
		t.Fatal(err)
	}
	now := t0
	r := newRotator(s, &now)
	r.LockWait = 50 * time.Millisecond
	if _, err := r.Rotate(t.Context(), rotation.Request{}); !errors.Is(err, rotation.ErrBusy) || !errors.Is(err, store.ErrLocked) {
		t.Errorf("Rotate with a busy lock: err = %v, want ErrBusy wrapping store.ErrLocked", err)
	}
}

func TestRotateStoreErrorsPropagate(t *testing.T) {
	s := newMemStore()
	s.failList = store.ErrUnavailable
	now := t0
	if _, err := newRotator(s, &now).Rotate(t.Context(), rotation.Request{}); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("err = %v, want store.ErrUnavailable", err)
	}
}

func TestConcurrentRotateCreatesExactlyOneKey(t *testing.T) {
	s := newMemStore()
	now := t0
	var wg sync.WaitGroup
	created := make(chan bool, 50)
	for i := range 50 {
		wg.Go(func() {
			r := newRotator(s, &now)
			r.Owner = "writer-" + string(rune('A'+i%26)) + string(rune('a'+i/26))
			r.LockWait = 30 * time.Second
			res, err := r.Rotate(context.Background(), rotation.Request{})
			if err != nil {
				t.Errorf("Rotate: %v", err)
				return
			}
			created <- res.Created
		})
	}
	wg.Wait()
	close(created)
	n := 0
	for c := range created {
		if c {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d rotations created a key, want exactly 1", n)
	}
	if got := mustRing(t, s).Len(); got != 1 {
		t.Errorf("ring has %d keys, want 1", got)
	}
}
