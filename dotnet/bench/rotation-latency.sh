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
#   BENCH_KEEP=1     keep the work folder (server and node logs, raw samples)
#
# How: one fresh `dpkeyring serve` per node count (embedded file store, 127.0.0.1, free port).
# Each node (dotnet/bench/Dpkeyring.Bench.Node) protects a payload every millisecond and prints
# `KEY <key id> <unix ms>` when the key in its payloads changes, and `RING <unix ms>` when the
# package has swapped in a new ring version (its dpkeyring.fetches counter, result=changed). The
# script takes the time just before each POST /v1/rings/default/rotate ({"immediate": true,
# "revoke_previous": true}) from bash's $EPOCHREALTIME, the same clock (CLOCK_REALTIME); a
# sample is KEY(new key) minus that time, per node and rotation. The script reads the logs only
# between rotations, so that it does not take CPU from the nodes while they react. Percentiles
# are nearest-rank over all samples of a node count (20 samples for 1 node, 200 for 10).
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
project=$here/Dpkeyring.Bench.Node
node_exe=$project/bin/Release/net10.0/Dpkeyring.Bench.Node

[[ -x $server_bin ]] || { echo "rotation-latency.sh: no server binary at $server_bin (set DPKEYRING_BIN)" >&2; exit 2; }
server_bin=$(cd "$(dirname "$server_bin")" && pwd)/$(basename "$server_bin")

work=$(mktemp -d "${TMPDIR:-/tmp}/dpkeyring-rotation-bench.XXXXXX")
pids=()     # every process started here, stopped by pid in cleanup
fds=()      # write ends of the nodes' stdin FIFOs

