// Package ringcache keeps the last good snapshot of every served key ring in memory, so the
// server answers readers from memory, wakes long-polling readers when a ring changes, and keeps
// answering when its store is down.
//
// A [Cache] refreshes each ring from its store on an interval (and at once after a local write,
// [Cache.Invalidate]). It never replaces a good entry with a ring that has no usable key (no
// default key and no fallback, see [keyring.Ring.DefaultKey]) or that cannot be parsed: it keeps
// serving the old entry and reports the problem in [Cache.Health].
package ringcache

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dpkeyring/dpkeyring/keyring"
	"github.com/dpkeyring/dpkeyring/store"
)

// Sentinel errors.
var (
	// ErrUnknownRing reports a ring the cache was not configured with.
	ErrUnknownRing = errors.New("ringcache: unknown ring")
	// ErrNotLoaded reports a ring for which no good snapshot has been loaded yet (the store was
	// unreachable, the ring is empty or has no usable key since the server started). The
	// wrapping error says why.
	ErrNotLoaded = errors.New("ringcache: ring not loaded")
	// ErrUnusableRing reports a snapshot that was not taken because the ring has no usable key
	// or cannot be parsed.
	ErrUnusableRing = errors.New("ringcache: ring has no usable key")
)

// Lister reads a ring from a store: the List method every store backend has.
type Lister interface {
	List(ctx context.Context, ring string) (store.Snapshot, error)
}

// Config configures a [Cache].
type Config struct {
	// Store is where the rings are read from.
	Store Lister
	// Rings are the names of the rings to keep.
	Rings []string
	// Parse turns a ring's elements into a ring: typically keyring.ParseElements with the
	// server's parse options (certificates for protected keys). Required.
	Parse func(elements [][]byte) (*keyring.Ring, error)
	// Interval is the time between two refreshes of a ring; default 1s.
	Interval time.Duration
	// Timeout bounds one List call; default 10s.
	Timeout time.Duration
	// Now returns the current time; default time.Now. It decides which keys are usable.
	Now func() time.Time
}

// Entry is one good snapshot of a ring. Entries are immutable: callers must not modify the
// slices.
type Entry struct {
	// Ring is the ring's name.
	Ring string
	// Version is the store's version of the ring.
	Version uint64
	// Elements are the ring's elements as stored.
	Elements []store.Element
	// Keys is the parsed ring.
	Keys *keyring.Ring
	// Fetched is when this version was read from the store (the time of the refresh that first
	// saw it).
	Fetched time.Time
}

// Health is the state of one ring's refreshes.
type Health struct {
	// Loaded is true when the cache holds a good entry for the ring.
	Loaded bool
	// Version is the version of that entry.
	Version uint64
	// LastSuccess is the last time a refresh read the ring and kept (or confirmed) its entry.
	LastSuccess time.Time
	// LastAttempt is the last time a refresh ran.
	LastAttempt time.Time
	// Err is the error of the last refresh, nil if it succeeded. It wraps the store's error
	// (store.ErrUnavailable when unreachable) or [ErrUnusableRing].
	Err error
	// StoreErrors counts refreshes that failed because the store failed (not counting rings
	// refused as unusable).
	StoreErrors uint64
}

// Stale reports whether the served entry may be out of date: the last refresh failed.
func (h Health) Stale() bool { return h.Err != nil }

// state is one ring's current entry plus the channel closed when it is replaced.
type state struct {
	entry   *Entry        // nil until first good load
	changed chan struct{} // closed when state is replaced
}

type ringState struct {
	name string
	cur  atomic.Pointer[state]

	refreshMu sync.Mutex // serialises refreshes

	mu          sync.Mutex // guards the fields below (never held during store calls)
	lastSuccess time.Time
	lastAttempt time.Time
	lastErr     error
	storeErrors uint64
	history     []VersionSeen
}

// VersionSeen records when the cache first saw a version of a ring.
type VersionSeen struct {
	Version uint64
	Seen    time.Time
}

