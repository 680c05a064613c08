#!/usr/bin/env bash
# Starts and stops the real Redis servers the store tests run against, all on 127.0.0.1:
#
#   standalone   16379
#   Sentinel     master 16380, replica 16381, sentinels 26380-26382 (master name "dpk")
#   Cluster      6 nodes 17000-17005 (3 masters, 3 replicas)
#
# Usage:
#   .ci/redis.sh start STATE_DIR   start what is not running yet, wait until healthy, print the
#                                  `export KEYRING_TEST_REDIS_...=...` lines on stdout
#   .ci/redis.sh stop STATE_DIR    kill exactly the pids recorded in STATE_DIR, remove its files
#
# DPKEYRING_REDIS_PORT_OFFSET=N shifts all ports by N (run it with the same N for stop).
#
# Every node lives in STATE_DIR/<port>/: its data directory (no persistence: no RDB save points,
# no AOF; a Cluster node keeps only its nodes.conf), redis.pid, redis.log and `args`, the exact
# redis-server arguments one per line, so a failover test that killed a node can start it again
# the same way. `start` reuses nodes whose recorded pid is still alive, so running it again after
# a test killed a node restarts just that node (unpromotable until it has synced: an empty node
# promoted to master would wipe the data of the others). Progress goes to stderr.
set -euo pipefail

usage() {
  echo "usage: $0 start|stop STATE_DIR" >&2
  exit 2
}

