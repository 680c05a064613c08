#!/usr/bin/env bash
# Issue 17's benchmark of the node package (Dpkeyring.AspNetCore): over BENCH_ROTATIONS (20)
# emergency rotations, the time from the rotate call to each running node protecting with the new
# key (p50, p99, max), for 1 and 10 node processes; then each node's memory with the package and
# the same program without it (plain AddDataProtection with a file-system key folder).
#
#   bash dotnet/bench/rotation-latency.sh          # about 2 minutes on 2 CPUs
#
# Environment:
#   DPKEYRING_BIN    the server binary (default: ../shared/bin/dpkeyring beside the clone)
#   BENCH_ROTATIONS  rotations per node count (default 20)
#   BENCH_NODES      node counts to run, in order (default "1 10")
#   BENCH_SPACING    seconds between two rotations (default 1)
#   BENCH_INTERVAL_MS  pause between two Protect calls in each node (default 1)
#   BENCH_MEM_PAIRS  nodes with and without the package for the memory comparison (default 5 + 5;
#                    0 skips it)
#   BENCH_KEEP=1     keep the work folder (server and node logs, raw samples)
#   BENCH_BUILD_DIR  where the node is built (default $TMPDIR/dpkeyring-bench-build)
#
# How: one fresh `dpkeyring serve` per node count and per memory comparison (embedded file
# store, 127.0.0.1, free port). Each node (dotnet/bench/Dpkeyring.Bench.Node) protects a payload
# every millisecond and prints `KEY <key id> <unix ms>` when the key in its payloads changes, and
# `RING <unix ms>` when the package has taken a new ring version into use (its dpkeyring.fetches
# counter, result=changed). The script takes the time just before each POST
# /v1/rings/default/rotate ({"immediate": true, "revoke_previous": true}) from bash's
# $EPOCHREALTIME, the same clock (CLOCK_REALTIME); a sample is KEY(new key) minus that time, per
# node and rotation. The server's access log (the rotate call's duration, the time it answered
# each node's long-poll) splits that time between the server and the node. The script reads the
# logs only between rotations, so that it does not take CPU from the nodes while they react.
# Percentiles are nearest-rank over all samples of a node count (20 samples for 1 node, 200 for
# 10).
#
# Everything runs on 127.0.0.1; every process the script starts is stopped by its pid on exit.
set -euo pipefail
export LC_ALL=C

if [[ -z ${EPOCHREALTIME:-} ]]; then
	echo "rotation-latency.sh: needs bash 5 or later (\$EPOCHREALTIME)" >&2
	exit 2
fi
for tool in curl jq awk mkfifo timeout dotnet; do
	command -v "$tool" >/dev/null || { echo "rotation-latency.sh: $tool is required" >&2; exit 2; }
done

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
server_bin=${DPKEYRING_BIN:-$repo/../shared/bin/dpkeyring}
rotations=${BENCH_ROTATIONS:-20}
node_counts=${BENCH_NODES:-"1 10"}
spacing=${BENCH_SPACING:-1}
interval_ms=${BENCH_INTERVAL_MS:-1}
mem_pairs=${BENCH_MEM_PAIRS:-5}
mem_rotations=3
project=$here/Dpkeyring.Bench.Node
# Built into a folder of its own, so that a build of the solution running at the same time does not
# write the same obj/ files; kept between runs (incremental).
build_dir=${BENCH_BUILD_DIR:-${TMPDIR:-/tmp}/dpkeyring-bench-build}
node_exe=$build_dir/bin/Dpkeyring.Bench.Node/release/Dpkeyring.Bench.Node

[[ -x $server_bin ]] || { echo "rotation-latency.sh: no server binary at $server_bin (set DPKEYRING_BIN)" >&2; exit 2; }
server_bin=$(cd "$(dirname "$server_bin")" && pwd)/$(basename "$server_bin")

