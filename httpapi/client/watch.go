package client

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"time"
)

// Defaults of [WatchOptions].
const (
	DefaultWait       = 60 * time.Second
	DefaultMinBackoff = 500 * time.Millisecond
	DefaultMaxBackoff = 30 * time.Second
)

// WatchOptions tune [Client.Watch]. The zero value uses the defaults.
type WatchOptions struct {
	// Wait is the long-poll wait of each request (default [DefaultWait]; the server caps it at
	// 120 s by default).
	Wait time.Duration
	// MinBackoff and MaxBackoff bound the delay before retrying after a failure: it starts at
	// MinBackoff, doubles after each consecutive failure up to MaxBackoff, and is jittered to a
	// random value between half of it and all of it (defaults [DefaultMinBackoff] and
	// [DefaultMaxBackoff]).
	MinBackoff, MaxBackoff time.Duration
	// SkipCached does not hand the cached document (memory or cache directory) to the callback
	// before the first request, and makes the first request unconditional.
	SkipCached bool
	// OnError, when set, is called after each failed request or callback with the error and
	// the delay before the next try.
	OnError func(err error, retryIn time.Duration)
	// OnContact, when set, is called after each successful answer of the server (a new version
	// or 304), after the callback.
	OnContact func(doc *RingDoc)
}

// Watch follows ring until ctx ends, and returns ctx's error. It calls onChange with the cached
// document first (unless SkipCached; a service thus starts from its cache while the server is
// down), then with every new version the long-poll brings. The first request, and the first
// after a failure, does not wait, so the server sees the client (X-Node-Id) at once. A failed request or an error
// returned by onChange is retried with exponential backoff and jitter; after an onChange error
// the same version is fetched and handed over again. onChange runs on Watch's goroutine.
func (c *Client) Watch(ctx context.Context, ring string, onChange func(*RingDoc) error, opts WatchOptions) error {
	if opts.Wait <= 0 {
		opts.Wait = DefaultWait
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = DefaultMinBackoff
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = DefaultMaxBackoff
	}
	opts.MaxBackoff = max(opts.MaxBackoff, opts.MinBackoff)

	var have string
	if !opts.SkipCached {
		if doc, err := c.Cached(ring); err == nil {
			if err := onChange(doc); err == nil {
				have = doc.ETag
			}
		}
	}
	backoff := opts.MinBackoff
	// The first request, and the first after a failure, does not wait: the server records at
	// once (in its node status) that this client is back and which version it holds.
	quick := true
	fail := func(err error) error {
		quick = true
		d := jitter(backoff)
		backoff = min(2*backoff, opts.MaxBackoff)
		if opts.OnError != nil {
			opts.OnError(err, d)
		}
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return nil
		}
	}
	for ctx.Err() == nil {
		wait := opts.Wait
		if have == "" || quick {
			wait = 0
		}
		doc, err := c.Poll(ctx, ring, have, wait)
		if ctx.Err() != nil {
			break
		}
		if doc == nil {
			if err := fail(err); err != nil {
				return err
			}
			continue
		}
		if doc.ETag != have {
			if cbErr := onChange(doc); cbErr != nil {
				if err := fail(cbErr); err != nil {
					return err
				}
				continue
			}
			have = doc.ETag
		}
		if err != nil { // read, but not written to the cache directory
			if opts.OnError != nil {
				opts.OnError(err, 0)
			}
		}
		backoff, quick = opts.MinBackoff, false
		if opts.OnContact != nil {
			opts.OnContact(doc)
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return errors.New("client: watch ended") // not reached
}

// jitter returns a random duration in [d/2, d].
func jitter(d time.Duration) time.Duration {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil || d < 2 {
		return d
	}
	half := d / 2
	return half + time.Duration(binary.BigEndian.Uint64(b[:])%uint64(d-half+1))
}