cleanup() {
	local status=$? fd pid i
	for fd in "${fds[@]}"; do exec {fd}>&- 2>/dev/null || true; done   # a node stops at the end of stdin
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
log "building the bench node (dotnet build -c Release)"
timeout 600 dotnet build -c Release -nologo -v quiet "$project" >"$work/build.log" 2>&1 \
	|| { cat "$work/build.log" >&2; die "dotnet build"; }
[[ -x $node_exe ]] || die "no $node_exe after the build"

# ---------------------------------------------------------------------------------------------
# One run: a fresh server, N package nodes (plus the baseline node when asked), the rotations,
# then MEM from every node. Leaves its files in $work/nN.
server_url=""
admin_token=""

start_server() {
	local dir=$1
	mkdir -p "$dir/data"
	"$server_bin" serve --addr 127.0.0.1:0 --data "$dir/data" >"$dir/server.out" 2>"$dir/server.err" &
	pids+=($!)
	wait_for "the server to listen" 20 grep -q '"msg":"listening"' "$dir/server.err"
	server_url="http://$(grep -m1 '"msg":"listening"' "$dir/server.err" | jq -r .addr)"
	[[ $server_url == http://127.0.0.1:* ]] || die "the server listens on $server_url, not 127.0.0.1"
	wait_for "the server's tokens" 10 grep -q '^  node ' "$dir/server.out"
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
	"$node_exe" "$@" <"$dir/$name.in" >"$dir/$name.out" 2>"$dir/$name.err" &
	pids+=($!)
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

run() {
	local n=$1 with_baseline=$2 dir=$work/n$1 i r
	mkdir -p "$dir"
	log "N=$n: starting a server and $n node(s)$( ((with_baseline)) && echo ' plus the baseline node without the package')"
	start_server "$dir"
	node_outs=()
	for ((i = 1; i <= n; i++)); do
		start_node "$dir" "node$i" --url "$server_url" --token-file "$dir/node.token" --node-id "bench-$i" --cache-dir "$dir/cache$i"
		node_outs+=("$dir/node$i.out")
	done
	if ((with_baseline)); then
		start_node "$dir" baseline --without-package --cache-dir "$dir/baseline-keys"
	fi

	local key
	key=$(default_key)
	[[ $key =~ ^[0-9a-f-]{36}$ ]] || die "no default key in the server's status ($key)"
	wait_for "all $n node(s) to protect with the current key $key" 120 all_on_key "$key"
	if ((with_baseline)); then wait_for "the baseline node" 60 grep -q '^KEY ' "$dir/baseline.out"; fi
	log "N=$n: all nodes protect with $key; settling 3 s"
	sleep 3

	: >"$dir/rotations"
	for ((r = 1; r <= rotations; r++)); do
		local t0 t1 answer
		t0=$EPOCHREALTIME
		answer=$(curl -sS --max-time 10 -X POST -H "Authorization: Bearer $admin_token" -H 'Content-Type: application/json' \
			-d '{"immediate":true,"revoke_previous":true,"reason":"bench"}' "$server_url/v1/rings/default/rotate") \
			|| die "rotation $r: the rotate call failed"
		t1=$EPOCHREALTIME
		key=$(jq -r 'select(.result == "created") | .key_id' <<<"$answer")
		[[ $key =~ ^[0-9a-f-]{36}$ ]] || die "rotation $r: unexpected answer $answer"
		echo "$r $t0 $t1 $key" >>"$dir/rotations"
		sleep "$spacing"
		wait_for "all $n node(s) to protect with key $key (rotation $r)" 15 all_saw_key "$key"
	done
	node_failed
	log "N=$n: $rotations rotations done; asking every node for its memory"

	local name fdvar
	for name in $(for ((i = 1; i <= n; i++)); do echo "node$i"; done) $( ((with_baseline)) && echo baseline); do
		fdvar=fd_$name
		echo MEM >&"${!fdvar}"
		wait_for "MEM from $name" 30 grep -q '^MEM ' "$dir/$name.out"
		grep -m1 '^MEM ' "$dir/$name.out" | sed "s/^MEM /$name /" >>"$dir/memory"
	done

	# Stop this run's processes before the next one (they stop at the end of stdin).
	local fd pid
	for fd in "${fds[@]}"; do exec {fd}>&-; done
	fds=()
	for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do
		local k
		for ((k = 0; k < 100; k++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	pids=()
	samples "$dir" "$n"
}

# samples DIR N: one line per node and rotation in DIR/samples:
#   rotation node total_ms answered_ms ring_ms rebuild_ms
# total = KEY(new key) - t0; answered = rotate answer - t0; ring = first RING at or after t0 - t0;
# rebuild = KEY - RING (the node's own share: ASP.NET Core's key ring rebuilt, next Protect).
samples() {
	local dir=$1 n=$2 i
	: >"$dir/samples"
	for ((i = 1; i <= n; i++)); do
		awk -v node="$i" '
			function ms(t,   s, f) { s = substr(t, 1, index(t, ".") - 1); f = substr(t, index(t, ".") + 1); return (s * 1000) + (f / 1000) }
			FNR == NR { rot[$1] = $4; t0[$1] = ms($2); t1[$1] = ms($3); count = $1; next }
			$1 == "KEY" { key_at[$2] = $3; next }
			$1 == "RING" { rings[++nr] = $2; next }
			END {
				for (r = 1; r <= count; r++) {
					ring = -1
					for (j = 1; j <= nr; j++) if (rings[j] >= t0[r]) { ring = rings[j]; break }
					if (!(rot[r] in key_at)) { printf "%d %d MISSING\n", r, node; continue }
					printf "%d %d %.3f %.3f %.3f %.3f\n", r, node, key_at[rot[r]] - t0[r], t1[r] - t0[r], ring - t0[r], key_at[rot[r]] - ring
				}
			}' "$dir/rotations" "$dir/node$i.out" >>"$dir/samples"
	done
	if grep -q MISSING "$dir/samples"; then die "some samples are missing: $(grep MISSING "$dir/samples" | head -3)"; fi
}

# pct FILE COLUMN P: nearest-rank percentile P of a column (P=100 is the maximum).
pct() {
	awk -v c="$2" '{ print $c }' "$1" | sort -n | awk -v p="$3" '{ v[NR] = $1 } END { k = int((p / 100) * NR); if (k < (p / 100) * NR) k++; if (k < 1) k = 1; printf "%.1f", v[k] }'
}

mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
# spread MEMORY_FILE KEY: "min / median / max" in MiB of KEY over the package nodes.
spread() {
	grep '^node' "$1" | sed "s/.* $2=\([0-9]*\).*/\1/" | sort -n \
		| awk '{ v[NR] = $1 } END { printf "%.1f / %.1f / %.1f", v[1] / 1048576, v[int((NR + 1) / 2)] / 1048576, v[NR] / 1048576 }'
}
field() { awk -v k="$2" '{ for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) print kv[2] } }' <<<"$1"; }

# ---------------------------------------------------------------------------------------------
started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
load_before=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')
first=1
for n in $node_counts; do
	run "$n" "$first"
	first=0
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')

# ---------------------------------------------------------------------------------------------
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || echo '?')
{
	echo "Run $started–$(date -u +%H:%M:%SZ): $(nproc) CPUs ($cpu), $(uname -sr), .NET SDK $(dotnet --version), runtime $(dotnet --list-runtimes | awk '/Microsoft.NETCore.App/ { v = $2 } END { print v }'), server $server_bin ($("$server_bin" version 2>/dev/null | head -n 1 || echo '?')$([[ -f $(dirname "$server_bin")/COMMIT ]] && echo ", commit $(head -c 7 "$(dirname "$server_bin")/COMMIT")")); load average $load_before before, $load_after after."
	echo "$rotations emergency rotations (immediate, revoke_previous) ${spacing} s apart per node count; nodes protect every 1 ms."
	echo
	echo "| Nodes | Samples | rotate → node protects with new key: p50 / p99 / max | rotate call answered (p50 / max) | rotate → ring swapped in at node (p50 / p99) | node: ring swapped in → new key (p50 / p99 / max) |"
	echo "| ---: | ---: | ---: | ---: | ---: | ---: |"
	for n in $node_counts; do
		s=$work/n$n/samples
		printf '| %s | %s | **%s** / **%s** / %s ms | %s / %s ms | %s / %s ms | %s / %s / %s ms |\n' "$n" "$(wc -l <"$s")" \
			"$(pct "$s" 3 50)" "$(pct "$s" 3 99)" "$(pct "$s" 3 100)" \
			"$(pct "$s" 4 50)" "$(pct "$s" 4 100)" \
			"$(pct "$s" 5 50)" "$(pct "$s" 5 99)" \
			"$(pct "$s" 6 50)" "$(pct "$s" 6 99)" "$(pct "$s" 6 100)"
	done
	echo
	first_n=${node_counts%% *}
	mem=$work/n$first_n/memory
	with=$(grep '^node1 ' "$mem")
	without=$(grep '^baseline ' "$mem")
	echo "Memory after a forced full GC, at the end of the N=$first_n run (MiB; with = node 1 after the rotations, without = the same program with --without-package, started with it):"
	echo
	echo "| | Managed heap (GC.GetTotalMemory) | Working set | Private anonymous resident (RssAnon) |"
	echo "| --- | ---: | ---: | ---: |"
	for k in managed working_set rss_anon; do eval "w_$k=\$(field \"\$with\" $k)"; eval "b_$k=\$(field \"\$without\" $k)"; done
	printf '| with the package | %s | %s | %s |\n' "$(mib "$w_managed")" "$(mib "$w_working_set")" "$(mib "$w_rss_anon")"
	printf '| without | %s | %s | %s |\n' "$(mib "$b_managed")" "$(mib "$b_working_set")" "$(mib "$b_rss_anon")"
	printf '| **overhead per node** | **%s** | **%s** | **%s** |\n' "$(mib $((w_managed - b_managed)))" "$(mib $((w_working_set - b_working_set)))" "$(mib $((w_rss_anon - b_rss_anon)))"
	for n in $node_counts; do
		[[ $n == "$first_n" ]] && continue
		m=$work/n$n/memory
		echo
		printf 'N=%s, package nodes after the rotations (min / median / max over %s nodes, MiB): managed heap %s, working set %s, RssAnon %s.\n' \
			"$n" "$n" "$(spread "$m" managed)" "$(spread "$m" working_set)" "$(spread "$m" rss_anon)"
	done
} >"$work/summary.md"

echo
cat "$work/summary.md"
