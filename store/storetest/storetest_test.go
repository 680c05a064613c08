package storetest_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dpkeyring/dpkeyring/keyring"
	"github.com/dpkeyring/dpkeyring/store"
	"github.com/dpkeyring/dpkeyring/store/storetest"
)

// memStore is a minimal in-memory reference implementation of the store contract, keeping
// elements in append order. It checks the suite itself against a second, independent backend.
type memStore struct {
	mu    sync.Mutex
	rings map[string]*memRing
}

type memRing struct {
	elements []store.Element
	counter  uint64
	lease    store.Lease
	meta     store.Meta
}

var _ storetest.Store = (*memStore)(nil)

func (m *memStore) ring(name string, create bool) (*memRing, error) {
	if err := store.ValidRingName(name); err != nil {
		return nil, err
	}
	r := m.rings[name]
	if r == nil && create {
		r = &memRing{}
		m.rings[name] = r
	}
	return r, nil
}

func (m *memStore) List(_ context.Context, ring string) (store.Snapshot, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.ring(ring, false)
	if err != nil {
		return store.Snapshot{}, err
	}
	if r == nil || len(r.elements) == 0 {
		return store.Snapshot{}, fmt.Errorf("%w: %s", store.ErrNotFound, ring)
	}
	return store.Snapshot{Elements: slices.Clone(r.elements), Version: r.counter}, nil
}

// writeForeign appends as an outside writer would: no name, no checks.
func (m *memStore) writeForeign(ring string, xml []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, _ := m.ring(ring, true)
	name, err := keyring.ElementName(xml)
	if err != nil {
		sum := sha256.Sum256(xml)
		name = "unknown-" + hex.EncodeToString(sum[:8])
	}
	r.elements = append(r.elements, store.Element{Name: name, XML: bytes.Clone(xml)})
	r.counter++
}

func (m *memStore) Append(_ context.Context, ring string, e store.Element, fence store.Fence) (uint64, error) {
	if err := store.ValidElementName(e.Name); err != nil {
		return 0, err
	}
	compact, err := keyring.CompactXML(e.XML)
	if err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.ring(ring, true)
	if err != nil {
		return 0, err
	}
	if fence != 0 && fence != r.lease.Token {
		return 0, store.ErrFenced
	}
	for _, have := range r.elements {
		if have.Name == e.Name {
			if bytes.Equal(have.XML, compact) {
				return r.counter, nil
			}
			return 0, store.ErrExists
		}
	}
	r.elements = append(r.elements, store.Element{Name: e.Name, XML: compact})
	r.counter++
	return r.counter, nil
}

func (m *memStore) Lock(_ context.Context, ring, owner string, ttl time.Duration) (store.Lease, error) {
	if ttl <= 0 {
		return store.Lease{}, fmt.Errorf("ttl %v", ttl)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.ring(ring, true)
	if err != nil {
		return store.Lease{}, err
	}
	now := time.Now()
	switch {
	case now.Before(r.lease.Expires) && r.lease.Owner == owner:
		r.lease.Expires = now.Add(ttl)
	case now.Before(r.lease.Expires):
		return store.Lease{}, fmt.Errorf("%w: held by %s", store.ErrLocked, r.lease.Owner)
	default:
		r.lease = store.Lease{Ring: ring, Owner: owner, Token: r.lease.Token + 1, Expires: now.Add(ttl)}
	}
	return r.lease, nil
}

func (m *memStore) Unlock(_ context.Context, l store.Lease) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.ring(l.Ring, false)
	if err != nil {
		return err
	}
	if r == nil || r.lease.Token != l.Token {
		return store.ErrFenced
	}
	r.lease.Expires = time.Now()
	return nil
}

func (m *memStore) Meta(_ context.Context, ring string) (store.Meta, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.ring(ring, false)
	if err != nil {
		return store.Meta{}, err
	}
	if r == nil || r.meta.Version == 0 {
		return store.Meta{}, store.ErrNotFound
	}
	return store.Meta{Data: bytes.Clone(r.meta.Data), Version: r.meta.Version}, nil
}

func (m *memStore) PutMeta(_ context.Context, ring string, data []byte, expect uint64, fence store.Fence) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.ring(ring, true)
	if err != nil {
		return 0, err
	}
	if fence != 0 && fence != r.lease.Token {
		return 0, store.ErrFenced
	}
	if r.meta.Version != expect {
		return 0, store.ErrConflict
	}
	r.meta = store.Meta{Data: bytes.Clone(data), Version: expect + 1}
	return r.meta.Version, nil
}

func (m *memStore) Rings(context.Context) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var names []string
	for name, r := range m.rings {
		if len(r.elements) > 0 {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names, nil
}

func (m *memStore) Close() error { return nil }

func TestRunMemStore(t *testing.T) {
	var mu sync.Mutex
	stores := map[string]*memStore{}
	storetest.Run(t, storetest.Harness{
		NewSpec: func(t *testing.T) string {
			mu.Lock()
			defer mu.Unlock()
			spec := fmt.Sprintf("mem-%d", len(stores))
			stores[spec] = &memStore{rings: map[string]*memRing{}}
			return spec
		},
		Open: func(_ context.Context, spec string) (storetest.Store, error) {
			mu.Lock()
			defer mu.Unlock()
			return stores[spec], nil
		},
		LeaseTTL: 50 * time.Millisecond,
		WriteForeign: func(t *testing.T, spec, ring, _ string, xml []byte) {
			mu.Lock()
			s := stores[spec]
			mu.Unlock()
			s.writeForeign(ring, xml)
		},
		Processes: -1, // memory is not shared between processes
	})
}

func TestElements(t *testing.T) {
	id, err := keyring.NewKeyID()
	if err != nil {
		t.Fatal(err)
	}
	k := storetest.KeyElement(t, id)
	if k.Name != "key-"+id.String() || !bytes.Equal(k.XML, storetest.KeyElement(t, id).XML) {
		t.Errorf("KeyElement(%s) = %s, not deterministic or misnamed", id, k.Name)
	}
	key, err := keyring.ParseKey(k.XML, keyring.ParseOptions{})
	if err != nil || key.ID != id || key.Descriptor == nil || key.Descriptor.MasterKey.Len() != 64 {
		t.Errorf("KeyElement does not parse as a 512-bit key: %v", err)
	}
	r := storetest.RevocationElement(t, id)
	if r.Name != "revocation-"+id.String() {
		t.Errorf("RevocationElement name %s", r.Name)
	}
	if a, b := storetest.DerivedKeyElement(t, "x"), storetest.DerivedKeyElement(t, "x"); a.Name != b.Name || !bytes.Equal(a.XML, b.XML) {
		t.Error("DerivedKeyElement is not deterministic")
	}
	if a, b := storetest.DerivedKeyElement(t, "x"), storetest.DerivedKeyElement(t, "y"); a.Name == b.Name {
		t.Error("DerivedKeyElement gives two labels one id")
	}
	if a, b := storetest.RandomKeyElement(t), storetest.RandomKeyElement(t); a.Name == b.Name {
		t.Error("RandomKeyElement repeats")
	}
}