// historyLen bounds the versions remembered per ring for lag computations.
const historyLen = 64

// Cache keeps the last good snapshot of each configured ring. Its methods are safe for
// concurrent use.
type Cache struct {
	cfg   Config
	rings map[string]*ringState
	names []string
}

// New returns a cache for the configured rings. Nothing is loaded until [Cache.Run] or
// [Cache.Refresh] runs. It returns an error if Store or Parse is nil or a ring name is invalid.
func New(cfg Config) (*Cache, error) {
	if cfg.Store == nil || cfg.Parse == nil {
		return nil, errors.New("ringcache: Store and Parse are required")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c := &Cache{cfg: cfg, rings: make(map[string]*ringState, len(cfg.Rings))}
	for _, name := range cfg.Rings {
		if err := store.ValidRingName(name); err != nil {
			return nil, fmt.Errorf("ringcache: %w", err)
		}
		if _, dup := c.rings[name]; dup {
			continue
		}
		rs := &ringState{name: name}
		rs.cur.Store(&state{changed: make(chan struct{})})
		c.rings[name] = rs
		c.names = append(c.names, name)
	}
	slices.Sort(c.names)
	return c, nil
}

// Rings returns the configured ring names, sorted.
func (c *Cache) Rings() []string { return slices.Clone(c.names) }

// Run refreshes every ring now and then every Interval until ctx is done. It returns
// ctx.Err().
func (c *Cache) Run(ctx context.Context) error {
	t := time.NewTicker(c.cfg.Interval)
	defer t.Stop()
	for {
		c.RefreshAll(ctx)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// RefreshAll refreshes every ring once, concurrently, and returns when all are done.
func (c *Cache) RefreshAll(ctx context.Context) {
	var wg sync.WaitGroup
	for _, name := range c.names {
		wg.Go(func() { _ = c.Refresh(ctx, name) })
	}
	wg.Wait()
}

// Invalidate refreshes ring at once (call it after a local write, so the new version is served
// and long-polling readers wake before the write's response is sent). It returns the refresh's
// error, see [Cache.Refresh].
func (c *Cache) Invalidate(ctx context.Context, ring string) error { return c.Refresh(ctx, ring) }

// Refresh reads ring from the store and, when its version changed and the new ring has a usable
// key, makes it the served entry and wakes the waiters. It returns an error wrapping
// [ErrUnknownRing], the store's error (the entry is kept), or [ErrUnusableRing] (the entry is
// kept). A ring that does not exist in the store yet counts as unusable.
func (c *Cache) Refresh(ctx context.Context, ring string) error {
	rs, ok := c.rings[ring]
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknownRing, ring)
	}
	rs.refreshMu.Lock()
	defer rs.refreshMu.Unlock()
	now := c.cfg.Now()
	err := c.refreshLocked(ctx, rs, now)
	rs.mu.Lock()
	rs.lastAttempt = now
	rs.lastErr = err
	if err == nil {
		rs.lastSuccess = now
	}
	rs.mu.Unlock()
	return err
}

func (c *Cache) refreshLocked(ctx context.Context, rs *ringState, now time.Time) error {
	lctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	snap, err := c.cfg.Store.List(lctx, rs.name)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: ring %s does not exist in the store: %w", ErrUnusableRing, rs.name, err)
	}
	if err != nil {
		rs.mu.Lock()
		rs.storeErrors++
		rs.mu.Unlock()
		return fmt.Errorf("ringcache: reading ring %s: %w", rs.name, err)
	}
	old := rs.cur.Load()
	if old.entry != nil && old.entry.Version == snap.Version {
		return c.checkUsable(old.entry.Keys, rs.name, now)
	}
	elems := make([][]byte, len(snap.Elements))
	for i, e := range snap.Elements {
		elems[i] = e.XML
	}
	parsed, err := c.cfg.Parse(elems)
	if err != nil {
		return fmt.Errorf("%w: ring %s version %d cannot be read: %w", ErrUnusableRing, rs.name, snap.Version, err)
	}
	if err := c.checkUsable(parsed, rs.name, now); err != nil {
		return fmt.Errorf("%w (version %d not served)", err, snap.Version)
	}
	e := &Entry{Ring: rs.name, Version: snap.Version, Elements: slices.Clone(snap.Elements), Keys: parsed, Fetched: now}
	rs.mu.Lock()
	rs.history = append(rs.history, VersionSeen{Version: snap.Version, Seen: now})
	if len(rs.history) > historyLen {
		rs.history = slices.Delete(rs.history, 0, len(rs.history)-historyLen)
	}
	rs.mu.Unlock()
	rs.cur.Store(&state{entry: e, changed: make(chan struct{})})
	close(old.changed)
	return nil
}

