// Package storespec opens a key-ring store from a URL-like store spec, the form operators use
// in flags and environment variables:
//
//	file:./data                       the embedded file store (one folder per ring)
//	redis://user@host:6379/0?key=DataProtection-Keys
//	rediss://…, redis+sentinel://…, redis+cluster://…
//	vault://host:8200/secret/dpkeyring?auth=approle&transit=dataprotection
//
// Secrets never need to be on the command line: each backend reads passwords and tokens from
// files or environment variables named in its documentation (docs/backends.md).
package storespec

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/dpkeyring/dpkeyring/store"
	"github.com/dpkeyring/dpkeyring/store/filestore"
	"github.com/dpkeyring/dpkeyring/store/redisstore"
	"github.com/dpkeyring/dpkeyring/store/vaultstore"
)

// Store is the whole store contract (see package store).
type Store = store.Store

var (
	_ Store = (*filestore.Store)(nil)
	_ Store = (*redisstore.Store)(nil)
	_ Store = (*vaultstore.Store)(nil)
)

// IsSpec reports whether s looks like a store spec (a known scheme) rather than a file path.
func IsSpec(s string) bool {
	scheme, _, ok := strings.Cut(s, ":")
	if !ok {
		return false
	}
	switch scheme {
	case "file", "redis", "rediss", "redis+sentinel", "rediss+sentinel", "redis+cluster", "rediss+cluster", "vault", "vaults":
		return true
	}
	return false
}

// Open opens the store a spec names. getenv supplies environment variables (secrets by env).
// It returns an error wrapping [store.ErrInvalidSpec] for a spec it cannot understand, and the
// backend's errors ([store.ErrUnavailable], [store.ErrPermission]) when opening fails.
func Open(ctx context.Context, spec string, getenv func(string) string) (Store, error) {
	if !IsSpec(spec) {
		return nil, fmt.Errorf("%w: %q: expected file:DIR, redis://…, rediss://…, redis+sentinel://…, redis+cluster://… or vault://…", store.ErrInvalidSpec, spec)
	}
	u, err := url.Parse(spec)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", store.ErrInvalidSpec, redactURLError(err))
	}
	switch u.Scheme {
	case "file":
		cfg, err := filestore.ParseURL(u, getenv)
		if err != nil {
			return nil, err
		}
		return filestore.Open(ctx, cfg)
	case "redis", "rediss", "redis+sentinel", "rediss+sentinel", "redis+cluster", "rediss+cluster":
		cfg, err := redisstore.ParseURL(u, getenv)
		if err != nil {
			return nil, err
		}
		return redisstore.Open(ctx, cfg)
	case "vault", "vaults":
		cfg, err := vaultstore.ParseURL(u, getenv)
		if err != nil {
			return nil, err
		}
		return vaultstore.Open(ctx, cfg)
	}
	return nil, fmt.Errorf("%w: unknown scheme %q", store.ErrInvalidSpec, u.Scheme)
}

// Redact returns spec with any password in its user info replaced, for messages and logs.
func Redact(spec string) string {
	u, err := url.Parse(spec)
	if err != nil || u.User == nil {
		return spec
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "REDACTED")
	}
	return u.String()
}

// redactURLError drops the URL text from a url.Parse error, which may contain a password.
func redactURLError(err error) string {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err.Error()
	}
	return "malformed URL"
}