work=$(mktemp -d "${TMPDIR:-/tmp}/dpkeyring-rotation-bench.XXXXXX")
pids=()     # every process started here, stopped by pid in cleanup
node_extra=()   # extra arguments for every node of a run (--web)
node_pids=()    # the current run's node processes
fds=()      # write ends of the nodes' stdin FIFOs

cleanup() {
	local status=$? fd pid i
	for fd in "${fds[@]}"; do exec {fd}>&-; done   # a node stops at the end of stdin
	fds=()
	for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for ((i = 0; i < 50; i++)); do
		local alive=0
		for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
		((alive)) || break
		sleep 0.1
	done
	for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
	if [[ ${BENCH_KEEP:-0} == 1 || $status != 0 ]]; then
		echo "rotation-latency.sh: logs kept in $work" >&2
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

# wait_for DESCRIPTION SECONDS COMMAND...: polls COMMAND every 0.1 s until it succeeds or time is up.
wait_for() {
	local what=$1 seconds=$2 deadline
	shift 2
	deadline=$((SECONDS + seconds))
	until "$@"; do
		((SECONDS < deadline)) || die "timed out after ${seconds}s waiting for $what"
		sleep 0.1
	done
}

# ---------------------------------------------------------------------------------------------
log "building the bench node (dotnet build -c Release, into $build_dir)"
timeout 600 dotnet build -c Release -nologo -v quiet --disable-build-servers --artifacts-path "$build_dir" "$project" >"$work/build.log" 2>&1 \
	|| { cat "$work/build.log" >&2; die "dotnet build"; }
[[ -x $node_exe ]] || die "no $node_exe after the build"

# ---------------------------------------------------------------------------------------------
# The parts of a run: a fresh server, the nodes, the rotations, MEM from every node. A run leaves
# its files (logs, rotations, samples, memory) in a folder of $work.
server_url=""
admin_token=""

start_server() {
	local dir=$1
	mkdir -p "$dir/data"
	"$server_bin" serve --addr 127.0.0.1:0 --data "$dir/data" >"$dir/server.out" 2>"$dir/server.err" &
	pids+=($!)
	wait_for "the server to listen" 20 grep -qs '"msg":"listening"' "$dir/server.err"
	server_url="http://$(grep -m1 '"msg":"listening"' "$dir/server.err" | jq -r .addr)"
	[[ $server_url == http://127.0.0.1:* ]] || die "the server listens on $server_url, not 127.0.0.1"
	wait_for "the server's tokens" 10 grep -qs '^  node ' "$dir/server.out"
	admin_token=$(awk '$1 == "admin" { print $2; exit }' "$dir/server.out")
	local node_token
	node_token=$(awk '$1 == "node" { print $2; exit }' "$dir/server.out")
	[[ $admin_token == dpk_* && $node_token == dpk_* ]] || die "no admin or node token in $dir/server.out"
	(umask 077 && printf '%s\n' "$node_token" >"$dir/node.token")
	chmod 600 "$dir/node.token"
}

# start_node DIR NAME ARGS...: the node's stdin is a FIFO kept open here (MEM commands; its end
# stops the node), its stdout and stderr go to DIR/NAME.out and .err.
start_node() {
	local dir=$1 name=$2 fd
	shift 2
	mkfifo "$dir/$name.in"
	"$node_exe" --interval-ms "$interval_ms" "$@" <"$dir/$name.in" >"$dir/$name.out" 2>"$dir/$name.err" &
	pids+=($!)
	node_pids+=($!)
	exec {fd}>"$dir/$name.in"
	fds+=("$fd")
	eval "fd_$name=$fd"
}

default_key() {
	curl -sS --max-time 5 -H "Authorization: Bearer $admin_token" "$server_url/v1/rings/default/status" | jq -r '.default_key.key_id'
}

# Whether every node's last KEY line names key $1.
all_on_key() {
	local key=$1 f last
	for f in "${node_outs[@]}"; do
		last=$(grep '^KEY ' "$f" | tail -n 1 | awk '{ print $2 }') || true
		[[ $last == "$key" ]] || return 1
	done
}

# Whether every node printed a KEY line for key $1 (later keys may follow).
all_saw_key() {
	local key=$1 f
	for f in "${node_outs[@]}"; do grep -q "^KEY $key " "$f" || return 1; done
}

node_failed() {
	local f
	for f in "${node_outs[@]}"; do
		if grep -q '^ERR ' "$f"; then log "a node reported an error: $(grep -m1 '^ERR ' "$f")"; fi
	done
}

# start_nodes DIR N BASELINES: a fresh server in DIR, N package nodes (node1..nodeN) and BASELINES
# nodes without the package (base1..), started alternately; waits until all protect.
start_nodes() {
	local dir=$1 n=$2 baselines=$3 i key
	mkdir -p "$dir"
	start_server "$dir"
	node_outs=()
	base_outs=()
	for ((i = 1; i <= n || i <= baselines; i++)); do
		if ((i <= n)); then
			start_node "$dir" "node$i" --url "$server_url" --token-file "$dir/node.token" --node-id "bench-$i" --cache-dir "$dir/cache$i" "${node_extra[@]}"
			node_outs+=("$dir/node$i.out")
		fi
		if ((i <= baselines)); then
			start_node "$dir" "base$i" --without-package --cache-dir "$dir/base$i-keys" "${node_extra[@]}"
			base_outs+=("$dir/base$i.out")
		fi
	done
	key=$(default_key)
	[[ $key =~ ^[0-9a-f-]{36}$ ]] || die "no default key in the server's status ($key)"
	wait_for "all $n node(s) to protect with the current key $key" 120 all_on_key "$key"
	for f in "${base_outs[@]}"; do wait_for "the baseline node $f" 60 grep -q '^KEY ' "$f"; done
	sleep 3   # let start-up work (JIT, tiering) settle
}

# rotate DIR COUNT: COUNT emergency rotations, $spacing s apart; each line of DIR/rotations is
#   rotation t0 t1 key   (t0 just before the call, t1 when it answered; $EPOCHREALTIME seconds)
rotate() {
	local dir=$1 count=$2 r t0 t1 answer key ticks_before started=$EPOCHREALTIME
	: >"$dir/rotations"
	ticks_before=$(cpu_ticks)
	for ((r = 1; r <= count; r++)); do
		t0=$EPOCHREALTIME
		answer=$(curl -sS --max-time 10 -X POST -H "Authorization: Bearer $admin_token" -H 'Content-Type: application/json' \
			-d '{"immediate":true,"revoke_previous":true,"reason":"bench"}' "$server_url/v1/rings/default/rotate") \
			|| die "rotation $r: the rotate call failed"
		t1=$EPOCHREALTIME
		key=$(jq -r 'select(.result == "created") | .key_id' <<<"$answer")
		[[ $key =~ ^[0-9a-f-]{36}$ ]] || die "rotation $r: unexpected answer $answer"
		echo "$r $t0 $t1 $key" >>"$dir/rotations"
		sleep "$spacing"
		wait_for "all node(s) to protect with key $key (rotation $r)" 15 all_saw_key "$key"
	done
	# The nodes' CPU during the rotations, in % of one CPU per node; and the load average.
	awk -v t="$(($(cpu_ticks) - ticks_before))" -v hz="$(getconf CLK_TCK)" -v n="${#node_pids[@]}" -v a="$started" -v b="$EPOCHREALTIME" \
		'BEGIN { printf "%.1f\n", 100 * t / hz / (b - a) / n }' >"$dir/node-cpu"
	cut -d' ' -f1 /proc/loadavg >"$dir/loadavg"
	grep '"path":"/v1/rings/default/rotate"' "$dir/server.err" | jq -r .duration_ms >"$dir/server-rotate-ms"
	node_failed
}

# The CPU time (clock ticks, user + system) used so far by the current run's nodes.
cpu_ticks() {
	local pid total=0
	for pid in "${node_pids[@]}"; do
		total=$((total + $(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || echo 0)))
	done
	echo "$total"
}

# memory DIR NAMES...: sends MEM to each node in turn; DIR/memory gets "NAME managed=B working_set=B ...".
memory() {
	local dir=$1 name fdvar
	shift
	for name in "$@"; do
		fdvar=fd_$name
		echo MEM >&"${!fdvar}"
		wait_for "MEM from $name" 30 grep -q '^MEM ' "$dir/$name.out"
		grep -m1 '^MEM ' "$dir/$name.out" | sed "s/^MEM /$name /" >>"$dir/memory"
	done
}

# Stops the current run's processes (nodes stop at the end of stdin; TERM, then KILL after 10 s).
stop_all() {
	local fd pid k
	for fd in "${fds[@]}"; do exec {fd}>&-; done
	fds=()
	for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do
		for ((k = 0; k < 100; k++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	pids=()
	node_pids=()
}

# Latency: N package nodes, $rotations rotations; then each node's memory.
run_latency() {
	local n=$1 dir=$work/n$1 i
	log "N=$n: a fresh server and $n node(s)"
	start_nodes "$dir" "$n" 0
	log "N=$n: all nodes protect with the current key; $rotations rotations, ${spacing} s apart"
	rotate "$dir" "$rotations"
	memory "$dir" $(for ((i = 1; i <= n; i++)); do echo "node$i"; done)
	stop_all
	samples "$dir" "$n"
}

# Memory, for MODE "worker" (the generic host alone, as in the latency runs) or "web" (the same
# node also running Kestrel with one endpoint, as an ASP.NET Core site does): $mem_pairs package
# nodes and as many without the package, started alternately, side by side on one server;
# $mem_rotations rotations (the package nodes then hold what a node that followed rotations
# holds); MEM from each after 2 s.
run_memory() {
	local mode=$1 dir=$work/memory-$1 i names=()
	log "memory ($mode): a fresh server, $mem_pairs nodes with the package and $mem_pairs without"
	node_extra=()
	[[ $mode == web ]] && node_extra=(--web)
	start_nodes "$dir" "$mem_pairs" "$mem_pairs"
	rotate "$dir" "$mem_rotations"
	sleep 2
	for ((i = 1; i <= mem_pairs; i++)); do names+=("node$i" "base$i"); done
	memory "$dir" "${names[@]}"
	stop_all
	node_extra=()
}

# samples DIR N: one line per node and rotation in DIR/samples:
#   rotation node total answered ring key_after_ring server_first node_share server_spread   (ms)
# total = KEY(new key) - t0; answered = rotate call answered - t0; ring = the node's first RING
# at or after t0, - t0; key_after_ring = KEY - RING; server_first = the server's first answer of
# the rotation to a node's long-poll (the "time" of its access-log line, written when the answer
# is out), - t0; node_share = KEY - server_first (an upper bound of the node's own time: receiving,
# checking and swapping in the ring, ASP.NET Core's rebuild, the next Protect; it also holds the
# server's writes to the nodes before this one); server_spread = the server's last long-poll answer
# of the rotation - its first.
samples() {
	local dir=$1 n=$2 i
	: >"$dir/samples"
	grep '"path":"/v1/rings/default/keys"' "$dir/server.err" | jq -r 'select(.status == 200) | .time
		| capture("^(?<s>[^.]+)(?<f>\\.[0-9]+)?Z$") | (((.s + "Z") | fromdateiso8601) * 1000 + ((.f // "0") | tonumber) * 1000)
		| tostring' | sort -n >"$dir/longpolls"
	for ((i = 1; i <= n; i++)); do
		awk -v node="$i" -v rotations="$dir/rotations" -v longpolls="$dir/longpolls" '
			function ms(t,   s, f) { s = substr(t, 1, index(t, ".") - 1); f = substr(t, index(t, ".") + 1); return (s * 1000) + (f / 1000) }
			FILENAME == rotations { rot[$1] = $4; t0[$1] = ms($2); t1[$1] = ms($3); count = $1; next }
			FILENAME == longpolls { lp[++nl] = $1; next }
			$1 == "KEY" { key_at[$2] = $3; next }
			$1 == "RING" { rings[++nr] = $2; next }
			END {
				for (r = 1; r <= count; r++) {
					end = (r < count) ? t0[r + 1] : t0[r] + 60000
					ring = -1
					for (j = 1; j <= nr; j++) if (rings[j] + 0 >= t0[r]) { ring = rings[j]; break }
					first = -1; last = -1
					for (j = 1; j <= nl; j++) if (lp[j] + 0 >= t0[r] && lp[j] + 0 < end) { if (first < 0) first = lp[j]; last = lp[j] }
					if (!(rot[r] in key_at) || ring < 0 || first < 0) { printf "%d %d MISSING\n", r, node; continue }
					key = key_at[rot[r]]
					printf "%d %d %.3f %.3f %.3f %.3f %.3f %.3f %.3f\n", r, node, key - t0[r], t1[r] - t0[r], ring - t0[r], key - ring, first - t0[r], key - first, last - first
				}
			}' "$dir/rotations" "$dir/longpolls" "$dir/node$i.out" >>"$dir/samples"
	done
	if grep -q MISSING "$dir/samples"; then die "some samples are missing: $(grep MISSING "$dir/samples" | head -3)"; fi
}

# pct FILE COLUMN P: nearest-rank percentile P of a column (P=100 is the maximum).
pct() {
	awk -v c="$2" '{ print $c }' "$1" | sort -n | awk -v p="$3" '{ v[NR] = $1 } END { k = int((p / 100) * NR); if (k < (p / 100) * NR) k++; if (k < 1) k = 1; printf "%.1f", v[k] }'
}

mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
# values MEMORY_FILE PREFIX KEY: the values (bytes) of KEY on the lines of nodes named PREFIX*, sorted.
values() { grep "^$2[0-9]" "$1" | sed "s/.* $3=\([0-9-]*\).*/\1/" | sort -n; }
# median / spread MEMORY_FILE PREFIX KEY: the median in bytes; "median (min–max)" in MiB.
median() { values "$@" | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
spread() {
	values "$@" | awk '{ v[NR] = $1 } END { printf "%.1f (%.1f–%.1f)", v[int((NR + 1) / 2)] / 1048576, v[1] / 1048576, v[NR] / 1048576 }'
}

# ---------------------------------------------------------------------------------------------
started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
load_before=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')
for n in $node_counts; do
	run_latency "$n"
done
if ((mem_pairs > 0)); then
	run_memory worker
	run_memory web
fi
load_after=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')

# ---------------------------------------------------------------------------------------------
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || echo '?')
{
	echo "Run $started–$(date -u +%H:%M:%SZ): $(nproc) CPUs ($cpu), $(uname -sr), .NET SDK $(dotnet --version), runtime $(dotnet --list-runtimes | awk '/Microsoft.NETCore.App/ { v = $2 } END { print v }'), server $server_bin ($("$server_bin" version 2>/dev/null | head -n 1 || echo '?')$([[ -f $(dirname "$server_bin")/COMMIT ]] && echo ", commit $(head -c 7 "$(dirname "$server_bin")/COMMIT")")); load average $load_before before, $load_after after."
	echo "$rotations emergency rotations (immediate, revoke_previous) ${spacing} s apart per node count; each node protects every ${interval_ms} ms."
	echo
	echo "| Nodes | Samples | Rotate call → node protects with the new key: p50 | p99 | max | Nodes' CPU (per node) | Load average (1 min) at the end |"
	echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
	for n in $node_counts; do
		s=$work/n$n/samples
		printf '| %s | %s | **%s ms** | **%s ms** | %s ms | %s %% | %s |\n' "$n" "$(wc -l <"$s")" \
			"$(pct "$s" 3 50)" "$(pct "$s" 3 99)" "$(pct "$s" 3 100)" "$(cat "$work/n$n/node-cpu")" "$(cat "$work/n$n/loadavg")"
	done
	echo
	echo "Where the time goes (ms, p50 / p99 / max over the same samples; times of the server from its access log):"
	echo
	echo "| Nodes | Server handles the rotate call | Rotate call answered (curl) | Rotate call → server answers the first node's long-poll | First → last long-poll answer | Node: server's first answer → new key in use (upper bound) |"
	echo "| ---: | ---: | ---: | ---: | ---: | ---: |"
	for n in $node_counts; do
		s=$work/n$n/samples
		awk '{ print 0, 0, $1 }' "$work/n$n/server-rotate-ms" >"$work/n$n/server-col"
		printf '| %s | %s / %s / %s | %s / %s / %s | %s / %s / %s | %s / %s / %s | %s / %s / %s |\n' "$n" \
			"$(pct "$work/n$n/server-col" 3 50)" "$(pct "$work/n$n/server-col" 3 99)" "$(pct "$work/n$n/server-col" 3 100)" \
			"$(pct "$s" 4 50)" "$(pct "$s" 4 99)" "$(pct "$s" 4 100)" \
			"$(pct "$s" 7 50)" "$(pct "$s" 7 99)" "$(pct "$s" 7 100)" \
			"$(pct "$s" 9 50)" "$(pct "$s" 9 99)" "$(pct "$s" 9 100)" \
			"$(pct "$s" 8 50)" "$(pct "$s" 8 99)" "$(pct "$s" 8 100)"
	done
	echo
	for mode in worker web; do
		((mem_pairs > 0)) || break
		m=$work/memory-$mode/memory
		if [[ $mode == worker ]]; then
			echo "Memory after a forced full GC, worker nodes (generic host, as in the latency runs): $mem_pairs nodes with the package and $mem_pairs without (--without-package: AddDataProtection with a key folder), side by side, after $mem_rotations rotations; MiB, median (min–max):"
		else
			echo
			echo "The same with web nodes (--web: also Kestrel on 127.0.0.1 with one endpoint, as an ASP.NET Core site):"
		fi
		echo
		echo "| | With the package | Without | Overhead per node (difference of medians) |"
		echo "| --- | ---: | ---: | ---: |"
		for k in managed:"Managed heap (GC.GetTotalMemory)" working_set:"Working set (Environment.WorkingSet)" rss_anon:"of which anonymous (RssAnon)" rss_shmem:"of which JIT code, double-mapped (RssShmem)" rss_file:"of which file-backed, shared (RssFile)" gc_committed:"GC committed (GC.GetGCMemoryInfo)" \
			rss_anon_aggressive:"RssAnon after an aggressive GC" gc_committed_aggressive:"GC committed after an aggressive GC" \
			allocated:"Allocated since start (GC.GetTotalAllocatedBytes)"; do
			printf '| %s | %s | %s | **%s** |\n' "${k#*:}" "$(spread "$m" node "${k%%:*}")" "$(spread "$m" base "${k%%:*}")" \
				"$(mib $(($(median "$m" node "${k%%:*}") - $(median "$m" base "${k%%:*}"))))"
		done
		printf '| Threads | %s | %s | %s |\n' "$(median "$m" node threads)" "$(median "$m" base threads)" \
			"$(($(median "$m" node threads) - $(median "$m" base threads)))"
	done
	echo
	for n in $node_counts; do
		m=$work/n$n/memory
		printf 'Package nodes at the end of the N=%s run (after %s rotations), median (min–max), MiB: managed heap %s, working set %s, RssAnon %s, RssShmem %s, RssFile %s, GC committed %s; after an aggressive GC: RssAnon %s, GC committed %s.\n' \
			"$n" "$rotations" "$(spread "$m" node managed)" "$(spread "$m" node working_set)" "$(spread "$m" node rss_anon)" "$(spread "$m" node rss_shmem)" \
			"$(spread "$m" node rss_file)" "$(spread "$m" node gc_committed)" "$(spread "$m" node rss_anon_aggressive)" "$(spread "$m" node gc_committed_aggressive)"
	done
} >"$work/summary.md"

echo
cat "$work/summary.md"
