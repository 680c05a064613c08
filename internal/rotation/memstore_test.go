package rotation_test

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/dpkeyring/dpkeyring/internal/rotation"
	"github.com/dpkeyring/dpkeyring/store"
)

// memStore is an in-memory fake of the store contract for unit tests of rotation. The real
// backends are tested with store/storetest and, for rotation, in rotation_store_test.go.
type memStore struct {
	mu       sync.Mutex
	elems    map[string][]store.Element
	versions map[string]uint64
	leases   map[string]store.Lease
	tokens   map[string]store.Fence
	meta     map[string]store.Meta
	now      func() time.Time
	failList error
}

var _ rotation.Store = (*memStore)(nil)

func newMemStore() *memStore {
	return &memStore{
		elems: map[string][]store.Element{}, versions: map[string]uint64{},
		leases: map[string]store.Lease{}, tokens: map[string]store.Fence{}, meta: map[string]store.Meta{},
		now: time.Now,
	}
}

func (m *memStore) List(_ context.Context, ring string) (store.Snapshot, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failList != nil {
		return store.Snapshot{}, m.failList
	}
	if m.versions[ring] == 0 {
		return store.Snapshot{}, store.ErrNotFound
	}
	return store.Snapshot{Elements: slices.Clone(m.elems[ring]), Version: m.versions[ring]}, nil
}

func (m *memStore) checkFence(ring string, fence store.Fence) error {
	if fence != 0 && m.leases[ring].Token != fence {
		return store.ErrFenced
	}
	return nil
}

func (m *memStore) Append(_ context.Context, ring string, e store.Element, fence store.Fence) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.checkFence(ring, fence); err != nil {
		return 0, err
	}
	for _, have := range m.elems[ring] {
		if have.Name == e.Name {
			if bytes.Equal(have.XML, e.XML) {
				return m.versions[ring], nil
			}
			return 0, store.ErrExists
		}
	}
	m.elems[ring] = append(m.elems[ring], e)
	m.versions[ring]++
	return m.versions[ring], nil
}

func (m *memStore) Lock(_ context.Context, ring, owner string, ttl time.Duration) (store.Lease, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	l, held := m.leases[ring]
	if held && now.Before(l.Expires) && l.Owner != owner {
		return store.Lease{}, store.ErrLocked
	}
	if held && now.Before(l.Expires) && l.Owner == owner {
		l.Expires = now.Add(ttl)
		m.leases[ring] = l
		return l, nil
	}
	m.tokens[ring]++
	l = store.Lease{Ring: ring, Owner: owner, Token: m.tokens[ring], Expires: now.Add(ttl)}
	m.leases[ring] = l
	return l, nil
}

func (m *memStore) Unlock(_ context.Context, l store.Lease) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur := m.leases[l.Ring]
	if cur.Token != l.Token {
		return store.ErrFenced
	}
	cur.Expires = m.now()
	m.leases[l.Ring] = cur
	return nil
}

func (m *memStore) Meta(_ context.Context, ring string) (store.Meta, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	md, ok := m.meta[ring]
	if !ok {
		return store.Meta{}, store.ErrNotFound
	}
	return md, nil
}

func (m *memStore) PutMeta(_ context.Context, ring string, data []byte, expect uint64, fence store.Fence) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.checkFence(ring, fence); err != nil {
		return 0, err
	}
	if m.meta[ring].Version != expect {
		return 0, store.ErrConflict
	}
	md := store.Meta{Data: slices.Clone(data), Version: expect + 1}
	m.meta[ring] = md
	return md.Version, nil
}
