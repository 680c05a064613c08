package vaultstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-cleanhttp"
	"github.com/hashicorp/go-retryablehttp"
	"github.com/hashicorp/vault/api"

	"github.com/dpkeyring/dpkeyring/keyring"
	"github.com/dpkeyring/dpkeyring/store"
)

// ErrInvalidElement reports an Append whose bytes are not one XML element.
var ErrInvalidElement = errors.New("vaultstore: element is not one XML element")

// errBusy reports a compare-and-swap loop that lost too many times in a row.
var errBusy = errors.New("vaultstore: too much contention on the ring, try again")

// Store is a key-ring store in a Vault KV version 2 engine. See the package documentation for
// the layout. Its methods are safe for concurrent use.
type Store struct {
	cfg    Config
	client *api.Client
	http   *http.Client
	auth   *renewer

	// cache holds element contents by ring and secret name. Elements are immutable (written
	// with cas=0, never deleted; Rewrap changes only the ciphertext), so List reads each element
	// secret once per Store and afterwards only the listing and new elements.
	mu    sync.Mutex
	cache map[string]map[string]*stored
}

// Open connects to Vault, logs in and, for a renewable token, starts renewing it in the
// background until Close. An unreachable server returns an error wrapping store.ErrUnavailable
// naming the address; rejected credentials one wrapping store.ErrPermission saying which.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	cfg = cfg.withDefaults()
	if cfg.Address == "" {
		return nil, fmt.Errorf("%w: vault: no address", store.ErrInvalidSpec)
	}
	if err := validPath(cfg.Mount, "mount"); err != nil {
		return nil, err
	}
	if err := validPath(cfg.Prefix, "prefix"); err != nil {
		return nil, err
	}
	hc := cleanhttp.DefaultPooledClient()
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	vc := &api.Config{
		Address:      cfg.Address,
		HttpClient:   hc,
		Timeout:      cfg.Timeout,
		MinRetryWait: 200 * time.Millisecond,
		MaxRetryWait: 1500 * time.Millisecond,
		MaxRetries:   cfg.Retries,
		Backoff:      retryablehttp.DefaultBackoff,
	}
	if cfg.CAFile != "" {
		if err := vc.ConfigureTLS(&api.TLSConfig{CACert: cfg.CAFile}); err != nil {
			return nil, fmt.Errorf("%w: vault: ca_file %s: %w", store.ErrInvalidSpec, cfg.CAFile, err)
		}
	}
	client, err := api.NewClient(vc)
	if err != nil {
		return nil, fmt.Errorf("%w: vault: %w", store.ErrInvalidSpec, err)
	}
	// vault/api reads VAULT_TOKEN, VAULT_NAMESPACE and VAULT_HEADERS by itself: only Config counts.
	client.ClearToken()
	client.SetHeaders(http.Header{})
	if cfg.Namespace != "" {
		client.SetNamespace(cfg.Namespace)
	}
	s := &Store{cfg: cfg, client: client, http: hc, cache: map[string]map[string]*stored{}}
	s.auth = &renewer{s: s, stop: make(chan struct{}), done: make(chan struct{})}
	watch, err := s.login(ctx)
	if err != nil {
		hc.CloseIdleConnections()
		return nil, err
	}
	go s.auth.run(watch)
	return s, nil
}

func validPath(p, what string) error {
	if p == "" {
		return fmt.Errorf("%w: vault: empty %s", store.ErrInvalidSpec, what)
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("%w: vault: %s %q has an empty, . or .. segment", store.ErrInvalidSpec, what, p)
		}
	}
	return nil
}

// Close stops the token renewal and releases idle connections. Lock leases are not released.
func (s *Store) Close() error {
	s.auth.close()
	s.http.CloseIdleConnections()
	return nil
}

// Err reports the state of the login: nil while the token is valid and being renewed (or needs
// no renewal), else why renewal or re-login failed (for example a token that reached its max
// TTL). It is meant for readiness checks; operations fail on their own once the token is gone.
func (s *Store) Err() error { return s.auth.err() }

