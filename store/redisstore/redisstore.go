package redisstore

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dpkeyring/dpkeyring/keyring"
	"github.com/dpkeyring/dpkeyring/store"
)

// ErrTTL reports a Lock with a lease duration that is not positive.
var ErrTTL = errors.New("redisstore: lease ttl must be positive")

// Store is a key-ring store in Redis. It is safe for concurrent use.
type Store struct {
	cfg          Config
	uc           redis.UniversalClient
	single       *redis.Client        // standalone and Sentinel
	cluster      *redis.ClusterClient // Cluster
	waitReplicas int
	waitTimeout  time.Duration
}

// ringKeys are the Redis keys of one ring. All share the list key's hash slot: the companion
// keys carry the list key as hash tag ("{DataProtection-Keys}:version" hashes exactly like
// "DataProtection-Keys"), or, when the list key has a hash tag of its own, append to it.
type ringKeys struct {
	list    string // the list ASP.NET Core reads: compact XML elements, appended with RPUSH
	version string // counter of our appends
	names   string // hash: element name -> sha256 hex of its compact XML
	lease   string // "token|owner", with an expiry (the only key with a TTL)
	token   string // highest fencing token granted
	meta    string // hash: data, version
}

func keysFor(list string) ringKeys {
	base := "{" + list + "}"
	if hasHashTag(list) {
		base = list
	}
	return ringKeys{
		list:    list,
		version: base + ":version",
		names:   base + ":names",
		lease:   base + ":lease",
		token:   base + ":token",
		meta:    base + ":meta",
	}
}

// hasHashTag reports whether Redis Cluster hashes only part of key: the part between the first
// '{' and the first '}' after it, when that part is not empty.
func hasHashTag(key string) bool {
	i := strings.IndexByte(key, '{')
	if i < 0 {
		return false
	}
	j := strings.IndexByte(key[i+1:], '}')
	return j > 0
}

// Open connects to Redis as cfg says and checks the connection. It does not log; call
// [Store.Check] for configuration warnings. Errors wrap store.ErrInvalidSpec (bad config,
// unreadable TLS files), store.ErrPermission (authentication refused) or
// store.ErrUnavailable (server unreachable), naming the address.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	for _, k := range append(slices.Collect(mapValues(cfg.Keys)), cfg.prefix()) {
		if strings.ContainsAny(k, "{}") && !hasHashTag(k) {
			return nil, fmt.Errorf("%w: redis: list key %q has an unbalanced '{' or '}'", store.ErrInvalidSpec, k)
		}
	}
	tlsConf, err := cfg.tlsConfig()
	if err != nil {
		return nil, err
	}
	dial := cfg.DialTimeout
	if dial == 0 {
		dial = DefaultDialTimeout
	}
	s := &Store{cfg: cfg, waitTimeout: cfg.WaitTimeout}
	if s.waitTimeout == 0 {
		s.waitTimeout = DefaultWaitTimeout
	}
	// Reads must outlast a WAIT sent in the same pipeline.
	readTimeout := max(3*time.Second, s.waitTimeout+time.Second)
	switch cfg.Mode {
	case ModeStandalone:
		s.single = redis.NewClient(&redis.Options{
			Addr: cfg.Addrs[0], DB: cfg.DB, Username: cfg.Username, Password: cfg.Password,
			TLSConfig: tlsConf, DialTimeout: dial, ReadTimeout: readTimeout,
			DisableIdentity: true, Protocol: 2,
		})
		s.uc = s.single
	case ModeSentinel:
		s.single = redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName: cfg.MasterName, SentinelAddrs: cfg.Addrs,
			SentinelUsername: cfg.SentinelUsername, SentinelPassword: cfg.SentinelPassword,
			DB: cfg.DB, Username: cfg.Username, Password: cfg.Password,
			TLSConfig: tlsConf, DialTimeout: dial, ReadTimeout: readTimeout,
			DisableIdentity: true, Protocol: 2,
		})
		s.uc = s.single
	case ModeCluster:
		s.cluster = redis.NewClusterClient(&redis.ClusterOptions{
			Addrs: cfg.Addrs, Username: cfg.Username, Password: cfg.Password,
			TLSConfig: tlsConf, DialTimeout: dial, ReadTimeout: readTimeout,
			DisableIdentity: true, Protocol: 2,
		})
		s.uc = s.cluster
	}
	if err := s.ping(ctx); err != nil {
		_ = s.uc.Close()
		return nil, err
	}
	switch s.waitReplicas = cfg.WaitReplicas; s.waitReplicas {
	case WaitNone:
		s.waitReplicas = 0
	case 0:
		n, err := s.minConnectedReplicas(ctx)
		if err != nil {
			_ = s.uc.Close()
			return nil, err
		}
		s.waitReplicas = min(n, 1)
	}
	return s, nil
}

