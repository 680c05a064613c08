#!/usr/bin/env bash
# Server benchmark of dpkeyring (issue 4), run by hand; not part of .ci/test.
#
#   bash .ci/bench-server.sh            # from anywhere; prints a Markdown report on stdout
#
# In one run on this machine, all on 127.0.0.1 (free ports, temporary folders, everything it
# starts is stopped by pid on exit):
#   1. ring GET throughput and latency, with the same load generator (internal/loadgen), the
#      same concurrency and duration, and the same XML document (a ring of 10 keys) from:
#        - dpkeyring serve on the embedded file store (GET /v1/rings/default/keys, node token),
#        - nginx (Debian's; installed with apt-get if missing) serving the XML as a static file,
#        - a direct read of the same XML from Vault KV v2 (GET /v1/secret/data/bench/ring with
#          X-Vault-Token; a dev server from .ci/vault.sh).
#      Each target is measured BENCH_ROUNDS times, interleaved; the report gives the median.
#      Every target is measured twice per round: a plain request, and one with
#      "Accept-Encoding: gzip" (what Go's HTTP client, hence the agent, sends): dpkeyring then
#      answers its gzip-compressed document and nginx the .gz file next to the XML
#      (gzip_static); Vault has no compressed answer and sends the same JSON.
#   2. BENCH_LONGPOLL long-polling clients parked on one dpkeyring server: its RSS (VmRSS) with
#      all of them waiting, and how fast one rotation wakes them all.
# Goals: dpkeyring >= 0.5x nginx and >= 10x Vault in GET throughput; RSS < 200 MiB with 1,000
# long-polling clients.
#
# Settings (environment): BENCH_CONCURRENCY (default 32 connections), BENCH_DURATION (10s),
# BENCH_WARMUP (2s), BENCH_ROUNDS (3), BENCH_LONGPOLL (1000), BENCH_KEYS (10 keys in the ring),
# BENCH_OUT (folder to keep the raw results in; default a temporary one, removed).
# BENCH_TOOL=wrk (default; Debian's wrk, installed if missing) or loadgen (internal/loadgen)
# drives the GET runs; the long-poll run always uses loadgen.
#
# BENCH_PIN=1 (default on a machine with 2 CPUs or more) runs every server on the last CPU and
# the load generator on the others (taskset), so that each server gets the same one CPU and the
# load generator never competes with it; BENCH_PIN=0 lets them share all CPUs.
#
# Besides throughput it reports each server's CPU time per request (utime+stime from
# /proc/PID/stat over the run): on a shared, loaded machine throughput follows whatever CPU the
# server got, while CPU per request does not.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

conc=${BENCH_CONCURRENCY:-32}
dur=${BENCH_DURATION:-10s}
warmup=${BENCH_WARMUP:-2s}
rounds=${BENCH_ROUNDS:-3}
lpclients=${BENCH_LONGPOLL:-1000}
tool=${BENCH_TOOL:-wrk}
wrk_threads=${BENCH_WRK_THREADS:-2}
nkeys=${BENCH_KEYS:-10}
ncpu=$(nproc)
pin=${BENCH_PIN:-$([ "$ncpu" -ge 2 ] && echo 1 || echo 0)}
if [ "$pin" = 1 ]; then
  server_cpus=$((ncpu - 1))
  client_cpus=0
  [ "$ncpu" -gt 2 ] && client_cpus=0-$((ncpu - 2))
  wrk_threads=${BENCH_WRK_THREADS:-$((ncpu - 1))}
  # Prefixes, not functions: a backgrounded simple command keeps its pid through the execs.
  on_server=(taskset -c "$server_cpus")
  on_client=(taskset -c "$client_cpus")
  nginx_workers=1 # one worker per CPU it may use, as with auto
else
  nginx_workers=auto
  on_server=()
  on_client=()
fi

log() { echo "bench-server.sh: $*" >&2; }