func (c *Cache) checkUsable(r *keyring.Ring, name string, now time.Time) error {
	if _, err := r.DefaultKey(now); err != nil {
		return fmt.Errorf("%w: ring %s: %w", ErrUnusableRing, name, err)
	}
	return nil
}

// Get returns the ring's current entry. It returns an error wrapping [ErrUnknownRing], or
// [ErrNotLoaded] (wrapping the last refresh error) if no good snapshot was loaded yet.
func (c *Cache) Get(ring string) (Entry, error) {
	rs, ok := c.rings[ring]
	if !ok {
		return Entry{}, fmt.Errorf("%w: %s", ErrUnknownRing, ring)
	}
	st := rs.cur.Load()
	if st.entry == nil {
		return Entry{}, c.notLoaded(rs)
	}
	return *st.entry, nil
}

func (c *Cache) notLoaded(rs *ringState) error {
	rs.mu.Lock()
	err := rs.lastErr
	rs.mu.Unlock()
	if err == nil {
		return fmt.Errorf("%w: %s", ErrNotLoaded, rs.name)
	}
	return fmt.Errorf("%w: %s: %w", ErrNotLoaded, rs.name, err)
}

// Wait returns the ring's entry as soon as its version differs from have (at once if it already
// does). If ctx ends first, it returns the current entry (unchanged) and ctx's error. Waiting
// costs no goroutine: every waiter blocks on one channel per ring that is closed on change. It
// returns an error wrapping [ErrUnknownRing] or [ErrNotLoaded] as [Cache.Get] does, except that
// it waits for a first load while ctx lasts.
func (c *Cache) Wait(ctx context.Context, ring string, have uint64) (Entry, error) {
	rs, ok := c.rings[ring]
	if !ok {
		return Entry{}, fmt.Errorf("%w: %s", ErrUnknownRing, ring)
	}
	for {
		st := rs.cur.Load()
		if st.entry != nil && st.entry.Version != have {
			return *st.entry, nil
		}
		select {
		case <-st.changed:
		case <-ctx.Done():
			if st.entry == nil {
				return Entry{}, errors.Join(c.notLoaded(rs), ctx.Err())
			}
			return *st.entry, ctx.Err()
		}
	}
}

// Health returns the state of ring's refreshes; the zero Health for an unknown ring.
func (c *Cache) Health(ring string) Health {
	rs, ok := c.rings[ring]
	if !ok {
		return Health{Err: fmt.Errorf("%w: %s", ErrUnknownRing, ring)}
	}
	st := rs.cur.Load()
	rs.mu.Lock()
	defer rs.mu.Unlock()
	h := Health{LastSuccess: rs.lastSuccess, LastAttempt: rs.lastAttempt, Err: rs.lastErr, StoreErrors: rs.storeErrors}
	if st.entry != nil {
		h.Loaded, h.Version = true, st.entry.Version
	}
	return h
}

// History returns when the cache first saw each of the ring's recent versions (up to 64), oldest
// first.
func (c *Cache) History(ring string) []VersionSeen {
	rs, ok := c.rings[ring]
	if !ok {
		return nil
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return slices.Clone(rs.history)
}