func mapValues(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for _, v := range m {
			if !yield(v) {
				return
			}
		}
	}
}

func (c Config) tlsConfig() (*tls.Config, error) {
	if !c.TLS {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.TLSServerName}
	if c.TLSInsecureSkipVerify {
		tc.InsecureSkipVerify = true
	}
	if c.TLSCAFile != "" {
		pem, err := os.ReadFile(c.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("%w: redis: tls_ca_file: %w", store.ErrInvalidSpec, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: redis: tls_ca_file %s holds no PEM certificate", store.ErrInvalidSpec, c.TLSCAFile)
		}
		tc.RootCAs = pool
	}
	if c.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("%w: redis: tls_cert_file/tls_key_file: %w", store.ErrInvalidSpec, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// ping checks that every master answers (for Cluster, every shard's master).
func (s *Store) ping(ctx context.Context) error {
	var err error
	if s.cluster != nil {
		err = s.cluster.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			if err := c.Ping(ctx).Err(); err != nil {
				return fmt.Errorf("%s: %w", c.Options().Addr, err)
			}
			return nil
		})
	} else {
		err = s.single.Ping(ctx).Err()
	}
	if err == nil {
		return nil
	}
	where := strings.Join(s.cfg.Addrs, ",")
	if s.cfg.Mode == ModeSentinel {
		where = "master " + s.cfg.MasterName + " via sentinels " + where
	}
	if isAuthError(err) {
		user := s.cfg.Username
		if user == "" {
			user = "default"
		}
		return fmt.Errorf("%w: redis: authentication as user %q at %s refused: %v", store.ErrPermission, user, where, err)
	}
	return fmt.Errorf("%w: redis: cannot reach %s: %v", store.ErrUnavailable, where, err)
}

// minConnectedReplicas returns the smallest number of replicas connected to a master.
func (s *Store) minConnectedReplicas(ctx context.Context) (int, error) {
	least := -1
	count := func(ctx context.Context, c *redis.Client) error {
		info, err := c.Info(ctx, "replication").Result()
		if err != nil {
			return s.fail("INFO replication", c.Options().Addr, err)
		}
		n := 0
		for line := range strings.SplitSeq(info, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "connected_slaves:"); ok {
				n, _ = strconv.Atoi(v)
			}
		}
		if least < 0 || n < least {
			least = n
		}
		return nil
	}
	masters, err := s.masters(ctx)
	if err != nil {
		return 0, s.fail("INFO replication", "", err)
	}
	for _, c := range masters {
		if err = count(ctx, c); err != nil {
			break
		}
	}
	if err != nil {
		return 0, err
	}
	return max(least, 0), nil
}

// Close releases the connections.
func (s *Store) Close() error { return s.uc.Close() }

// WaitReplicas returns how many replicas must acknowledge each write (0: none).
func (s *Store) WaitReplicas() int { return s.waitReplicas }

func (s *Store) keys(ring string) (ringKeys, error) {
	if err := store.ValidRingName(ring); err != nil {
		return ringKeys{}, err
	}
	return keysFor(s.cfg.ListKey(ring)), nil
}

// List returns every element of ring in list order, with the ring's version (the count of
// appends made through this store plus the list's length, so an element RPUSHed by ASP.NET
// Core itself changes it too). Elements not appended through the store are named with
// keyring.ElementName, or "unknown-" and 16 hex digits of their sha256 when that fails.
// Errors wrap store.ErrNotFound (no element), store.ErrInvalidName, store.ErrUnavailable or
// store.ErrPermission.
func (s *Store) List(ctx context.Context, ring string) (store.Snapshot, error) {
	k, err := s.keys(ring)
	if err != nil {
		return store.Snapshot{}, err
	}
	raw, names, counter, err := s.read(ctx, k)
	if err != nil {
		return store.Snapshot{}, err
	}
	if len(raw) == 0 {
		return store.Snapshot{}, fmt.Errorf("%w: redis: ring %q (list %q is empty or missing)", store.ErrNotFound, ring, k.list)
	}
	byHash := make(map[string]string, len(names))
	for name, sum := range names {
		if other, ok := byHash[sum]; !ok || name < other {
			byHash[sum] = name
		}
	}
	snap := store.Snapshot{Version: counter + uint64(len(raw)), Elements: make([]store.Element, 0, len(raw))}
	seen := make(map[string]bool, len(raw))
	for _, x := range raw {
		sum := sha256Hex(x)
		if seen[sum] {
			continue // the very same bytes pushed twice: one element
		}
		seen[sum] = true
		name, ok := byHash[sum]
		if !ok {
			name = foreignName(x)
		}
		snap.Elements = append(snap.Elements, store.Element{Name: name, XML: []byte(x)})
	}
	return snap, nil
}

