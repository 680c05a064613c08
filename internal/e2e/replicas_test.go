package e2e_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dpkeyring/dpkeyring/internal/storespec"
	"github.com/dpkeyring/dpkeyring/keyring"
	"github.com/dpkeyring/dpkeyring/store"
)

// backend is a store the replicas share.
type backend struct {
	spec string   // store spec (serve --store)
	env  []string // environment of the servers (secrets)
}

func (b backend) getenv(k string) string {
	for _, kv := range b.env {
		if name, v, ok := strings.Cut(kv, "="); ok && name == k {
			return v
		}
	}
	return ""
}

func randomName(t testing.TB, prefix string) string {
	t.Helper()
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return prefix + hex.EncodeToString(b[:])
}

func redisBackend(t testing.TB, addr string) backend {
	return backend{spec: "redis://" + addr + "/0?prefix=" + randomName(t, "dpk-e2e-")}
}

// vaultBackend is a KV v2 path under secret/ with Transit key transitKey. (Without Transit the
// rotator cannot create keys on Vault: vaultstore's NewMasterKey answers ErrNoTransit and
// rotation treats that as a failure instead of falling back to crypto/rand.)
func vaultBackend(t testing.TB, addr, token, transitKey string) backend {
	host := strings.TrimPrefix(strings.TrimPrefix(addr, "http://"), "https://")
	spec := "vault://" + host + "/secret/" + randomName(t, "dpk-e2e-") + "?timeout=5s"
	if transitKey != "" {
		spec += "&transit=" + transitKey
	}
	return backend{spec: spec, env: []string{"VAULT_TOKEN=" + token}}
}

func envRedis(t testing.TB) backend {
	addr := os.Getenv("KEYRING_TEST_REDIS_ADDR")
	requireServer(t, addr != "", "KEYRING_TEST_REDIS_ADDR is not set (run .ci/redis.sh start DIR)")
	return redisBackend(t, addr)
}

func envVault(t testing.TB) backend {
	addr, token := os.Getenv("KEYRING_TEST_VAULT_ADDR"), os.Getenv("KEYRING_TEST_VAULT_TOKEN")
	requireServer(t, addr != "" && token != "", "KEYRING_TEST_VAULT_ADDR and KEYRING_TEST_VAULT_TOKEN are not set (run .ci/vault-server.sh start DIR)")
	return vaultBackend(t, addr, token, os.Getenv("KEYRING_TEST_VAULT_TRANSIT_KEY"))
}

// replicas is a set of servers sharing one store and one tokens file.
type replicas struct {
	servers []*server
	ring    string
	admin   string // admin token valid on every replica
	node    string // node token valid on every replica
}

// startReplicas starts n servers of ring on b at the same time, each with its own data folder
// holding a copy of the same tokens file.
func startReplicas(t testing.TB, b backend, n int, ring string) *replicas {
	t.Helper()
	return startReplicasArgs(t, b, n, ring)
}

