package vaultstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/dpkeyring/dpkeyring/store"
)

// errCAS reports a KV v2 write whose check-and-set version did not match (for cas=0: the secret
// already exists). It never leaves the package: callers turn it into the store sentinel that
// fits.
var errCAS = errors.New("vaultstore: check-and-set mismatch")

// entry is one version of a KV v2 secret.
type entry struct {
	data    map[string]any
	version uint64
	created time.Time
}

func (s *Store) dataPath(p string) string { return s.cfg.Mount + "/data/" + p }
func (s *Store) metaPath(p string) string { return s.cfg.Mount + "/metadata/" + p }

func (s *Store) ringsPath() string               { return s.cfg.Prefix + "/rings" }
func (s *Store) ringPath(ring string) string     { return s.ringsPath() + "/" + ring }
func (s *Store) elementsPath(ring string) string { return s.ringPath(ring) + "/elements" }
func (s *Store) elementPath(ring, name string) string {
	return s.elementsPath(ring) + "/" + name
}
func (s *Store) counterPath(ring string) string    { return s.ringPath(ring) + "/version" }
func (s *Store) metaRecordPath(ring string) string { return s.ringPath(ring) + "/meta" }
func (s *Store) leasePath(ring string) string      { return s.ringPath(ring) + "/lease" }

// fail turns an error from vault/api into one wrapping the store sentinel that fits, naming the
// Vault path and the capability the operation needs.
func (s *Store) fail(err error, capability, path string) error {
	var re *api.ResponseError
	if errors.As(err, &re) {
		msg := strings.Join(re.Errors, "; ")
		switch {
		case re.StatusCode == http.StatusForbidden:
			return fmt.Errorf("%w: vault refused %q on %s: the token lacks the %q capability there or is invalid/expired (%s)",
				store.ErrPermission, capability, path, capability, msg)
		case re.StatusCode >= 500 || re.StatusCode == http.StatusTooManyRequests:
			return fmt.Errorf("%w: vault at %s answered %d to %q on %s (%s)",
				store.ErrUnavailable, s.cfg.Address, re.StatusCode, capability, path, msg)
		}
		return fmt.Errorf("vaultstore: %q on %s: vault answered %d (%s)", capability, path, re.StatusCode, msg)
	}
	return fmt.Errorf("%w: vault at %s: %q on %s: %w", store.ErrUnavailable, s.cfg.Address, capability, path, err)
}

func isCASMismatch(err error) bool {
	var re *api.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusBadRequest {
		return false
	}
	for _, e := range re.Errors {
		if strings.Contains(e, "check-and-set") {
			return true
		}
	}
	return false
}

// read returns the current version of the KV secret at p (relative to the mount), or nil if
// there is none (never written, or its current version deleted).
func (s *Store) read(ctx context.Context, p string) (*entry, error) {
	sec, err := s.client.Logical().ReadWithContext(ctx, s.dataPath(p))
	if err != nil {
		return nil, s.fail(err, "read", s.dataPath(p))
	}
	if sec == nil || sec.Data == nil {
		return nil, nil
	}
	data, _ := sec.Data["data"].(map[string]any)
	if data == nil {
		return nil, nil
	}
	e := &entry{data: data}
	if md, ok := sec.Data["metadata"].(map[string]any); ok {
		e.version, _ = toUint(md["version"])
		if ct, ok := md["created_time"].(string); ok {
			e.created, _ = time.Parse(time.RFC3339Nano, ct)
		}
	}
	return e, nil
}

// write stores data at p with check-and-set version cas (0: create only) and returns the new
// KV version. A mismatch returns errCAS.
func (s *Store) write(ctx context.Context, p string, data map[string]any, cas uint64) (uint64, error) {
	sec, err := s.client.Logical().WriteWithContext(ctx, s.dataPath(p), map[string]any{
		"options": map[string]any{"cas": cas},
		"data":    data,
	})
	if err != nil {
		if isCASMismatch(err) {
			return 0, errCAS
		}
		capability := "update"
		if cas == 0 {
			capability = "create"
		}
		return 0, s.fail(err, capability, s.dataPath(p))
	}
	if sec == nil {
		return 0, fmt.Errorf("vaultstore: write %s: empty response", s.dataPath(p))
	}
	v, _ := toUint(sec.Data["version"])
	return v, nil
}

// list returns the names directly under p (folders keep their trailing "/"), nil if none.
func (s *Store) list(ctx context.Context, p string) ([]string, error) {
	sec, err := s.client.Logical().ListWithContext(ctx, s.metaPath(p))
	if err != nil {
		return nil, s.fail(err, "list", s.metaPath(p))
	}
	if sec == nil || sec.Data == nil {
		return nil, nil
	}
	raw, _ := sec.Data["keys"].([]any)
	names := make([]string, 0, len(raw))
	for _, k := range raw {
		if n, ok := k.(string); ok {
			names = append(names, n)
		}
	}
	return names, nil
}

// toUint reads a JSON number as vault/api decodes it (json.Number) or as Go marshals it.
func toUint(v any) (uint64, bool) {
	switch n := v.(type) {
	case json.Number:
		u, err := strconv.ParseUint(n.String(), 10, 64)
		return u, err == nil
	case float64:
		if n < 0 {
			return 0, false
		}
		return uint64(n), true
	case string:
		u, err := strconv.ParseUint(n, 10, 64)
		return u, err == nil
	case uint64:
		return n, true
	case int:
		return uint64(n), n >= 0
	}
	return 0, false
}