work=$(mktemp -d /tmp/dpkeyring-bench.XXXXXX)
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
  done
  if [ -n "${BENCH_OUT:-}" ]; then
    mkdir -p "$BENCH_OUT"
    cp "$work"/results.jsonl "$work"/*.pprof "$BENCH_OUT"/ 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_http() { # URL [CURL ARGS...]: until it answers 2xx (60 s)
  local url=$1
  shift
  for _ in $(seq 1 300); do
    if curl -fsS -o /dev/null "$@" "$url" 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  log "no answer from $url"
  return 1
}

# --- prerequisites --------------------------------------------------------------------------
need=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
[ "$tool" != wrk ] || command -v wrk >/dev/null 2>&1 || need+=(wrk)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]} (apt-get)"
  apt-get update >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" >&2
fi
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
for prereq in curl jq python3; do
  command -v "$prereq" >/dev/null || { log "$prereq is required"; exit 1; }
done
vault_bin=$(bash .ci/vault.sh)

log "building dpkeyring and loadgen"
mkdir -p "$work/bin"
go build -o "$work/bin/dpkeyring" ./cmd/dpkeyring
go build -o "$work/bin/loadgen" ./internal/loadgen/cmd/loadgen
dpk=$work/bin/dpkeyring
lg=$work/bin/loadgen

# --- dpkeyring ------------------------------------------------------------------------------
log "starting dpkeyring serve (file store)"
"${on_server[@]}" "$dpk" serve --addr 127.0.0.1:0 --data "$work/data" >"$work/dpk.out" 2>"$work/dpk.log" &
dpk_pid=$!
pids+=("$dpk_pid")
for _ in $(seq 1 300); do
  dpk_url=$(jq -r 'select(.msg=="listening") | .url' "$work/dpk.log" 2>/dev/null | head -1)
  [ -n "$dpk_url" ] && break
  sleep 0.2
done
[ -n "$dpk_url" ] || { log "dpkeyring did not start:"; cat "$work/dpk.log" >&2; exit 1; }
admin=$(awk '$1=="admin" && $2 ~ /^dpk_/ {print $2}' "$work/dpk.out")
node=$(awk '$1=="node" && $2 ~ /^dpk_/ {print $2}' "$work/dpk.out")
for _ in $(seq 2 "$nkeys"); do
  curl -fsS -o /dev/null -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' \
    -d '{"immediate":true,"reason":"benchmark ring"}' "$dpk_url/v1/rings/default/rotate"
done
ring_url=$dpk_url/v1/rings/default/keys
mkdir -p "$work/www"
curl -fsS -H "Authorization: Bearer $node" -o "$work/www/ring.xml" "$ring_url"
cmp -s <(curl -fsS --compressed -H "Authorization: Bearer $node" "$ring_url") "$work/www/ring.xml" ||
  { log "dpkeyring's gzip answer is not the same document"; exit 1; }
size=$(wc -c <"$work/www/ring.xml")
keys=$(grep -o '<key ' "$work/www/ring.xml" | wc -l)
gzip -9 -k -n "$work/www/ring.xml"
gzsize=$(wc -c <"$work/www/ring.xml.gz")
log "dpkeyring at $dpk_url (pid $dpk_pid): ring of $keys keys, $size bytes of XML"

# --- nginx ----------------------------------------------------------------------------------
nginx_port=$(free_port)
mkdir -p "$work/nginx/tmp"
cat >"$work/nginx/nginx.conf" <<EOF
user root;
worker_processes $nginx_workers;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log $work/nginx/access.log;
  client_body_temp_path $work/nginx/tmp/body;
  proxy_temp_path $work/nginx/tmp/proxy;
  fastcgi_temp_path $work/nginx/tmp/fastcgi;
  uwsgi_temp_path $work/nginx/tmp/uwsgi;
  scgi_temp_path $work/nginx/tmp/scgi;
  types { application/xml xml; }
  sendfile on;
  gzip_static on;
  keepalive_requests 100000000;
  keepalive_timeout 120s;
  server {
    listen 127.0.0.1:$nginx_port;
    root $work/www;
  }
}
EOF
"${on_server[@]}" "$nginx_bin" -c "$work/nginx/nginx.conf" -g 'daemon off;' 2>"$work/nginx/stderr" &
nginx_pid=$!
pids+=("$nginx_pid")
nginx_url=http://127.0.0.1:$nginx_port/ring.xml
wait_http "$nginx_url"
cmp -s <(curl -fsS "$nginx_url") "$work/www/ring.xml" || { log "nginx serves other bytes"; exit 1; }
[ "$(curl -fsS -o /dev/null -w '%{header_json}' -H 'Accept-Encoding: gzip' "$nginx_url" | jq -r '."content-encoding"[0]')" = gzip ] ||
  { log "nginx does not serve ring.xml.gz"; exit 1; }
cmp -s <(curl -fsS --compressed "$nginx_url") "$work/www/ring.xml" || { log "nginx serves other gzip bytes"; exit 1; }
log "nginx $("$nginx_bin" -v 2>&1 | sed 's/.*nginx\///') at $nginx_url"

# --- Vault ----------------------------------------------------------------------------------
vault_port=$(free_port)
vault_token=bench-$(python3 -c 'import secrets; print(secrets.token_hex(8))')
mkdir -p "$work/vault"
HOME="$work/vault" "${on_server[@]}" "$vault_bin" server -dev -dev-root-token-id="$vault_token" \
  -dev-listen-address="127.0.0.1:$vault_port" -dev-no-store-token >"$work/vault/log" 2>&1 &
vault_pid=$!
pids+=("$vault_pid")
vault_addr=http://127.0.0.1:$vault_port
wait_http "$vault_addr/v1/sys/health"
jq -Rs '{data: {xml: .}}' "$work/www/ring.xml" >"$work/vault/kv.json"
curl -fsS -o /dev/null -H "X-Vault-Token: $vault_token" -d @"$work/vault/kv.json" "$vault_addr/v1/secret/data/bench/ring"
vault_url=$vault_addr/v1/secret/data/bench/ring
[ "$(curl -fsS -H "X-Vault-Token: $vault_token" "$vault_url" | jq -r .data.data.xml)" = "$(cat "$work/www/ring.xml")" ] ||
  { log "Vault holds other bytes"; exit 1; }
log "vault $("$vault_bin" version | head -1) at $vault_addr"

# --- GET throughput -------------------------------------------------------------------------
: >"$work/results.jsonl"
cat >"$work/wrk.lua" <<'LUA'
done = function(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    '{"requests":%d,"errors":%d,"seconds":%.3f,"rps":%.1f,"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f}\n',
    summary.requests, e.connect + e.read + e.write + e.status + e.timeout, secs, summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
LUA
# cpu_ticks PID...: user+system CPU clock ticks used so far by these processes (all threads).
cpu_ticks() {
  local pid total=0 t
  for pid in "$@"; do
    t=$(awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$pid/stat" 2>/dev/null || echo 0)
    total=$((total + t))
  done
  echo "$total"
}
clk_tck=$(getconf CLK_TCK)
get() { # NAME "PIDS" URL [HEADER...]: one measured run; PIDS are the target's processes
  local name=$1 tpids=$2 url=$3 h
  shift 3
  local hdr=() t0 t1
  for h in "$@"; do hdr+=(-H "$h"); done
  if [ "$tool" = wrk ]; then
    "${on_client[@]}" wrk -t "$wrk_threads" -c "$conc" -d "$warmup" "${hdr[@]}" "$url" >/dev/null
    t0=$(cpu_ticks $tpids)
    "${on_client[@]}" wrk -t "$wrk_threads" -c "$conc" -d "$dur" "${hdr[@]}" -s "$work/wrk.lua" "$url" | tail -1 |
      jq -c --arg n "$name" --arg u "$url" '{name: $n, url: $u} + .'
  else
    t0=$(cpu_ticks $tpids)
    "${on_client[@]}" "$lg" get -json -name "$name" -url "$url" "${hdr[@]}" -c "$conc" -d "$dur" -warmup "$warmup"
  fi >"$work/run.json"
  t1=$(cpu_ticks $tpids)
  # Server CPU per request: wrk warms up in a separate run before t0; loadgen's warm-up is
  # inside the measured process, so its ticks include it (a little over-counted).
  jq -c --argjson ticks "$((t1 - t0))" --argjson hz "$clk_tck" \
    '. + {server_cpu_s: ($ticks / $hz), server_cpu_us_per_req: (if .requests > 0 then ($ticks / $hz * 1e6 / .requests) else null end)}' \
    "$work/run.json" | tee -a "$work/results.jsonl" |
    jq -r '"\(.name): \(.rps|floor) req/s, p50 \(.p50_ms) ms, p99 \(.p99_ms) ms, server CPU \(.server_cpu_us_per_req|floor) us/req, \(.errors) errors"' >&2
}
nginx_pids="$nginx_pid $(pgrep -P "$nginx_pid" | tr '\n' ' ')"
gz="Accept-Encoding: gzip"
for round in $(seq 1 "$rounds"); do
  log "round $round of $rounds: $conc connections, $dur each (after $warmup warm-up)"
  get dpkeyring "$dpk_pid" "$ring_url" "Authorization: Bearer $node"
  get nginx "$nginx_pids" "$nginx_url"
  get vault "$vault_pid" "$vault_url" "X-Vault-Token: $vault_token"
  get dpkeyring-gzip "$dpk_pid" "$ring_url" "Authorization: Bearer $node" "$gz"
  get nginx-gzip "$nginx_pids" "$nginx_url" "$gz"
  get vault-gzip "$vault_pid" "$vault_url" "X-Vault-Token: $vault_token" "$gz"
done

# --- long-poll ------------------------------------------------------------------------------
log "long-poll: $lpclients clients on one server"
"${on_client[@]}" "$lg" longpoll -json -name longpoll -url "$ring_url" -H "Authorization: Bearer $node" -clients "$lpclients" \
  -pid "$dpk_pid" -metrics-url "$dpk_url/metrics" \
  -trigger-url "$dpk_url/v1/rings/default/rotate" -trigger-H "Authorization: Bearer $admin" \
  -trigger-body '{"immediate":true,"reason":"benchmark long-poll"}' | tee -a "$work/results.jsonl" |
  jq -r '"longpoll: \(.waiting) waiting (server counts \(.server_waiting)), RSS \(.rss_before_mib) -> \(.rss_waiting_mib) MiB (peak \(.rss_peak_mib)), \(.woken) woken, wake p99 \(.wake_p99_ms) ms, \(.errors) errors"' >&2

# --- report ---------------------------------------------------------------------------------
median() { # NAME FIELD
  jq -s --arg n "$1" --arg f "$2" '[.[] | select(.name==$n) | .[$f]] | sort | .[(length-1)/2|floor]' "$work/results.jsonl"
}
lp=$(jq -c 'select(.name=="longpoll")' "$work/results.jsonl")
errors=$(jq -s '[.[] | select(.name!="longpoll") | .errors] | add' "$work/results.jsonl")
cpu=$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
verdict() { awk -v v="$1" -v g="$2" 'BEGIN { print (v >= g ? "met" : "MISSED") }'; }
nginx_version=$("$nginx_bin" -v 2>&1 | sed 's/.*nginx\///')
vault_version=$("$vault_bin" version | awk '{print $2}')
table() { # SUFFIX ("" or "-gzip") TITLE: the GET table of one request kind
  local sfx=$1 d_rps n_rps v_rps rn rv d_cpu n_cpu v_cpu cn cv
  d_rps=$(median "dpkeyring$sfx" rps)
  n_rps=$(median "nginx$sfx" rps)
  v_rps=$(median "vault$sfx" rps)
  rn=$(ratio "$d_rps" "$n_rps")
  rv=$(ratio "$d_rps" "$v_rps")
  d_cpu=$(median "dpkeyring$sfx" server_cpu_us_per_req)
  n_cpu=$(median "nginx$sfx" server_cpu_us_per_req)
  v_cpu=$(median "vault$sfx" server_cpu_us_per_req)
  cn=$(ratio "$d_cpu" "$n_cpu")
  cv=$(ratio "$v_cpu" "$d_cpu")
  cat <<EOT
$2

| Target | Requests/s | p50 | p99 | Server CPU per request | dpkeyring is |
| --- | ---: | ---: | ---: | ---: | --- |
| dpkeyring \`GET /v1/rings/default/keys\` (file store, bearer token, access log) | $(printf '%.0f' "$d_rps") | $(median "dpkeyring$sfx" p50_ms) ms | $(median "dpkeyring$sfx" p99_ms) ms | $(printf '%.1f' "$d_cpu") µs | |
| nginx $nginx_version, static file (access log on) | $(printf '%.0f' "$n_rps") | $(median "nginx$sfx" p50_ms) ms | $(median "nginx$sfx" p99_ms) ms | $(printf '%.1f' "$n_cpu") µs | ${rn}x nginx (goal >= 0.5x: $(verdict "$rn" 0.5)); CPU per request ${cn}x nginx's |
| Vault $vault_version KV v2 read (dev server, in-memory) | $(printf '%.0f' "$v_rps") | $(median "vault$sfx" p50_ms) ms | $(median "vault$sfx" p99_ms) ms | $(printf '%.1f' "$v_cpu") µs | ${rv}x Vault (goal >= 10x: $(verdict "$rv" 10)); Vault uses ${cv}x dpkeyring's CPU per request |
EOT
}
if [ "$pin" = 1 ]; then
  placement="every server pinned to CPU $server_cpus and the load generator to CPU(s) $client_cpus (BENCH_PIN=1)"
else
  placement="the load generator and the servers share all CPUs (BENCH_PIN=0)"
fi
rss=$(jq -r .rss_waiting_mib <<<"$lp")

cat <<EOF
Measured $(date -u +%Y-%m-%dT%H:%MZ) on $ncpu vCPUs ($cpu), $(free -g | awk '/Mem:/ {print $2}') GiB RAM,
Linux $(uname -r), $(go version | awk '{print $3}'), load average $(cut -d' ' -f1-3 /proc/loadavg) at the end.
Command: \`bash .ci/bench-server.sh\` (BENCH_CONCURRENCY=$conc BENCH_DURATION=$dur BENCH_ROUNDS=$rounds
BENCH_LONGPOLL=$lpclients BENCH_PIN=$pin). The ring: $keys keys, $size bytes of XML ($gzsize gzip-compressed).
Median of $rounds interleaved rounds; $conc keep-alive connections, driven by $tool; $placement.
$errors failed requests in all.

$(table "" "Plain requests (no Accept-Encoding):")

$(table -gzip "With \`Accept-Encoding: gzip\` (as Go's HTTP client and the agent send; nginx serves ring.xml.gz with gzip_static; Vault has no compressed answer):")

Long-poll: $(jq -r .waiting <<<"$lp") clients waiting on one server (the server counted $(jq -r .server_waiting <<<"$lp")): RSS
$(jq -r .rss_before_mib <<<"$lp") MiB before, **$rss MiB** with all waiting (peak $(jq -r .rss_peak_mib <<<"$lp") MiB; goal < 200 MiB:
$(awk -v v="$rss" 'BEGIN { print (v < 200 ? "met" : "MISSED") }')). One rotation woke $(jq -r .woken <<<"$lp") of them: p50 $(jq -r .wake_p50_ms <<<"$lp") ms,
p99 $(jq -r .wake_p99_ms <<<"$lp") ms, slowest $(jq -r .wake_max_ms <<<"$lp") ms after the rotate request; $(jq -r .errors <<<"$lp") errors.
EOF
