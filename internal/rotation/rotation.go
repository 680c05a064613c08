// Package rotation is the single writer of a key ring: it creates keys when the policy says one
// is due and revokes keys, always under the store's lease lock and with its fencing token, so any
// number of dpkeyring servers and cron runs sharing a store create exactly one key when one is
// due.
//
// It does no logging; callers log the [Result] and errors.
package rotation

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dpkeyring/dpkeyring/keyring"
	"github.com/dpkeyring/dpkeyring/store"
)

// Store is what rotation needs from a key-ring store: read, lock, create-only append and the
// metadata compare-and-swap.
type Store interface {
	List(ctx context.Context, ring string) (store.Snapshot, error)
	Append(ctx context.Context, ring string, e store.Element, fence store.Fence) (uint64, error)
	Lock(ctx context.Context, ring, owner string, ttl time.Duration) (store.Lease, error)
	Unlock(ctx context.Context, l store.Lease) error
	Meta(ctx context.Context, ring string) (store.Meta, error)
	PutMeta(ctx context.Context, ring string, data []byte, expect uint64, fence store.Fence) (uint64, error)
}

// MasterKeySource is an optional capability of a store that generates master keys itself (the
// Vault store with Transit: 512-bit data keys from Transit). Found by type assertion.
type MasterKeySource interface {
	NewMasterKey(ctx context.Context) (keyring.Secret, error)
}

// ErrBusy reports that another writer held the ring's lock for longer than the caller waited.
var ErrBusy = errors.New("rotation: another writer holds the ring lock")

// Rotator rotates one ring of one store.
type Rotator struct {
	// Store holds the ring.
	Store Store
	// Ring is the ring's name.
	Ring string
	// Policy decides when keys are due and their dates.
	Policy keyring.Policy
	// Owner identifies this writer in the lease (for example "host/pid").
	Owner string
	// LeaseTTL bounds how long a crashed writer blocks others; default 30s.
	LeaseTTL time.Duration
	// LockWait is how long Rotate waits for a busy lock before returning ErrBusy; default 10s.
	LockWait time.Duration
	// ParseOptions are used to read the ring (certificates for protected keys).
	ParseOptions keyring.ParseOptions
	// Now returns the current time; default time.Now.
	Now func() time.Time
}

// Request asks for a rotation.
type Request struct {
	// Immediate creates a key that activates now, whether or not one is due (emergencies).
	Immediate bool
	// RevokePrevious revokes every key that was usable before the new key (with Immediate: the
	// compromised keys), by revoking each such key id.
	RevokePrevious bool
	// Reason is recorded in revocations and the metadata.
	Reason string
}

// Result says what a rotation did.
type Result struct {
	// Created is true when a new key was written.
	Created bool
	// Key is the new key (Created) — its Descriptor holds secret material; do not log it.
	Key *keyring.Key
	// Revoked lists the key ids revoked by this call.
	Revoked []keyring.KeyID
	// Decision is the policy's decision that led here.
	Decision keyring.Decision
	// NextDue is when the next key will be due.
	NextDue time.Time
	// Version is the ring version after the call.
	Version uint64
}

// Summary is what a rotation did, in the JSON form the server answers POST
// /v1/rings/{ring}/rotate with and "dpkeyring rotate --json" prints.
type Summary struct {
	// Result is "created" or "not due".
	Result string `json:"result"`
	// KeyID, Activation and Expiration describe the new key ("created") or the current default
	// key ("not due"; absent if there is none).
	KeyID      string    `json:"key_id,omitempty"`
	Activation time.Time `json:"activation,omitzero"`
	Expiration time.Time `json:"expiration,omitzero"`
	// NextDue is when the next key will be due.
	NextDue time.Time `json:"next_due,omitzero"`
	// Revoked are the key ids revoked by this call (empty, never null, when none).
	Revoked []string `json:"revoked"`
	// Version is the ring version after the call.
	Version uint64 `json:"version"`
	// Message is the policy's explanation.
	Message string `json:"message"`
}

