package redisstore_test

// The failover tests kill a master (SIGKILL, by the pid .ci/redis.sh recorded) while a
// goroutine appends, wait for the failover, start the killed node again the way the script
// started it, as a replica of the new master, and check that every Append that returned success
// is in the ring. They are destructive, so they run last (this file sorts last) and leave the
// servers healthy, with master and replica roles swapped.

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dpkeyring/dpkeyring/store"
	"github.com/dpkeyring/dpkeyring/store/redisstore"
)

func TestZFailoverSentinel(t *testing.T) {
	cfg := sentinelConfig(t)
	stateDir := requireEnv(t, envStateDir)[0]
	ctx := ctxT(t)
	sentinel := redis.NewSentinelClient(&redis.Options{Addr: cfg.Addrs[0], DisableIdentity: true})
	t.Cleanup(func() { _ = sentinel.Close() })
	masterAddr := func() string {
		a, err := sentinel.GetMasterAddrByName(ctx, cfg.MasterName).Result()
		if err != nil {
			return ""
		}
		return a[0] + ":" + a[1]
	}
	before := masterAddr()
	if before == "" {
		t.Fatal("no master known to the sentinels")
	}
	testFailover(t, cfg, stateDir, before, func() bool {
		a := masterAddr()
		return a != "" && a != before
	})
}

func TestZFailoverCluster(t *testing.T) {
	cfg := clusterConfig(t)
	stateDir := requireEnv(t, envStateDir)[0]
	ctx := ctxT(t)
	raw := rawClient(t, cfg).(*redis.ClusterClient)
	list := cfg.ListKey(redisstore.DefaultRing)
	m, err := raw.MasterForKey(ctx, list)
	if err != nil {
		t.Fatal(err)
	}
	before := m.Options().Addr
	slot, err := raw.ClusterKeySlot(ctx, list).Result()
	if err != nil {
		t.Fatal(err)
	}
	// Ask a node other than the victim which master serves the slot now.
	var witness string
	for _, a := range cfg.Addrs {
		if a != before {
			witness = a
			break
		}
	}
	w := redis.NewClient(&redis.Options{Addr: witness, DisableIdentity: true})
	t.Cleanup(func() { _ = w.Close() })
	testFailover(t, cfg, stateDir, before, func() bool {
		shards, err := w.ClusterShards(ctx).Result()
		if err != nil {
			return false
		}
		for _, sh := range shards {
			for _, r := range sh.Slots {
				if r.Start <= slot && slot <= r.End {
					for _, n := range sh.Nodes {
						if n.Role == "master" && n.Health == "online" {
							return fmt.Sprintf("%s:%d", n.IP, n.Port) != before
						}
					}
				}
			}
		}
		return false
	})
}

// testFailover appends continuously, kills the master at victim, waits until failedOver
// reports the new master, restarts the victim, and checks that no acknowledged key is lost
// and that fencing tokens did not go back.
func testFailover(t *testing.T, cfg redisstore.Config, stateDir, victim string, failedOver func() bool) {
	ctx := ctxT(t)
	s := mustOpen(t, cfg)
	if s.WaitReplicas() != 1 {
		t.Fatalf("WaitReplicas() = %d, want 1 (the master has a replica)", s.WaitReplicas())
	}
	lease, err := s.Lock(ctx, "lock", "before", 500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var acked []string
	var failures int
	ackedCount := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			name, xml := keyElement(t)
			actx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := s.Append(actx, redisstore.DefaultRing, store.Element{Name: name, XML: []byte(xml)}, 0)
			cancel()
			mu.Lock()
			if err == nil {
				acked = append(acked, name)
			} else {
				failures++
			}
			mu.Unlock()
			if err != nil {
				time.Sleep(20 * time.Millisecond)
			}
		}
	}()
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		<-done
	}()

	waitFor(t, "30 acknowledged appends", 30*time.Second, func() bool { return ackedCount() >= 30 })
	_, port, _ := strings.Cut(victim, ":")
	dir := filepath.Join(stateDir, port)
	// Make the replica miss writes: freeze it, cut its replication link on the master (so
	// the master sends it nothing more), let the master take writes for a moment, then kill
	// the master and thaw the replica, which gets promoted without those writes. None of the
	// appends made meanwhile may have been acknowledged. (Without WAIT they are, and lost.)
	replica := replicaPort(t, victim)
	replicaDir := filepath.Join(stateDir, replica)
	signal(t, replicaDir, syscall.SIGSTOP)
	t.Cleanup(func() { signal(t, replicaDir, syscall.SIGCONT) })
	m := redis.NewClient(&redis.Options{Addr: victim, DisableIdentity: true})
	if err := m.ClientKillByFilter(ctx, "TYPE", "replica").Err(); err != nil {
		t.Fatal(err)
	}
	_ = m.Close()
	time.Sleep(300 * time.Millisecond)
	killed := time.Now()
	kill(t, dir)
	signal(t, replicaDir, syscall.SIGCONT)
	ackedAtKill := ackedCount()
	waitFor(t, "the failover", 60*time.Second, failedOver)
	t.Logf("failover after %s; %d appends acknowledged before the kill", time.Since(killed).Round(time.Millisecond), ackedAtKill)

	host, _, _ := strings.Cut(victim, ":")
	restart(t, dir, victim, host+":"+replica)
	waitFor(t, "30 more acknowledged appends after the failover", 60*time.Second, func() bool { return ackedCount() >= ackedAtKill+30 })
	close(stop)
	<-done

	snap, err := s.List(ctx, redisstore.DefaultRing)
	if err != nil {
		t.Fatal(err)
	}
	present := map[string]bool{}
	for _, e := range snap.Elements {
		present[e.Name] = true
	}
	var lost []string
	for _, n := range acked {
		if !present[n] {
			lost = append(lost, n)
		}
	}
	t.Logf("%d acknowledged, %d failed appends, %d elements in the ring", len(acked), failures, len(snap.Elements))
	if len(lost) > 0 {
		t.Errorf("%d acknowledged keys lost in the failover: %v", len(lost), lost)
	}
	raw := rawClient(t, cfg)
	if n, err := raw.LLen(ctx, cfg.ListKey(redisstore.DefaultRing)).Result(); err != nil || int(n) != len(snap.Elements) {
		t.Errorf("LLEN = %d, %v; want %d (no element twice)", n, err, len(snap.Elements))
	}

	// The token granted before the failover was replicated: the next lease gets a larger one.
	var next store.Lease
	waitFor(t, "a lease after the failover", 30*time.Second, func() bool {
		next, err = s.Lock(ctx, "lock", "after", time.Minute)
		return err == nil
	})
	if next.Token <= lease.Token {
		t.Errorf("token after the failover = %d, want above %d", next.Token, lease.Token)
	}
}