// read returns the raw list, the names hash and the append counter, atomically.
func (s *Store) read(ctx context.Context, k ringKeys) ([]string, map[string]string, uint64, error) {
	var lr *redis.StringSliceCmd
	var hn *redis.MapStringStringCmd
	var gv *redis.StringCmd
	_, err := s.uc.TxPipelined(ctx, func(p redis.Pipeliner) error {
		lr = p.LRange(ctx, k.list, 0, -1)
		hn = p.HGetAll(ctx, k.names)
		gv = p.Get(ctx, k.version)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, nil, 0, s.fail("LRANGE", k.list, err)
	}
	var counter uint64
	if v, err := gv.Result(); err == nil {
		counter, err = strconv.ParseUint(v, 10, 64)
		if err != nil {
			return nil, nil, 0, fmt.Errorf("%w: redis: %s holds %q, not a counter", store.ErrUnavailable, k.version, v)
		}
	}
	return lr.Val(), hn.Val(), counter, nil
}

// foreignName names an element written by someone else (ASP.NET Core itself).
func foreignName(x string) string {
	if name, err := keyring.ElementName([]byte(x)); err == nil && store.ValidElementName(name) == nil {
		return name
	}
	return "unknown-" + sha256Hex(x)[:16]
}

func sha256Hex(x string) string {
	sum := sha256.Sum256([]byte(x))
	return hex.EncodeToString(sum[:])
}

// Append adds e to the ring's list (RPUSH, in the compact form ASP.NET Core writes) unless an
// element of that name is there already: the same XML again is a no-op that returns the
// current version, other XML fails with store.ErrExists. A non-zero fence must be the ring's
// current lease token (checked in the same script as the write), else store.ErrFenced. With
// WaitReplicas > 0 the write must also be acknowledged by that many replicas, else
// store.ErrUnavailable (the element may then be on the master only: retry the Append).
// XML that is not one element fails with an error wrapping store.ErrInvalidName.
func (s *Store) Append(ctx context.Context, ring string, e store.Element, fence store.Fence) (uint64, error) {
	k, err := s.keys(ring)
	if err != nil {
		return 0, err
	}
	if err := store.ValidElementName(e.Name); err != nil {
		return 0, err
	}
	compact, err := keyring.CompactXML(e.XML)
	if err != nil {
		return 0, fmt.Errorf("%w: element %q is not one XML element: %w", store.ErrInvalidName, e.Name, err)
	}
	sum := sha256Hex(string(compact))
	checked, present := int64(-1), false
	var backfill []any
	for range 8 {
		args := []any{uint64(fence), e.Name, sum, compact, checked, boolArg(present)}
		args = append(args, backfill...)
		res, err := s.eval(ctx, appendScript, []string{k.list, k.version, k.names, k.token}, true, args...)
		if err != nil {
			return 0, s.fail("append to", k.list, err)
		}
		switch res[0] {
		case "ok", "same":
			return parseUint(res, 1)
		case "exists":
			return 0, fmt.Errorf("%w: redis: element %q of ring %q (list %q)", store.ErrExists, e.Name, ring, k.list)
		case "fenced":
			return 0, fmt.Errorf("%w: redis: ring %q: fence %d, current token %s", store.ErrFenced, ring, fence, res[1])
		case "check":
			// The list holds elements that are not in the names hash (pushed by ASP.NET Core
			// itself): name them here, then try again if the list is still as read.
			raw, names, _, err := s.read(ctx, k)
			if err != nil {
				return 0, err
			}
			var conflict bool
			present, conflict, backfill = nameForeign(raw, names, e.Name, compact)
			if conflict && !present {
				return 0, fmt.Errorf("%w: redis: element %q of ring %q (list %q, written by another client)", store.ErrExists, e.Name, ring, k.list)
			}
			checked = int64(len(raw))
		default:
			return 0, fmt.Errorf("%w: redis: unexpected script reply %q", store.ErrUnavailable, res)
		}
	}
	return 0, fmt.Errorf("%w: redis: list %q keeps changing under foreign writers", store.ErrUnavailable, k.list)
}

// nameForeign names the list elements missing from the names hash. It reports whether one of
// them is named name and equals compact (present) or is named name and differs (conflict), and
// returns name/sha pairs safe to record in the hash: elements already in compact form whose
// name no other element shares.
func nameForeign(raw []string, names map[string]string, name string, compact []byte) (present, conflict bool, backfill []any) {
	known := make(map[string]bool, len(names))
	for _, sum := range names {
		known[sum] = true
	}
	type foreign struct{ raw, sum string }
	byName := map[string][]foreign{}
	var order []string
	for _, x := range raw {
		sum := sha256Hex(x)
		if known[sum] {
			continue
		}
		n := foreignName(x)
		if _, ok := byName[n]; !ok {
			order = append(order, n)
		}
		byName[n] = append(byName[n], foreign{x, sum})
	}
	for _, f := range byName[name] {
		if c, err := keyring.CompactXML([]byte(f.raw)); err == nil && string(c) == string(compact) {
			present = true
		} else {
			conflict = true
		}
	}
	for _, n := range order {
		fs := byName[n]
		if _, ok := names[n]; ok || n == name {
			continue
		}
		distinct := true
		for _, f := range fs[1:] {
			distinct = distinct && f.sum == fs[0].sum
		}
		if !distinct {
			continue
		}
		if c, err := keyring.CompactXML([]byte(fs[0].raw)); err != nil || string(c) != fs[0].raw {
			continue
		}
		backfill = append(backfill, n, fs[0].sum)
	}
	return present, conflict, backfill
}

func boolArg(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func parseUint(res []string, i int) (uint64, error) {
	if len(res) <= i {
		return 0, fmt.Errorf("%w: redis: short script reply %q", store.ErrUnavailable, res)
	}
	v, err := strconv.ParseUint(res[i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: redis: script reply %q: %v", store.ErrUnavailable, res, err)
	}
	return v, nil
}

// Lock grants owner a lease on ring for ttl with a fencing token one above the highest ever
// granted on the ring, or renews owner's own unexpired lease (same token, new expiry).
// Another owner's unexpired lease fails with store.ErrLocked naming that owner. Only the
// lease key expires; the token counter is kept forever.
func (s *Store) Lock(ctx context.Context, ring, owner string, ttl time.Duration) (store.Lease, error) {
	k, err := s.keys(ring)
	if err != nil {
		return store.Lease{}, err
	}
	if ttl <= 0 {
		return store.Lease{}, fmt.Errorf("%w: %s", ErrTTL, ttl)
	}
	if owner == "" {
		return store.Lease{}, errors.New("redisstore: empty lease owner")
	}
	ms := max(ttl.Milliseconds(), 1)
	start := time.Now()
	res, err := s.eval(ctx, lockScript, []string{k.lease, k.token}, true, owner, ms)
	if err != nil {
		return store.Lease{}, s.fail("lock", k.lease, err)
	}
	switch res[0] {
	case "granted", "renewed":
		tok, err := parseUint(res, 1)
		if err != nil {
			return store.Lease{}, err
		}
		return store.Lease{Ring: ring, Owner: owner, Token: store.Fence(tok), Expires: start.Add(ttl)}, nil
	case "locked":
		if len(res) < 3 {
			return store.Lease{}, fmt.Errorf("%w: redis: short script reply %q", store.ErrUnavailable, res)
		}
		pttl, _ := strconv.ParseInt(res[2], 10, 64)
		until := time.Now().Add(time.Duration(pttl) * time.Millisecond)
		return store.Lease{}, fmt.Errorf("%w: ring %q is held by %q until %s", store.ErrLocked, ring, res[1], until.UTC().Format(time.RFC3339Nano))
	}
	return store.Lease{}, fmt.Errorf("%w: redis: unexpected script reply %q", store.ErrUnavailable, res)
}

// Unlock releases l if its token is still the ring's current one (the counter is kept), else
// fails with store.ErrFenced.
func (s *Store) Unlock(ctx context.Context, l store.Lease) error {
	k, err := s.keys(l.Ring)
	if err != nil {
		return err
	}
	res, err := s.eval(ctx, unlockScript, []string{k.lease, k.token}, false, uint64(l.Token))
	if err != nil {
		return s.fail("unlock", k.lease, err)
	}
	if res[0] == "fenced" {
		return fmt.Errorf("%w: redis: ring %q: lease token %d, current token %s", store.ErrFenced, l.Ring, l.Token, res[1])
	}
	return nil
}

// Meta returns ring's metadata record, or an error wrapping store.ErrNotFound if it has none.
func (s *Store) Meta(ctx context.Context, ring string) (store.Meta, error) {
	k, err := s.keys(ring)
	if err != nil {
		return store.Meta{}, err
	}
	vals, err := s.uc.HMGet(ctx, k.meta, "data", "version").Result()
	if err != nil {
		return store.Meta{}, s.fail("HMGET", k.meta, err)
	}
	data, _ := vals[0].(string)
	ver, _ := vals[1].(string)
	if ver == "" {
		return store.Meta{}, fmt.Errorf("%w: redis: metadata of ring %q (%s)", store.ErrNotFound, ring, k.meta)
	}
	v, err := strconv.ParseUint(ver, 10, 64)
	if err != nil {
		return store.Meta{}, fmt.Errorf("%w: redis: %s version %q is not a number", store.ErrUnavailable, k.meta, ver)
	}
	return store.Meta{Data: []byte(data), Version: v}, nil
}

// PutMeta replaces ring's metadata if its version is expect (0: no record yet), else fails
// with store.ErrConflict; a non-zero fence must be the current lease token (store.ErrFenced).
// It returns the new version. Like Append, it waits for replicas (store.ErrUnavailable when
// they do not acknowledge; the record may then be written: read it back before retrying).
func (s *Store) PutMeta(ctx context.Context, ring string, data []byte, expect uint64, fence store.Fence) (uint64, error) {
	k, err := s.keys(ring)
	if err != nil {
		return 0, err
	}
	res, err := s.eval(ctx, putMetaScript, []string{k.meta, k.token}, true, uint64(fence), data, expect)
	if err != nil {
		return 0, s.fail("put metadata", k.meta, err)
	}
	switch res[0] {
	case "ok":
		return parseUint(res, 1)
	case "conflict":
		return 0, fmt.Errorf("%w: redis: metadata of ring %q is at version %s, not %d", store.ErrConflict, ring, res[1], expect)
	case "fenced":
		return 0, fmt.Errorf("%w: redis: ring %q: fence %d, current token %s", store.ErrFenced, ring, fence, res[1])
	}
	return 0, fmt.Errorf("%w: redis: unexpected script reply %q", store.ErrUnavailable, res)
}

// Rings returns the sorted names of the rings that have a list or a metadata record: the
// list under the key prefix itself is ring "default", a list "<prefix>:R" is ring R, and each
// ring configured with its own key is looked up directly.
func (s *Store) Rings(ctx context.Context) ([]string, error) {
	prefix := s.cfg.prefix()
	byKey := map[string]string{}
	for ring, key := range s.cfg.Keys {
		byKey[key] = ring
	}
	found := map[string]bool{}
	add := func(ring string) {
		if _, overridden := s.cfg.Keys[ring]; overridden {
			return // its data lives under its own key, looked up below
		}
		if store.ValidRingName(ring) == nil {
			found[ring] = true
		}
	}
	// SCAN patterns treat only * ? [ ] \ as special; Validate rejects those in the prefix.
	err := s.scan(ctx, prefix+"*", func(key string) {
		if key == prefix {
			add(DefaultRing)
		} else if r, ok := strings.CutPrefix(key, prefix+":"); ok {
			add(r)
		}
	})
	if err == nil {
		err = s.scan(ctx, "{"+prefix+"*:meta", func(key string) {
			switch list := strings.TrimSuffix(strings.TrimPrefix(key, "{"), "}:meta"); {
			case !strings.HasSuffix(key, "}:meta"):
			case list == prefix:
				add(DefaultRing)
			default:
				if r, ok := strings.CutPrefix(list, prefix+":"); ok {
					add(r)
				}
			}
		})
	}
	if err != nil {
		return nil, s.fail("SCAN", prefix+"*", err)
	}
	for ring, key := range s.cfg.Keys {
		k := keysFor(key)
		n, err := s.uc.Exists(ctx, k.list).Result()
		if err == nil && n == 0 {
			n, err = s.uc.Exists(ctx, k.meta).Result()
		}
		if err != nil {
			return nil, s.fail("EXISTS", k.list, err)
		}
		if n > 0 {
			found[ring] = true
		}
	}
	rings := make([]string, 0, len(found))
	for r := range found {
		rings = append(rings, r)
	}
	slices.Sort(rings)
	return rings, nil
}

// scan calls fn with every key matching pattern on every master.
func (s *Store) scan(ctx context.Context, pattern string, fn func(string)) error {
	each := func(ctx context.Context, c *redis.Client) error {
		var cursor uint64
		for {
			keys, next, err := c.Scan(ctx, cursor, pattern, 1000).Result()
			if err != nil {
				return err
			}
			for _, k := range keys {
				fn(k)
			}
			if next == 0 {
				return nil
			}
			cursor = next
		}
	}
	masters, err := s.masters(ctx)
	if err != nil {
		return err
	}
	for _, c := range masters {
		if err := each(ctx, c); err != nil {
			return err
		}
	}
	return nil
}

// eval runs a write script on the master holding keys[0] and, when wait is set and the store
// waits for replicas, a WAIT on the same connection in the same round trip (WAIT covers the
// writes of its own connection only). A write the replicas did not acknowledge is an error.
func (s *Store) eval(ctx context.Context, sc *redis.Script, keys []string, wait bool, args ...any) ([]string, error) {
	var lastErr error
	for attempt := range 6 {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(time.Duration(attempt) * 100 * time.Millisecond):
			}
		}
		c := s.single
		if s.cluster != nil {
			var err error
			if c, err = s.cluster.MasterForKey(ctx, keys[0]); err != nil {
				return nil, err
			}
		}
		pipe := c.Pipeline()
		ev := pipe.EvalSha(ctx, sc.Hash(), keys, args...)
		var w *redis.Cmd
		if wait && s.waitReplicas > 0 {
			w = pipe.Do(ctx, "wait", s.waitReplicas, s.waitTimeout.Milliseconds())
		}
		_, _ = pipe.Exec(ctx)
		err := ev.Err()
		switch {
		case err == nil:
		case redis.HasErrorPrefix(err, "NOSCRIPT"):
			if err := sc.Load(ctx, c).Err(); err != nil {
				return nil, err
			}
			lastErr = err
			continue
		case s.cluster != nil && isRedirect(err):
			s.cluster.ReloadState(ctx)
			lastErr = err
			continue
		default:
			return nil, err
		}
		res, err := ev.StringSlice()
		if err != nil || len(res) == 0 {
			return nil, fmt.Errorf("unexpected script reply %v: %v", ev.Val(), err)
		}
		if w != nil && writes(res[0]) {
			n, err := w.Int64()
			if err != nil {
				return nil, fmt.Errorf("WAIT %d replicas: %w", s.waitReplicas, err)
			}
			if n < int64(s.waitReplicas) {
				return nil, fmt.Errorf("%w: written on the master %s but acknowledged by %d of %d replicas within %s",
					errNotReplicated, c.Options().Addr, n, s.waitReplicas, s.waitTimeout)
			}
		}
		return res, nil
	}
	return nil, lastErr
}

var errNotReplicated = errors.New("not replicated")

// writes reports whether a script reply means the script wrote something.
func writes(status string) bool {
	switch status {
	case "ok", "same", "granted", "renewed":
		return true
	}
	return false
}

func isRedirect(err error) bool {
	for _, p := range []string{"MOVED", "ASK", "CLUSTERDOWN", "TRYAGAIN"} {
		if redis.HasErrorPrefix(err, p) {
			return true
		}
	}
	return false
}

func isAuthError(err error) bool {
	for _, p := range []string{"WRONGPASS", "NOAUTH", "NOPERM"} {
		if redis.HasErrorPrefix(err, p) || strings.Contains(err.Error(), p) {
			return true
		}
	}
	return false
}

// fail wraps a Redis error in the store sentinel for it, naming the operation and the key.
func (s *Store) fail(op, key string, err error) error {
	switch {
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, store.ErrPermission):
		return err
	case redis.HasErrorPrefix(err, "NOPERM"), strings.Contains(err.Error(), "user executing the script can't"):
		user := s.cfg.Username
		if user == "" {
			user = "default"
		}
		return fmt.Errorf("%w: redis: %s %q: ACL user %q lacks the command or key permission: %v", store.ErrPermission, op, key, user, err)
	case isAuthError(err):
		return fmt.Errorf("%w: redis: %s %q: authentication refused: %v", store.ErrPermission, op, key, err)
	case redis.HasErrorPrefix(err, "WRONGTYPE"):
		return fmt.Errorf("%w: redis: %s %q: the key holds another type than this store writes: %v", store.ErrUnavailable, op, key, err)
	}
	return fmt.Errorf("%w: redis: %s %q: %w", store.ErrUnavailable, op, key, err)
}