// Summary returns what res did as a [Summary]. It holds no key material.
func (res Result) Summary() Summary {
	out := Summary{Result: "not due", NextDue: res.NextDue, Revoked: []string{}, Version: res.Version,
		Message: res.Decision.Reason}
	k := res.Decision.Current
	if res.Created {
		out.Result, k = "created", res.Key
	}
	if k != nil {
		out.KeyID, out.Activation, out.Expiration = k.ID.String(), k.Activation, k.Expiration
	}
	for _, id := range res.Revoked {
		out.Revoked = append(out.Revoked, id.String())
	}
	return out
}

// Meta is the ring metadata record rotation keeps (JSON in the store's metadata slot).
type Meta struct {
	LastRotation time.Time     `json:"last_rotation,omitzero"`
	NextRotation time.Time     `json:"next_rotation,omitzero"`
	LastKeyID    keyring.KeyID `json:"last_key_id,omitzero"`
	LastReason   string        `json:"last_reason,omitempty"`
}

// ReadMeta returns the ring's rotation metadata; a ring without a record gives the zero Meta.
func ReadMeta(ctx context.Context, s Store, ring string) (Meta, uint64, error) {
	m, err := s.Meta(ctx, ring)
	if errors.Is(err, store.ErrNotFound) {
		return Meta{}, 0, nil
	}
	if err != nil {
		return Meta{}, 0, err
	}
	var out Meta
	if err := json.Unmarshal(m.Data, &out); err != nil {
		return Meta{}, m.Version, fmt.Errorf("rotation: ring %s: corrupt metadata: %w", ring, err)
	}
	return out, m.Version, nil
}

func (r *Rotator) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Rotate applies the policy (or req.Immediate) under the ring's lock. It is idempotent: when no
// key is due it writes nothing and says when one will be. It returns an error wrapping
// [ErrBusy] if the lock stayed busy for LockWait, or the store's errors.
func (r *Rotator) Rotate(ctx context.Context, req Request) (Result, error) {
	if err := r.Policy.Validate(); err != nil {
		return Result{}, err
	}
	lease, err := r.lock(ctx)
	if err != nil {
		return Result{}, err
	}
	defer func() {
		// Unlock with a fresh context: the caller's may be done. A failed unlock only delays
		// the next writer until the lease expires.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = r.Store.Unlock(uctx, lease)
	}()
	return r.rotateLocked(ctx, lease.Token, req)
}

func (r *Rotator) lock(ctx context.Context) (store.Lease, error) {
	ttl := r.LeaseTTL
	if ttl <= 0 {
		ttl = 30 * time.Second
	}
	wait := r.LockWait
	if wait <= 0 {
		wait = 10 * time.Second
	}
	deadline := time.Now().Add(wait)
	delay := 20 * time.Millisecond
	// Each call is a writer of its own: with the shared Owner, a concurrent Rotate or Revoke of
	// the same process would renew (and so share) this lease, and both would write.
	owner := r.Owner + "/" + rand.Text()
	for {
		lease, err := r.Store.Lock(ctx, r.Ring, owner, ttl)
		if err == nil {
			return lease, nil
		}
		if !errors.Is(err, store.ErrLocked) {
			return store.Lease{}, err
		}
		if time.Now().Add(delay).After(deadline) {
			return store.Lease{}, fmt.Errorf("%w: ring %s: %w", ErrBusy, r.Ring, err)
		}
		select {
		case <-ctx.Done():
			return store.Lease{}, ctx.Err()
		case <-time.After(delay):
		}
		delay = min(delay*2, 500*time.Millisecond)
	}
}