[ $# -eq 2 ] || usage
cmd=$1
mkdir -p "$2"
state=$(cd "$2" && pwd)

host=127.0.0.1
# DPKEYRING_REDIS_PORT_OFFSET (default 0) shifts every port, so that two checkouts can run
# their servers side by side (for example 100: 16479, 16480, ...).
off=${DPKEYRING_REDIS_PORT_OFFSET:-0}
standalone_port=$((16379 + off))
sentinel_master_port=$((16380 + off))
sentinel_replica_port=$((16381 + off))
sentinel_ports=($((26380 + off)) $((26381 + off)) $((26382 + off)))
sentinel_master_name=dpk
cluster_ports=()
for i in 0 1 2 3 4 5; do cluster_ports+=($((17000 + off + i))); done
all_ports=("$standalone_port" "$sentinel_master_port" "$sentinel_replica_port" "${sentinel_ports[@]}" "${cluster_ports[@]}")

restarted=()

log() { echo "redis.sh: $*" >&2; }

# alive PORT: the pid recorded for PORT runs a redis process.
alive() {
  local pidfile="$state/$1/redis.pid" pid
  [ -s "$pidfile" ] || return 1
  pid=$(cat "$pidfile")
  kill -0 "$pid" 2>/dev/null || return 1
  grep -q redis "/proc/$pid/cmdline" 2>/dev/null
}

# ping PORT: the server on PORT answers PONG.
ping() { [ "$(redis-cli -h "$host" -p "$1" ping 2>/dev/null)" = PONG ]; }

# wait_for DESCRIPTION TENTHS COMMAND...: retry COMMAND every 0.1 s.
wait_for() {
  local what=$1 tries=$2
  shift 2
  for ((i = 0; i < tries; i++)); do
    if "$@"; then return 0; fi
    sleep 0.1
  done
  log "timed out waiting for $what"
  return 1
}

# start_node PORT KIND [EXTRA ARGS...]: KIND is server or sentinel.
start_node() {
  local port=$1 kind=$2
  shift 2
  local dir="$state/$port"
  if alive "$port"; then
    log "reusing $kind on $port (pid $(cat "$dir/redis.pid"))"
    return 0
  fi
  if ping "$port"; then
    log "port $port already serves a Redis that $state did not start; stop it or use other servers"
    return 1
  fi
  mkdir -p "$dir/data"
  rm -f "$dir/redis.pid"
  local args=()
  if [ "$kind" = sentinel ]; then
    # A sentinel rewrites its own config file, so each gets a writable one; keep it when it
    # exists (it records the current master after a failover).
    if [ ! -s "$dir/sentinel.conf" ]; then
      cat >"$dir/sentinel.conf" <<CONF
sentinel monitor $sentinel_master_name $host $sentinel_master_port 2
sentinel down-after-milliseconds $sentinel_master_name 1000
sentinel failover-timeout $sentinel_master_name 5000
sentinel parallel-syncs $sentinel_master_name 1
CONF
    fi
    args=("$dir/sentinel.conf" --sentinel)
  fi
  args+=(--daemonize yes --bind "$host" --port "$port" --dir "$dir/data"
    --pidfile "$dir/redis.pid" --logfile "$dir/redis.log")
  if [ "$kind" = server ]; then
    args+=(--save '' --appendonly no)
  fi
  args+=("$@")
  local guard=()
  if [ -s "$dir/args" ] && [ "$kind" = server ] && [ "$port" != "$standalone_port" ]; then
    # A restart (a test or a crash killed this node): it comes back empty, and must not be
    # promoted before it has synced from the current master, or the others would resync
    # from an empty node. Start it unpromotable; unguard() lifts that once it is in sync.
    if [[ " $* " == *" --cluster-enabled "* ]]; then
      guard=(--cluster-replica-no-failover yes)
    else
      guard=(--replica-priority 0)
    fi
    restarted+=("$port")
  fi
  printf '%s\n' "${args[@]}" >"$dir/args"
  redis-server "${args[@]}" "${guard[@]}"
  wait_for "$kind on $port" 100 ping "$port"
  wait_for "pid file of $port" 50 test -s "$dir/redis.pid"
  log "started $kind on $port (pid $(cat "$dir/redis.pid"))"
}

sentinel_ready() {
  local out
  out=$(redis-cli -h "$host" -p "${sentinel_ports[0]}" sentinel ckquorum "$sentinel_master_name" 2>/dev/null) || return 1
  [[ $out == "OK 3 usable"* ]] || return 1
  # The current master (16380, or 16381 after a failover) has its replica connected.
  local addr master_port
  addr=$(redis-cli -h "$host" -p "${sentinel_ports[0]}" sentinel get-master-addr-by-name "$sentinel_master_name" 2>/dev/null) || return 1
  master_port=$(echo "$addr" | sed -n 2p)
  [ -n "$master_port" ] || return 1
  redis-cli -h "$host" -p "$master_port" info replication 2>/dev/null | grep -q '^connected_slaves:1' || return 1
  # Every sentinel knows the replica, so a failover can start at once.
  local p
  for p in "${sentinel_ports[@]}"; do
    redis-cli -h "$host" -p "$p" sentinel replicas "$sentinel_master_name" 2>/dev/null | grep -q '^ip$' || return 1
  done
}

# unguard: make the restarted nodes promotable again once their replication link is up.
unguard() {
  local p
  for p in "${restarted[@]}"; do
    wait_for "restarted node $p to sync" 300 bash -c "redis-cli -h $host -p $p info replication | grep -q '^master_link_status:up'"
    if grep -qx -- --cluster-enabled "$state/$p/args"; then
      redis-cli -h "$host" -p "$p" config set cluster-replica-no-failover no >/dev/null
    else
      redis-cli -h "$host" -p "$p" config set replica-priority 100 >/dev/null
    fi
    log "node $p is in sync and promotable again"
  done
}

cluster_ok() {
  local p
  for p in "${cluster_ports[@]}"; do
    redis-cli -h "$host" -p "$p" cluster info 2>/dev/null | grep -q '^cluster_state:ok' || return 1
  done
  # Three masters, each with its replica connected.
  [ "$(redis-cli -h "$host" -p "${cluster_ports[0]}" cluster nodes 2>/dev/null | grep -c 'slave.* connected')" -eq 3 ]
}

cluster_known() {
  # The nodes already form a cluster (nodes.conf kept from an earlier start).
  [ "$(redis-cli -h "$host" -p "${cluster_ports[0]}" cluster info 2>/dev/null | sed -n 's/^cluster_known_nodes:\([0-9]*\).*/\1/p')" = 6 ]
}

start() {
  if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
    log "installing redis-server and redis-tools"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update >&2
    apt-get install -y --no-install-recommends redis-server redis-tools >&2
  fi

  start_node "$standalone_port" server

  start_node "$sentinel_master_port" server
  # The replica must not write a dump file when it loads the master's data.
  start_node "$sentinel_replica_port" server --repl-diskless-load swapdb \
    --replicaof "$host" "$sentinel_master_port"
  # After a failover the sentinels reconfigure restarted nodes themselves; the master's args
  # carry no --replicaof, so a restarted old master comes back empty and is demoted at once.
  local p
  for p in "${sentinel_ports[@]}"; do
    start_node "$p" sentinel
  done

  for p in "${cluster_ports[@]}"; do
    start_node "$p" server --cluster-enabled yes --cluster-node-timeout 1000 \
      --cluster-config-file nodes.conf --repl-diskless-load swapdb
  done
  if ! cluster_known; then
    local nodes=()
    for p in "${cluster_ports[@]}"; do nodes+=("$host:$p"); done
    log "creating the cluster"
    redis-cli --cluster create "${nodes[@]}" --cluster-replicas 1 --cluster-yes >&2
  fi

  wait_for "Sentinel quorum and replica" 300 sentinel_ready
  wait_for "cluster_state:ok" 300 cluster_ok
  unguard
  log "all Redis servers are up"

  local sentinels=() cluster=()
  for p in "${sentinel_ports[@]}"; do sentinels+=("$host:$p"); done
  for p in "${cluster_ports[@]}"; do cluster+=("$host:$p"); done
  echo "export KEYRING_TEST_REDIS_ADDR=$host:$standalone_port"
  echo "export KEYRING_TEST_REDIS_SENTINEL_ADDRS=$(IFS=,; echo "${sentinels[*]}")"
  echo "export KEYRING_TEST_REDIS_SENTINEL_MASTER=$sentinel_master_name"
  echo "export KEYRING_TEST_REDIS_CLUSTER_ADDRS=$(IFS=,; echo "${cluster[*]}")"
  echo "export KEYRING_TEST_REDIS_STATE_DIR=$state"
}

stop() {
  local p pid pids=()
  for p in "${all_ports[@]}"; do
    if alive "$p"; then
      pid=$(cat "$state/$p/redis.pid")
      kill "$pid" 2>/dev/null || true
      pids+=("$pid")
    fi
  done
  for pid in "${pids[@]}"; do
    for ((i = 0; i < 50; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
  done
  for p in "${all_ports[@]}"; do
    rm -rf "${state:?}/$p"
  done
  log "stopped ${#pids[@]} Redis processes"
}

case $cmd in
start) start ;;
stop) stop ;;
*) usage ;;
esac