func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// replicaPort returns the port of the (first) replica connected to the master at addr.
func replicaPort(t *testing.T, addr string) string {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, DisableIdentity: true})
	defer func() { _ = c.Close() }()
	info, err := c.Info(context.Background(), "replication").Result()
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "slave0:"); ok {
			for kv := range strings.SplitSeq(v, ",") {
				if p, ok := strings.CutPrefix(kv, "port="); ok {
					return p
				}
			}
		}
	}
	t.Fatalf("master %s has no replica:\n%s", addr, info)
	return ""
}

// recordedPid returns the pid .ci/redis.sh recorded in dir, checking it is a redis-server.
func recordedPid(t *testing.T, dir string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "redis.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.Contains(string(cmdline), "redis-server") {
		t.Fatalf("pid %d from %s is not a running redis-server (%v)", pid, dir, err)
	}
	return pid
}

func signal(t *testing.T, dir string, sig syscall.Signal) {
	t.Helper()
	if err := syscall.Kill(recordedPid(t, dir), sig); err != nil {
		t.Fatal(err)
	}
}

// kill sends SIGKILL to the redis-server whose pid .ci/redis.sh recorded in dir.
func kill(t *testing.T, dir string) {
	t.Helper()
	pid := recordedPid(t, dir)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100 && syscall.Kill(pid, 0) == nil; i++ {
		time.Sleep(20 * time.Millisecond)
	}
}

// restart starts the node in dir again with the arguments .ci/redis.sh recorded, and waits
// until it answers and is a replica again. A cluster node finds its new role in its cluster
// config. A Sentinel-managed node starts as a replica of newMaster, as .ci/redis.sh starts a
// replica: Sentinel would convert a returning old master too, but only once the new master has
// looked healthy to it for several seconds in a row, which a loaded machine (a ping slower than
// down-after-milliseconds) can put off past any timeout.
func restart(t *testing.T, dir, addr, newMaster string) {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "args"))
	if err != nil {
		t.Fatal(err)
	}
	var args []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		args = append(args, sc.Text())
	}
	_ = f.Close()
	// The node comes back empty (no persistence). Until it has synced, it must not be
	// promoted: a spurious failover then would make an empty node the master and wipe the
	// ring. So it starts unpromotable and becomes promotable once in sync.
	cluster := slices.Contains(args, "--cluster-enabled")
	guard, unguard := []string{"--replica-priority", "0"}, []string{"replica-priority", "100"}
	if cluster {
		guard, unguard = []string{"--cluster-replica-no-failover", "yes"}, []string{"cluster-replica-no-failover", "no"}
	} else {
		host, port, _ := strings.Cut(newMaster, ":")
		guard = append(guard, "--replicaof", host, port)
	}
	if out, err := exec.Command("redis-server", append(args, guard...)...).CombinedOutput(); err != nil {
		t.Fatalf("restarting redis-server in %s: %v\n%s", dir, err, out)
	}
	c := redis.NewClient(&redis.Options{Addr: addr, DisableIdentity: true})
	defer func() { _ = c.Close() }()
	waitFor(t, addr+" to rejoin as a connected replica", 60*time.Second, func() bool {
		info, err := c.Info(context.Background(), "replication").Result()
		return err == nil && strings.Contains(info, "role:slave") && strings.Contains(info, "master_link_status:up")
	})
	if err := c.ConfigSet(context.Background(), unguard[0], unguard[1]).Err(); err != nil {
		t.Fatal(err)
	}
}