// elementNames lists the secrets under the ring's elements folder.
func (s *Store) elementNames(ctx context.Context, ring string) ([]string, error) {
	raw, err := s.list(ctx, s.elementsPath(ring))
	if err != nil {
		return nil, err
	}
	names := raw[:0]
	for _, n := range raw {
		if !strings.HasSuffix(n, "/") {
			names = append(names, n)
		}
	}
	return names, nil
}

// reserve returns a new sequence number for the element about to be written: the KV version
// of a write to the ring's counter secret. KV v2 takes a per-key lock for every write
// (vault-plugin-secrets-kv path_data.go), so concurrent writers each get a distinct, growing
// version without the retry storms of a check-and-set loop.
func (s *Store) reserve(ctx context.Context, ring string) (uint64, error) {
	p := s.counterPath(ring)
	sec, err := s.client.Logical().WriteWithContext(ctx, s.dataPath(p), map[string]any{
		"data": map[string]any{"purpose": "dpkeyring append counter: its KV version is the last sequence number"},
	})
	if err != nil {
		return 0, s.fail(err, "update", s.dataPath(p))
	}
	var v uint64
	if sec != nil {
		v, _ = toUint(sec.Data["version"])
	}
	if v == 0 {
		return 0, fmt.Errorf("vaultstore: write %s returned no version", s.dataPath(p))
	}
	return v, nil
}

func sleepJitter(ctx context.Context, attempt int) error {
	d := time.Duration(1+rand.IntN(5+min(attempt, 20)*2)) * time.Millisecond
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", store.ErrUnavailable, ctx.Err())
	case <-t.C:
		return nil
	}
}

type stored struct {
	key     string // the secret's name under elements/ (set once read completely)
	name    string
	seq     uint64 // 0: no sequence number (written by something else)
	created time.Time
	xml     []byte // nil while encrypted
	cipher  string
}

// List returns every element of the ring in append order, with the ring's version. Elements
// written by dpkeyring carry a sequence number; secrets written into the elements folder by
// something else (with an "xml" field) follow, oldest first. A ring with no elements returns an
// error wrapping store.ErrNotFound.
//
// The version is the highest sequence number listed plus the number of element secrets. Both
// are functions of the listed set, which only grows, so the version changes with every element
// added (by dpkeyring or anyone else), never goes back, and two Lists that see the same
// elements agree on it, without any read of a shared counter.
func (s *Store) List(ctx context.Context, ring string) (store.Snapshot, error) {
	if err := store.ValidRingName(ring); err != nil {
		return store.Snapshot{}, err
	}
	snap, err := s.snapshot(ctx, ring)
	if err != nil {
		return store.Snapshot{}, err
	}
	if snap.Version == 0 {
		return store.Snapshot{}, fmt.Errorf("%w: ring %q (no elements at %s)", store.ErrNotFound, ring, s.metaPath(s.elementsPath(ring)))
	}
	return snap, nil
}