// startReplicasArgs is startReplicas with extra serve flags.
func startReplicasArgs(t testing.TB, b backend, n int, ring string, extra ...string) *replicas {
	t.Helper()
	first := t.TempDir()
	rs := &replicas{ring: ring}
	rs.admin = createToken(t, first, "admin", "e2e-admin")
	rs.node = createToken(t, first, "node", "e2e-node")
	tokens, err := os.ReadFile(filepath.Join(first, "tokens.json"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		data := first
		if i > 0 {
			data = t.TempDir()
			if err := os.WriteFile(filepath.Join(data, "tokens.json"), tokens, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		rs.servers = append(rs.servers, startServerAsync(t, serverOptions{data: data, env: b.env,
			args: append([]string{"--store", b.spec, "--ring", ring}, extra...)}))
	}
	for _, s := range rs.servers {
		s.wait(t)
	}
	return rs
}

// openStore opens b in this process (to check and seed it).
func openStore(t testing.TB, b backend) storespec.Store {
	t.Helper()
	st, err := storespec.Open(t.Context(), b.spec, b.getenv)
	if err != nil {
		t.Fatalf("opening %s: %v", storespec.Redact(b.spec), err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// ringKeys lists the ring in the store and parses it.
func ringKeys(t testing.TB, st storespec.Store, ring string) (*keyring.Ring, uint64) {
	t.Helper()
	snap, err := st.List(t.Context(), ring)
	if err != nil {
		t.Fatalf("listing ring %s: %v", ring, err)
	}
	elems := make([][]byte, len(snap.Elements))
	for i, e := range snap.Elements {
		elems[i] = e.XML
	}
	r, err := keyring.ParseElements(elems, keyring.ParseOptions{})
	if err != nil {
		t.Fatalf("parsing ring %s: %v", ring, err)
	}
	return r, snap.Version
}

func TestSingleWriterRedis(t *testing.T) {
	t.Parallel()
	testSingleWriter(t, envRedis(t))
}

func TestSingleWriterVault(t *testing.T) {
	t.Parallel()
	testSingleWriter(t, envVault(t))
}

// testSingleWriter: 3 replicas start at once on an empty ring and create exactly one first key;
// with that key revoked in the store (so a key is due), 50 concurrent "dpkeyring rotate" runs
// spread over the replicas create exactly one new key, and every replica's long-pollers get it.
func testSingleWriter(t *testing.T, b backend) {
	ring := randomName(t, "sw-")
	rs := startReplicas(t, b, 3, ring)
	st := openStore(t, b)

	r, _ := ringKeys(t, st, ring)
	if n := len(r.Keys()); n != 1 {
		t.Fatalf("3 replicas starting at once on an empty ring wrote %d keys, want exactly 1", n)
	}
	first := r.Keys()[0]

	// Make a key due: revoke the only key in the store directly, as another admin tool would.
	rev := keyring.Revocation{Date: time.Now().UTC(), KeyID: first.ID, Reason: "e2e: make a key due"}
	xml, err := keyring.MarshalRevocation(rev)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Append(t.Context(), ring, store.Element{Name: keyring.RevocationName(rev), XML: xml}, 0); err != nil {
		t.Fatal(err)
	}

	// Long-pollers on every replica, holding the version served now.
	type woken struct {
		replica int
		status  int
		version string
		err     error
	}
	wake := make(chan woken, len(rs.servers))
	for i, s := range rs.servers {
		first := mustDo(t, request{url: s.url + "/v1/rings/" + ring + "/keys", token: rs.node})
		if first.status != http.StatusOK {
			t.Fatalf("replica %d: GET ring: %d %s", i, first.status, first.body)
		}
		go func() {
			resp, err := request{url: s.url + "/v1/rings/" + ring + "/keys?wait=60s", token: rs.node,
				header: map[string]string{"If-None-Match": first.header.Get("ETag")}}.do(context.Background())
			wake <- woken{i, resp.status, resp.header.Get("X-Ring-Version"), err}
		}()
	}

	tokenFile := writeTokenFile(t, rs.admin)
	type outcome struct {
		result, keyID, stderr string
		code                  int
	}
	outcomes := make([]outcome, 50)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range outcomes {
		s := rs.servers[i%len(rs.servers)]
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, binary, "rotate", "--server", s.url, "--token-file", tokenFile, "--ring", ring, "--json")
			cmd.Env = childEnv()
			var errb strings.Builder
			cmd.Stderr = &errb
			out, err := cmd.Output()
			o := outcome{stderr: errb.String()}
			var ee *exec.ExitError
			switch {
			case errors.As(err, &ee):
				o.code = ee.ExitCode()
			case err != nil:
				o.code, o.stderr = -1, err.Error()
			}
			var res struct {
				Result string `json:"result"`
				KeyID  string `json:"key_id"`
			}
			if o.code == 0 {
				if err := json.Unmarshal(out, &res); err != nil {
					o.code, o.stderr = -1, fmt.Sprintf("stdout %q: %v", out, err)
				}
			}
			o.result, o.keyID = res.Result, res.KeyID
			outcomes[i] = o
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	counts := map[string]int{}
	var createdID string
	for _, o := range outcomes {
		switch {
		case o.code == 0:
			counts[o.result]++
			if o.result == "created" {
				createdID = o.keyID
			}
		case strings.Contains(o.stderr, "busy") || strings.Contains(o.stderr, "409"):
			counts["busy"]++ // another writer held the lock too long: a correct, retryable answer
		default:
			counts["failed"]++
			t.Errorf("rotate failed: exit %d: %s", o.code, o.stderr)
		}
	}
	t.Logf("50 concurrent rotate runs over 3 replicas in %s: %v", elapsed.Round(time.Millisecond), counts)
	if counts["created"] != 1 {
		t.Errorf("%d rotate runs created a key, want exactly 1 (%v)", counts["created"], counts)
	}

	r, version := ringKeys(t, st, ring)
	if n := len(r.Keys()); n != 2 {
		t.Fatalf("the store holds %d keys after the rotations, want 2 (the revoked first key and one new key)", n)
	}
	if k, err := r.DefaultKey(time.Now()); err != nil || k.ID.String() != createdID {
		t.Errorf("default key in the store = %v (%v); want the created key %s", k.ID, err, createdID)
	}

	// Every replica serves the new version, and its long-poller woke with it.
	for range rs.servers {
		select {
		case w := <-wake:
			if w.err != nil || w.status != http.StatusOK {
				t.Errorf("replica %d long-poll: status %d, %v", w.replica, w.status, w.err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("a replica's long-poller was not woken within 30s of the rotation")
		}
	}
	for i, s := range rs.servers {
		eventually(t, 10*time.Second, func() error {
			resp := mustDo(t, request{url: s.url + "/v1/rings/" + ring + "/keys", token: rs.node})
			if v := resp.header.Get("X-Ring-Version"); v != strconv.FormatUint(version, 10) {
				return fmt.Errorf("replica %d serves version %s, the store has %d", i, v, version)
			}
			return nil
		})
	}
}

// TestStoreDownRedis kills a dedicated redis-server under 3 replicas while clients read the
// ring: no read fails, the replicas answer from memory with the Warning header, readiness fails
// and writes answer 503.
func TestStoreDownRedis(t *testing.T) {
	t.Parallel()
	bin, err := exec.LookPath("redis-server")
	requireServer(t, err == nil, "redis-server is not installed (apt-get install redis-server)")
	port := freePort(t)
	dir := t.TempDir()
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--save", "", "--appendonly", "no",
		"--dir", dir, "--daemonize", "no", "--protected-mode", "no")
	cmd.Stdout, cmd.Stderr = nil, nil
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stop := killer(t, cmd)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	b := backend{spec: "redis://" + addr + "/0?dial_timeout=1s"}
	eventually(t, 20*time.Second, func() error {
		st, err := storespec.Open(t.Context(), b.spec, b.getenv)
		if err != nil {
			return err
		}
		return st.Close()
	})
	testStoreDown(t, b, stop)
}

// TestStoreDownVault does the same with a dedicated Vault dev server.
func TestStoreDownVault(t *testing.T) {
	t.Parallel()
	bin := vaultBinary()
	requireServer(t, bin != "", "no Vault binary (build it once with .ci/vault.sh, or set KEYRING_TEST_VAULT_BINARY)")
	port := freePort(t)
	home := t.TempDir()
	cmd := exec.Command(bin, "server", "-dev", "-dev-root-token-id=e2e-root", "-dev-listen-address=127.0.0.1:"+strconv.Itoa(port), "-dev-no-store-token")
	cmd.Env = append(childEnv(), "HOME="+home)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stop := killer(t, cmd)
	addr := "http://127.0.0.1:" + strconv.Itoa(port)
	eventually(t, 60*time.Second, func() error {
		r, err := request{url: addr + "/v1/sys/health"}.do(context.Background())
		if err != nil {
			return err
		}
		if r.status != http.StatusOK {
			return fmt.Errorf("vault health: %d", r.status)
		}
		return nil
	})
	for _, r := range []request{
		{method: "POST", url: addr + "/v1/sys/mounts/transit", body: `{"type":"transit"}`},
		{method: "POST", url: addr + "/v1/transit/keys/e2e", body: `{}`},
	} {
		r.header = map[string]string{"X-Vault-Token": "e2e-root"}
		if resp := mustDo(t, r); resp.status/100 != 2 {
			t.Fatalf("vault %s: %d %s", r.url, resp.status, resp.body)
		}
	}
	t.Run("never loaded", func(t *testing.T) { testNeverLoaded(t, addr, "e2e-root") })
	testStoreDown(t, vaultBackend(t, addr, "e2e-root", "e2e"), stop)
}

// vaultBinary finds the Vault binary .ci/vault.sh builds and caches.
func vaultBinary() string {
	if b := os.Getenv("KEYRING_TEST_VAULT_BINARY"); b != "" {
		return b
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache")
	}
	if p := filepath.Join(cache, "dpkeyring", "vault-v1.21.0"); fileExists(p) {
		return p
	}
	return ""
}

// killer returns a function that SIGKILLs cmd's process and waits for it (once); it also runs
// at cleanup.
func killer(t testing.TB, cmd *exec.Cmd) func() {
	var once sync.Once
	kill := func() {
		once.Do(func() {
			_ = cmd.Process.Signal(syscall.SIGKILL)
			_ = cmd.Wait()
		})
	}
	t.Cleanup(kill)
	return kill
}

func testStoreDown(t *testing.T, b backend, killStore func()) {
	ring := randomName(t, "down-")
	rs := startReplicas(t, b, 3, ring)
	ringPath := "/v1/rings/" + ring + "/keys"
	want := mustDo(t, request{url: rs.servers[0].url + ringPath, token: rs.node})
	if want.status != http.StatusOK {
		t.Fatalf("GET ring: %d %s", want.status, want.body)
	}

	// Readers: GET the ring from every replica in a loop, before and after the store dies.
	var (
		killed                     atomic.Bool
		total, afterKill, withWarn atomic.Int64
		failMu                     sync.Mutex
		failures                   []string
	)
	ctx, stopReaders := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for c := range 6 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				s := rs.servers[(c+i)%len(rs.servers)]
				wasKilled := killed.Load()
				resp, err := request{url: s.url + ringPath, token: rs.node}.do(context.Background())
				total.Add(1)
				if wasKilled {
					afterKill.Add(1)
				}
				if err == nil && resp.header.Get("Warning") != "" {
					withWarn.Add(1)
				}
				if err != nil || resp.status != http.StatusOK || string(resp.body) != string(want.body) {
					failMu.Lock()
					if err == nil {
						err = fmt.Errorf("status %d, %d bytes: %.200s", resp.status, len(resp.body), resp.body)
					}
					failures = append(failures, err.Error())
					failMu.Unlock()
				}
			}
		})
	}
	eventually(t, 20*time.Second, func() error {
		if n := total.Load(); n < 50 {
			return fmt.Errorf("only %d reads before the kill", n)
		}
		return nil
	})
	killStore()
	killed.Store(true)
	t.Logf("store killed after %d reads", total.Load())

	// Every replica notices (its refresh fails) and says so in the Warning header.
	killedAt := time.Now()
	for i, s := range rs.servers {
		eventually(t, 20*time.Second, func() error {
			resp := mustDo(t, request{url: s.url + ringPath, token: rs.node})
			if w := resp.header.Get("Warning"); !strings.Contains(w, "stale") {
				return fmt.Errorf("replica %d: GET after the store died: status %d, Warning %q", i, resp.status, w)
			}
			return nil
		})
		t.Logf("replica %d: Warning header %s after the store died", i, time.Since(killedAt).Round(10*time.Millisecond))
	}
	// Keep reading a little longer while the store stays down.
	eventually(t, 20*time.Second, func() error {
		if n := afterKill.Load(); n < 200 {
			return fmt.Errorf("only %d reads after the kill", n)
		}
		return nil
	})
	stopReaders()
	wg.Wait()
	t.Logf("%d reads, %d after the store died, %d with a Warning header, %d failed", total.Load(), afterKill.Load(), withWarn.Load(), len(failures))
	if len(failures) > 0 {
		t.Errorf("%d of %d reads failed, want none; first: %s", len(failures), total.Load(), failures[0])
	}

	codes := &codeSet{}
	for i, s := range rs.servers {
		eventually(t, 20*time.Second, func() error {
			r := mustDo(t, request{url: s.url + "/readyz"})
			if r.status != http.StatusServiceUnavailable {
				return fmt.Errorf("replica %d: /readyz %d with the store down", i, r.status)
			}
			return nil
		})
		r := mustDo(t, request{url: s.url + "/readyz"})
		var ready struct {
			Status string `json:"status"`
			Code   string `json:"code"`
		}
		decodeJSON(t, r, &ready)
		if ready.Code != "not_ready" || ready.Status != "not ready" {
			t.Errorf("replica %d: /readyz body %s, want status \"not ready\", code not_ready", i, r.body)
		}
		codes.expectError(t, "rotate with the store down", mustDo(t, request{method: "POST", url: s.url + "/v1/rings/" + ring + "/rotate", token: rs.admin}),
			http.StatusServiceUnavailable, "store_unavailable")
	}
}

// testNeverLoaded starts a server whose Vault token may read but not write: it cannot create the
// first key of its empty ring, so it must never serve it (503 ring_unavailable), must not be
// ready, and must refuse writes (503 store_unavailable).
func testNeverLoaded(t *testing.T, addr, root string) {
	prefix := randomName(t, "dpk-e2e-ro-")
	vault := func(method, path, body string) response {
		t.Helper()
		r := mustDo(t, request{method: method, url: addr + path, body: body, header: map[string]string{"X-Vault-Token": root}})
		if r.status/100 != 2 {
			t.Fatalf("vault %s %s: %d %s", method, path, r.status, r.body)
		}
		return r
	}
	policy := fmt.Sprintf("path \"secret/data/%s/*\" { capabilities = [\"read\", \"list\"] }\n"+
		"path \"secret/metadata/%s/*\" { capabilities = [\"read\", \"list\"] }\n", prefix, prefix)
	body, _ := json.Marshal(map[string]string{"policy": policy})
	vault("PUT", "/v1/sys/policies/acl/"+prefix, string(body))
	var tok struct {
		Auth struct {
			ClientToken string `json:"client_token"`
		} `json:"auth"`
	}
	decodeJSON(t, vault("POST", "/v1/auth/token/create", `{"policies":["`+prefix+`"],"ttl":"10m"}`), &tok)
	host := strings.TrimPrefix(addr, "http://")
	s := startServer(t, serverOptions{env: []string{"VAULT_TOKEN=" + tok.Auth.ClientToken},
		args: []string{"--store", "vault://" + host + "/secret/" + prefix + "?timeout=5s", "--ring", "ro"}})
	codes := &codeSet{}
	codes.expectError(t, "GET a ring never loaded", mustDo(t, request{url: s.url + "/v1/rings/ro/keys", token: s.tokens["node"]}),
		http.StatusServiceUnavailable, "ring_unavailable")
	codes.expectError(t, "rotate without write permission", mustDo(t, request{method: "POST", url: s.url + "/v1/rings/ro/rotate", token: s.tokens["admin"]}),
		http.StatusServiceUnavailable, "store_unavailable")
	r := mustDo(t, request{url: s.url + "/readyz"})
	var ready struct {
		Code string `json:"code"`
	}
	decodeJSON(t, r, &ready)
	if r.status != http.StatusServiceUnavailable || ready.Code != "not_ready" {
		t.Errorf("/readyz with a ring never loaded: %d %s", r.status, r.body)
	}
}

// TestSchedulerAndCronRedis: 3 replicas running the built-in scheduler every second plus 10
// concurrent "dpkeyring rotate --store" cron runs against the store directly: when a key falls
// due, exactly one is created.
func TestSchedulerAndCronRedis(t *testing.T) {
	t.Parallel()
	b := envRedis(t)
	ring := randomName(t, "sched-")
	rs := startReplicasArgs(t, b, 3, ring, "--rotate-interval", "1s")
	st := openStore(t, b)
	r, _ := ringKeys(t, st, ring)
	if n := len(r.Keys()); n != 1 {
		t.Fatalf("3 replicas starting at once wrote %d keys, want 1", n)
	}
	rev := keyring.Revocation{Date: time.Now().UTC(), KeyID: r.Keys()[0].ID, Reason: "e2e: make a key due"}
	xml, err := keyring.MarshalRevocation(rev)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Append(t.Context(), ring, store.Element{Name: keyring.RevocationName(rev), XML: xml}, 0); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	results := make([]string, 10)
	for i := range results {
		wg.Go(func() {
			out, errOut, code := runCLI(t, nil, "rotate", "--store", b.spec, "--ring", ring, "--json")
			results[i] = fmt.Sprintf("exit %d %s%s", code, strings.TrimSpace(out), strings.TrimSpace(errOut))
		})
	}
	wg.Wait()
	// Give the schedulers a few more ticks, then the ring must hold exactly one new key.
	time.Sleep(3 * time.Second)
	r, _ = ringKeys(t, st, ring)
	if n := len(r.Keys()); n != 2 {
		t.Errorf("after the key fell due under 3 schedulers and 10 cron runs the store holds %d keys, want 2; cron runs: %q", n, results)
	}
	if _, err := r.DefaultKey(time.Now()); err != nil {
		t.Errorf("no default key: %v", err)
	}
	created := 0
	for _, s := range rs.servers {
		if s.logged("key created", "by", "scheduler") {
			created++
		}
	}
	for _, res := range results {
		if strings.Contains(res, `"result":"created"`) {
			created++
		}
	}
	if created != 1 {
		t.Errorf("%d writers report creating the key, want 1; cron runs: %q", created, results)
	}
}