func (r *Rotator) rotateLocked(ctx context.Context, fence store.Fence, req Request) (Result, error) {
	now := r.now()
	ring, err := r.readRing(ctx)
	if err != nil {
		return Result{}, err
	}
	var d keyring.Decision
	if req.Immediate {
		d = r.Policy.Immediate(now)
	} else {
		d = r.Policy.Decide(ring, now)
	}
	res := Result{Decision: d, NextDue: d.NextDue}
	if !d.Due {
		snap, err := r.Store.List(ctx, r.Ring)
		if err == nil {
			res.Version = snap.Version
		}
		return res, nil
	}
	var toRevoke []keyring.KeyID
	if req.RevokePrevious {
		for _, k := range ring.Keys() {
			if !ring.IsRevoked(k) {
				toRevoke = append(toRevoke, k.ID)
			}
		}
	}
	key, err := keyring.NewKey(d.Created, d.Activation, d.Expiration)
	if err != nil {
		return Result{}, err
	}
	if src, ok := r.Store.(MasterKeySource); ok {
		mk, err := src.NewMasterKey(ctx)
		if err != nil {
			return Result{}, fmt.Errorf("rotation: ring %s: generating master key: %w", r.Ring, err)
		}
		key.Descriptor.MasterKey = mk
		if key.XML, err = keyring.MarshalKey(key); err != nil {
			return Result{}, err
		}
	}
	version, err := r.Store.Append(ctx, r.Ring, store.Element{Name: "key-" + key.ID.String(), XML: key.XML}, fence)
	if err != nil {
		return Result{}, fmt.Errorf("rotation: ring %s: writing key %s: %w", r.Ring, key.ID, err)
	}
	res.Created, res.Key, res.Version = true, &key, version
	for _, id := range toRevoke {
		v, err := r.appendRevocation(ctx, fence, keyring.Revocation{Date: now, KeyID: id, Reason: req.Reason})
		if err != nil {
			return res, err
		}
		res.Revoked = append(res.Revoked, id)
		res.Version = v
	}
	after, err := r.readRing(ctx)
	if err == nil {
		res.NextDue = r.Policy.Decide(after, now).NextDue
	}
	if err := r.writeMeta(ctx, fence, Meta{LastRotation: now, NextRotation: res.NextDue, LastKeyID: key.ID, LastReason: req.Reason}); err != nil {
		return res, err
	}
	return res, nil
}

// Revoke revokes one key (id non-zero) or every key created before date (all), under the lock.
func (r *Rotator) Revoke(ctx context.Context, rev keyring.Revocation) (uint64, error) {
	lease, err := r.lock(ctx)
	if err != nil {
		return 0, err
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = r.Store.Unlock(uctx, lease)
	}()
	if !rev.All {
		ring, err := r.readRing(ctx)
		if err != nil {
			return 0, err
		}
		if _, err := ring.Key(rev.KeyID); err != nil {
			return 0, err
		}
	}
	return r.appendRevocation(ctx, lease.Token, rev)
}

func (r *Rotator) appendRevocation(ctx context.Context, fence store.Fence, rev keyring.Revocation) (uint64, error) {
	xml, err := keyring.MarshalRevocation(rev)
	if err != nil {
		return 0, err
	}
	v, err := r.Store.Append(ctx, r.Ring, store.Element{Name: keyring.RevocationName(rev), XML: xml}, fence)
	if err != nil {
		return 0, fmt.Errorf("rotation: ring %s: writing revocation: %w", r.Ring, err)
	}
	return v, nil
}

func (r *Rotator) readRing(ctx context.Context) (*keyring.Ring, error) {
	snap, err := r.Store.List(ctx, r.Ring)
	if errors.Is(err, store.ErrNotFound) {
		return keyring.NewRing(nil, nil, nil)
	}
	if err != nil {
		return nil, err
	}
	elems := make([][]byte, len(snap.Elements))
	for i, e := range snap.Elements {
		elems[i] = e.XML
	}
	return keyring.ParseElements(elems, r.ParseOptions)
}

func (r *Rotator) writeMeta(ctx context.Context, fence store.Fence, m Meta) error {
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	for range 3 {
		_, version, err := ReadMeta(ctx, r.Store, r.Ring)
		if err != nil && version == 0 {
			return err
		}
		_, err = r.Store.PutMeta(ctx, r.Ring, data, version, fence)
		if !errors.Is(err, store.ErrConflict) {
			return err
		}
	}
	return fmt.Errorf("rotation: ring %s: metadata kept changing", r.Ring)
}