// snapshot lists and reads the ring; Version 0 means no element secrets.
func (s *Store) snapshot(ctx context.Context, ring string) (store.Snapshot, error) {
	names, err := s.elementNames(ctx, ring)
	if err != nil {
		return store.Snapshot{}, err
	}
	items := make([]*stored, len(names))
	errs := make([]error, len(names))
	sem := make(chan struct{}, s.cfg.Concurrency)
	var wg sync.WaitGroup
	s.mu.Lock()
	cached := s.cache[ring]
	for i, n := range names {
		items[i] = cached[n]
	}
	s.mu.Unlock()
	for i, n := range names {
		if items[i] != nil {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			items[i], errs[i] = s.readElement(ctx, ring, n)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return store.Snapshot{}, err
	}
	var fresh []*stored
	for i, it := range items {
		if it != nil && it.key == "" {
			it.key = names[i]
			fresh = append(fresh, it)
		}
	}
	if err := s.decryptAll(ctx, fresh); err != nil {
		return store.Snapshot{}, err
	}
	if len(fresh) > 0 {
		s.mu.Lock()
		if s.cache[ring] == nil {
			s.cache[ring] = map[string]*stored{}
		}
		for _, it := range fresh {
			it.cipher = ""
			s.cache[ring][it.key] = it
		}
		s.mu.Unlock()
	}
	items = slices.DeleteFunc(items, func(it *stored) bool { return it == nil })
	slices.SortFunc(items, func(a, b *stored) int {
		switch {
		case a.seq != 0 && b.seq != 0:
			return cmpUint(a.seq, b.seq)
		case a.seq != 0:
			return -1
		case b.seq != 0:
			return 1
		}
		if c := a.created.Compare(b.created); c != 0 {
			return c
		}
		return strings.Compare(a.name, b.name)
	})
	var maxSeq uint64
	snap := store.Snapshot{Elements: make([]store.Element, len(items))}
	for i, it := range items {
		maxSeq = max(maxSeq, it.seq)
		snap.Elements[i] = store.Element{Name: it.name, XML: bytes.Clone(it.xml)}
	}
	snap.Version = maxSeq + uint64(len(names))
	return snap, nil
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// readElement reads one element secret; nil if it is gone (deleted by an operator).
func (s *Store) readElement(ctx context.Context, ring, key string) (*stored, error) {
	p := s.elementPath(ring, key)
	e, err := s.read(ctx, p)
	if err != nil || e == nil {
		return nil, err
	}
	it := &stored{created: e.created}
	it.seq, _ = toUint(e.data["seq"])
	if x, ok := e.data["xml"].(string); ok {
		it.xml = []byte(x)
	} else if c, ok := e.data["ciphertext"].(string); ok {
		it.cipher = c
	} else {
		return nil, fmt.Errorf("vaultstore: %s holds neither \"xml\" nor \"ciphertext\"", s.dataPath(p))
	}
	it.name = key
	if n, ok := e.data["name"].(string); ok && n == key {
		return it, nil
	}
	if it.xml == nil {
		return it, nil
	}
	// Written by something else: list it in compact form, named the way ASP.NET Core would, or
	// deterministically from its bytes.
	if c, err := keyring.CompactXML(it.xml); err == nil {
		it.xml = c
	}
	if n, err := keyring.ElementName(it.xml); err == nil {
		it.name = n
	} else if store.ValidElementName(key) != nil {
		sum := sha256.Sum256(it.xml)
		it.name = "unknown-" + hex.EncodeToString(sum[:8])
	}
	return it, nil
}

// Append adds e to the ring, creating the ring if needed, and returns the ring's new version.
// The element is stored in compact form (keyring.CompactXML). The element secret is written with cas=0, so an existing element is never overwritten. The
// same name with the same bytes (compared in compact form) is a no-op returning the current
// version; with different bytes an error wrapping store.ErrExists. A non-zero fence must equal
// the ring's current lease token, else store.ErrFenced: Vault has no transactions, so the check
// happens just before the write and a lease taken over in between (after the old one expired)
// is not detected; the create-only write keeps that window harmless for keys. Bytes that are not
// one XML element return an error wrapping ErrInvalidElement.
func (s *Store) Append(ctx context.Context, ring string, e store.Element, fence store.Fence) (uint64, error) {
	if err := store.ValidRingName(ring); err != nil {
		return 0, err
	}
	if err := store.ValidElementName(e.Name); err != nil {
		return 0, err
	}
	compact, err := keyring.CompactXML(e.XML)
	if err != nil {
		return 0, fmt.Errorf("%w: %s: %w", ErrInvalidElement, e.Name, err)
	}
	if done, err := s.sameAsExisting(ctx, ring, e.Name, compact); err != nil || done {
		if err != nil {
			return 0, err
		}
		return s.version(ctx, ring)
	}
	if err := s.checkFence(ctx, ring, fence); err != nil {
		return 0, err
	}
	seq, err := s.reserve(ctx, ring)
	if err != nil {
		return 0, err
	}
	data, err := s.encodeElement(ctx, e.Name, compact, seq)
	if err != nil {
		return 0, err
	}
	_, err = s.write(ctx, s.elementPath(ring, e.Name), data, 0)
	if errors.Is(err, store.ErrPermission) {
		// With a create-only policy (no "update" on elements), Vault answers 403 rather than a
		// check-and-set mismatch when the element appeared in the meantime.
		if it, rerr := s.readElement(ctx, ring, e.Name); rerr == nil && it != nil {
			err = errCAS
		}
	}
	if errors.Is(err, errCAS) {
		// Someone appended the same name in the meantime.
		done, err := s.sameAsExisting(ctx, ring, e.Name, compact)
		if err != nil {
			return 0, err
		}
		if !done {
			return 0, fmt.Errorf("%w: %s in ring %q", store.ErrExists, e.Name, ring)
		}
	} else if err != nil {
		return 0, err
	}
	return s.version(ctx, ring)
}

// sameAsExisting reports whether the element exists with the same compact bytes; it returns
// store.ErrExists if it exists with others.
func (s *Store) sameAsExisting(ctx context.Context, ring, name string, compact []byte) (bool, error) {
	it, err := s.readElement(ctx, ring, name)
	if err != nil || it == nil {
		return false, err
	}
	if err := s.decryptAll(ctx, []*stored{it}); err != nil {
		return false, err
	}
	old, err := keyring.CompactXML(it.xml)
	if err != nil {
		old = it.xml
	}
	if !bytes.Equal(old, compact) {
		return false, fmt.Errorf("%w: %s in ring %q", store.ErrExists, name, ring)
	}
	return true, nil
}

func (s *Store) version(ctx context.Context, ring string) (uint64, error) {
	snap, err := s.snapshot(ctx, ring)
	return snap.Version, err
}

// encodeElement returns the element secret's data: the compact XML in the clear, or with Transit
// its ciphertext and the clear fields listed in the package documentation.
func (s *Store) encodeElement(ctx context.Context, name string, compact []byte, seq uint64) (map[string]any, error) {
	data := map[string]any{"name": name, "seq": seq}
	if s.cfg.TransitKey == "" {
		data["xml"] = string(compact)
		return data, nil
	}
	c, err := s.encrypt(ctx, compact)
	if err != nil {
		return nil, err
	}
	data["ciphertext"] = c
	for k, v := range clearInfo(compact) {
		data[k] = v
	}
	return data, nil
}

// lease is the record at <prefix>/rings/<ring>/lease. A released lease has no owner.
type lease struct {
	owner   string
	token   uint64
	expires time.Time
}

func (s *Store) readLease(ctx context.Context, ring string) (lease, uint64, error) {
	e, err := s.read(ctx, s.leasePath(ring))
	if err != nil || e == nil {
		return lease{}, 0, err
	}
	var l lease
	l.owner, _ = e.data["owner"].(string)
	l.token, _ = toUint(e.data["token"])
	if x, ok := e.data["expires"].(string); ok {
		l.expires, _ = time.Parse(time.RFC3339Nano, x)
	}
	return l, e.version, nil
}

func (s *Store) writeLease(ctx context.Context, ring string, l lease, cas uint64) error {
	_, err := s.write(ctx, s.leasePath(ring), map[string]any{
		"owner":   l.owner,
		"token":   l.token,
		"expires": l.expires.UTC().Format(time.RFC3339Nano),
	}, cas)
	return err
}

func (s *Store) checkFence(ctx context.Context, ring string, fence store.Fence) error {
	if fence == 0 {
		return nil
	}
	l, _, err := s.readLease(ctx, ring)
	if err != nil {
		return err
	}
	if l.token != uint64(fence) {
		return fmt.Errorf("%w: ring %q: fence %d, current lease token %d", store.ErrFenced, ring, fence, l.token)
	}
	return nil
}

// Lock takes or renews the ring's lease for owner until now+ttl. The lease record is replaced
// with check-and-set, so of two concurrent takers exactly one wins. A new lease gets the
// previous token + 1; the same owner renewing an unexpired lease keeps its token. Another
// owner's unexpired lease returns an error wrapping store.ErrLocked.
func (s *Store) Lock(ctx context.Context, ring, owner string, ttl time.Duration) (store.Lease, error) {
	if err := store.ValidRingName(ring); err != nil {
		return store.Lease{}, err
	}
	if ttl <= 0 {
		return store.Lease{}, fmt.Errorf("vaultstore: lock %q: ttl %v must be positive", ring, ttl)
	}
	if owner == "" {
		return store.Lease{}, fmt.Errorf("vaultstore: lock %q: empty owner", ring)
	}
	for attempt := 0; attempt < 100; attempt++ {
		cur, ver, err := s.readLease(ctx, ring)
		if err != nil {
			return store.Lease{}, err
		}
		now := s.cfg.Now()
		next := lease{owner: owner, token: cur.token, expires: now.Add(ttl)}
		switch {
		case cur.owner == "" || !now.Before(cur.expires):
			next.token++
		case cur.owner == owner:
		default:
			return store.Lease{}, fmt.Errorf("%w: ring %q is held by %q until %s", store.ErrLocked, ring, cur.owner, cur.expires.UTC().Format(time.RFC3339))
		}
		err = s.writeLease(ctx, ring, next, ver)
		if err == nil {
			return store.Lease{Ring: ring, Owner: owner, Token: store.Fence(next.token), Expires: next.expires}, nil
		}
		if !errors.Is(err, errCAS) {
			return store.Lease{}, err
		}
		if err := sleepJitter(ctx, attempt); err != nil {
			return store.Lease{}, err
		}
	}
	return store.Lease{}, fmt.Errorf("%w: lock %q: %w", store.ErrUnavailable, ring, errBusy)
}

// Unlock releases l if its token is still the ring's current one (the token counter is kept),
// else returns an error wrapping store.ErrFenced.
func (s *Store) Unlock(ctx context.Context, l store.Lease) error {
	if err := store.ValidRingName(l.Ring); err != nil {
		return err
	}
	for attempt := 0; attempt < 100; attempt++ {
		cur, ver, err := s.readLease(ctx, l.Ring)
		if err != nil {
			return err
		}
		if ver == 0 || cur.token != uint64(l.Token) {
			return fmt.Errorf("%w: unlock ring %q: token %d, current %d", store.ErrFenced, l.Ring, l.Token, cur.token)
		}
		err = s.writeLease(ctx, l.Ring, lease{token: cur.token, expires: s.cfg.Now()}, ver)
		if err == nil {
			return nil
		}
		if !errors.Is(err, errCAS) {
			return err
		}
		if err := sleepJitter(ctx, attempt); err != nil {
			return err
		}
	}
	return fmt.Errorf("%w: unlock %q: %w", store.ErrUnavailable, l.Ring, errBusy)
}

// Meta returns the ring's metadata record; its Version is the KV version of the secret. No
// record returns an error wrapping store.ErrNotFound.
func (s *Store) Meta(ctx context.Context, ring string) (store.Meta, error) {
	if err := store.ValidRingName(ring); err != nil {
		return store.Meta{}, err
	}
	e, err := s.read(ctx, s.metaRecordPath(ring))
	if err != nil {
		return store.Meta{}, err
	}
	if e == nil {
		return store.Meta{}, fmt.Errorf("%w: metadata of ring %q", store.ErrNotFound, ring)
	}
	enc, _ := e.data["data"].(string)
	b, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return store.Meta{}, fmt.Errorf("vaultstore: metadata of ring %q at %s: %w", ring, s.dataPath(s.metaRecordPath(ring)), err)
	}
	return store.Meta{Data: b, Version: e.version}, nil
}

// PutMeta replaces the ring's metadata if its version is expect (0: it must not exist yet),
// else returns an error wrapping store.ErrConflict; a stale non-zero fence returns
// store.ErrFenced. It returns the new version.
func (s *Store) PutMeta(ctx context.Context, ring string, data []byte, expect uint64, fence store.Fence) (uint64, error) {
	if err := store.ValidRingName(ring); err != nil {
		return 0, err
	}
	if err := s.checkFence(ctx, ring, fence); err != nil {
		return 0, err
	}
	v, err := s.write(ctx, s.metaRecordPath(ring), map[string]any{"data": base64.StdEncoding.EncodeToString(data)}, expect)
	if errors.Is(err, errCAS) {
		return 0, fmt.Errorf("%w: metadata of ring %q is not at version %d", store.ErrConflict, ring, expect)
	}
	return v, err
}

// Rings returns the names of the rings present under the prefix, sorted.
func (s *Store) Rings(ctx context.Context) ([]string, error) {
	raw, err := s.list(ctx, s.ringsPath())
	if err != nil {
		return nil, err
	}
	var rings []string
	for _, n := range raw {
		n, ok := strings.CutSuffix(n, "/")
		if ok && store.ValidRingName(n) == nil {
			rings = append(rings, n)
		}
	}
	slices.Sort(rings)
	return rings, nil
}
