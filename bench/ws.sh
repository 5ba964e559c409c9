#!/usr/bin/env bash
# WebSocket benchmark: `net` against lua-http (cqueues), node `ws` and raw tokio-tungstenite, in ONE
# run with interleaved reps (rep 1 of every entry and window, then rep 2, ...), server on core
# $SERVER_CPU (0), load generator on core $LOAD_CPU (1), both via prio.sh. Prints medians and the
# target ratios. Tools and anchor servers come from bench/install.sh (bench/tools/target/anchors/).
#   echo: ws-load, $CONNS (50) connections x $SIZE (32) B text, each keeping WINDOW messages in
#         flight (WINDOWS="1 16"), $SECS (10) s after a 2 s warm-up. Figures: echoed msgs/s,
#         server CPU us per message.
#   idle: ws-idle opens $IDLE_CONNS (1000) connections one after another and holds them; server
#         RSS before and 2 s after they are all open -> KiB per connection; for net also the Lua
#         heap (collectgarbage("count") after a full GC) per connection and, on LuaJIT, glibc
#         malloc's in-use bytes per connection (the Rust side: net.so uses the system allocator).
# Usage: bench/ws.sh [name ...]   (default: all; names: net-5.4 net-luajit lua-http-5.4
#        lua-http-luajit node-ws tungstenite, and tungstenite-4k for the idle test only)
# Env:   REPS (3; IDLE_REPS defaults to it), SECS (10), WARM (2), CONNS (50), SIZE (32),
#        WINDOWS ("1 16"), IDLE_CONNS (1000), HOLD (10: ws-idle's bound; it is stopped once measured),
#        ECHO (1; 0 skips it), IDLE (1; 0 skips it),
#        OUT (/tmp/net-bench), NET54/NETJIT (net.so paths), AG_NICE (prio.sh), QUIET_MAX.
# Quick look: REPS=1 SECS=3 bench/ws.sh
set -u
. "$(dirname "$0")/lib.sh"
REPS=${REPS:-3}; IDLE_REPS=${IDLE_REPS:-$REPS}
SECS=${SECS:-10}; WARM=${WARM:-2}; CONNS=${CONNS:-50}; SIZE=${SIZE:-32}; WINDOWS=${WINDOWS:-1 16}
IDLE_CONNS=${IDLE_CONNS:-1000}; HOLD=${HOLD:-10}; ECHO=${ECHO:-1}; IDLE=${IDLE:-1}
L=$BENCH/lua
A=${WS_ANCHORS:-$BENCH/tools/target/anchors}   # made by bench/install.sh
WSBIN=$A/target/release
RUN_ID=$(date +%Y%m%d-%H%M%S)
snapshot_net "$RUN_ID"
TSV=$OUT/ws-$RUN_ID.tsv

for f in "$WSBIN/ws-load" "$WSBIN/ws-idle" "$WSBIN/ws-echo-server" "$A/lua/ws_echo_luahttp.lua" "$A/node/node_modules/ws/package.json"; do
	[ -e "$f" ] || { echo "missing $f: run bench/install.sh" >&2; exit 1; }
done

# name -> "port server-cmd..."
declare -A SPEC
SPEC[net-5.4]="9201 lua5.4 $L/net_ws_echo.lua 9201"
SPEC[net-luajit]="9202 luajit $L/net_ws_echo.lua 9202"
SPEC[lua-http-5.4]="9203 lua5.4 $A/lua/ws_echo_luahttp.lua 9203"
SPEC[lua-http-luajit]="9204 luajit $A/lua/ws_echo_luahttp.lua 9204"
SPEC[node-ws]="9205 node $A/node/ws_echo.js 9205"
SPEC[tungstenite]="9206 $WSBIN/ws-echo-server --port 9206"
SPEC[tungstenite-4k]="9207 $WSBIN/ws-echo-server --port 9207 --bufsize 4096"   # idle only
ALL=(net-5.4 net-luajit lua-http-5.4 lua-http-luajit node-ws tungstenite tungstenite-4k)
NAMES=("$@"); [ ${#NAMES[@]} -gt 0 ] || NAMES=("${ALL[@]}")
for n in "${NAMES[@]}"; do [ -n "${SPEC[$n]:-}" ] || { echo "unknown name $n (known: ${ALL[*]})" >&2; exit 2; }; done
echo_entry() { [ "$1" != tungstenite-4k ]; } # tungstenite with 4 KiB buffers: idle memory only

# Skip net entries whose net.so does not load or has no net.ws.listen yet.
SKIP=()
net_ok lua5.4 ws || { echo "SKIP net on Lua 5.4: $NET54 unusable: $(head -1 "$OUT/net_ok.lua5.4.log")"; SKIP+=(net-5.4); }
net_ok luajit ws || { echo "SKIP net on LuaJIT: $NETJIT unusable: $(head -1 "$OUT/net_ok.luajit.log")"; SKIP+=(net-luajit); }
[ ${#SKIP[@]} -eq 0 ] || echo "  (build them with ci/build.sh; see bench/README.md)"
skipped() { local s; for s in "${SKIP[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }

echo "ws.sh run $RUN_ID: echo ${CONNS}x${SIZE} B windows [$WINDOWS] ${SECS}s x$REPS (ECHO=$ECHO), idle $IDLE_CONNS conns x$IDLE_REPS (IDLE=$IDLE); server core $SERVER_CPU, load core $LOAD_CPU; raw -> $OUT"
echo "versions: node $(node --version) ws $(node -p "require('$A/node/node_modules/ws/package.json').version"), lua-http $(dpkg-query -W -f='${Version}' lua-http 2>/dev/null), cqueues $(dpkg-query -W -f='${Version}' lua-cqueues 2>/dev/null)"
printf 'name\ttest\trep\tmsgs_per_s\tsrv_us_per_msg\tsrv_cores\tcli_cores\tbg_cores\terrors\tconns\trss_base_kib\trss_conns_kib\tkib_per_conn\tconnect_s\tlua_kib_base\tlua_kib_conns\tlua_kib_per_conn\tmalloc_kib_base\tmalloc_kib_conns\tmalloc_kib_per_conn\n' >"$TSV"
row() { local IFS=$'\t'; echo "$*" >>"$TSV"; }
T0=$(date +%s)

# ---- echo -----------------------------------------------------------------------------------
if [ "$ECHO" != 0 ]; then
for rep in $(seq 1 "$REPS"); do
	for w in $WINDOWS; do
		for n in "${NAMES[@]}"; do
			echo_entry "$n" || continue; skipped "$n" && continue
			# shellcheck disable=SC2086
			set -- ${SPEC[$n]}; port=$1; shift
			url="ws://127.0.0.1:$port/"; id="$RUN_ID-$n-w$w-$rep"
			wait_quiet
			start_server "$port" "$id" "$@" || { echo "$n w$w rep$rep: server failed to start (log: $OUT/raw/$id.server.log)"; continue; }
			args=(--url "$url" --conns "$CONNS" --size "$SIZE" --window "$w")
			load "$WSBIN/ws-load" "${args[@]}" --secs "$WARM" >/dev/null 2>&1 # warm-up
			out="$OUT/raw/$id.out"
			measure_begin
			load /usr/bin/time -f "$TIMEFMT" "$WSBIN/ws-load" "${args[@]}" --secs "$SECS" >"$out" 2>&1
			cc=$(client_cpu "$out"); cc=${cc:-0}; measure_end "$cc"
			stop_server
			errs=$(kv errors <"$out"); errs=${errs:-?}
			[ -z "$SRV_RC" ] || errs="$errs+server-died(rc=$SRV_RC)"
			v=$(kv rate <"$out"); msgs=$(kv msgs <"$out")
			cli=$(awk -v c="$cc" -v w="$WALL" 'BEGIN{printf "%.2f", c/w}')
			srvc=$(awk -v s="$SRVS" -v w="$WALL" 'BEGIN{ if (s == "NA") print s; else printf "%.2f", s/w}')
			us=$(awk -v s="$SRVS" -v m="${msgs:-0}" 'BEGIN{ if (m>0 && s != "NA") printf "%.2f", s*1e6/m; else print "NA" }')
			echo "$n w$w rep$rep: msgs/s=${v:-FAIL} srv_us/msg=$us errors=$errs srv_cores=$srvc cli_cores=$cli bg=$BG"
			[ -n "${v:-}" ] || { echo "  tool output: $(tail -3 "$out" | tr '\n' ' ')"; v=NA; }
			row "$n" "echo-w$w" "$rep" "$v" "$us" "$srvc" "$cli" "$BG" "$errs" "$CONNS" NA NA NA NA NA NA NA NA NA NA
		done
	done
done
fi

# ---- idle memory ----------------------------------------------------------------------------
rss() { awk '/^VmRSS/{print $2}' "/proc/$1/status" 2>/dev/null; }
# lua_stats FILE : ask net_ws_echo.lua (NET_WS_STATS=FILE) for its Lua heap; prints its line or ""
lua_stats() {
	rm -f "$1"; : >"$1.go"
	for _ in $(seq 1 50); do [ -s "$1" ] && { cat "$1"; return; }; sleep 0.1; done
}
if [ "$IDLE" != 0 ]; then
ulimit -n 20000
for rep in $(seq 1 "$IDLE_REPS"); do
	for n in "${NAMES[@]}"; do
		skipped "$n" && continue
		# shellcheck disable=SC2086
		set -- ${SPEC[$n]}; port=$1; shift
		id="$RUN_ID-$n-idle-$rep"; stats="$OUT/raw/$id.luastats"; isnet=; case $n in net-*) isnet=1 ;; esac
		wait_quiet
		if [ -n "$isnet" ]; then
			NET_WS_STATS=$stats start_server "$port" "$id" "$@" || { echo "$n idle rep$rep: server failed"; continue; }
		else
			start_server "$port" "$id" "$@" || { echo "$n idle rep$rep: server failed"; continue; }
		fi
		sleep 1
		lb=NA; mb=NA; [ -z "$isnet" ] || { line=$(lua_stats "$stats"); lb=$(echo " $line" | kv lua_kib_after_gc); mb=$(echo " $line" | kv malloc_inuse_kib); }
		r0=$(rss "$SRV_PID")
		out="$OUT/raw/$id.out"; t0=$(date +%s.%N)
		timeout 120 taskset -c "$LOAD_CPU" "$BENCH/prio.sh" "$WSBIN/ws-idle" --url "ws://127.0.0.1:$port/" --conns "$IDLE_CONNS" --hold "$HOLD" >"$out" 2>&1 &
		cpid=$!
		for _ in $(seq 1 1200); do grep -q CONNECTED "$out" && break; kill -0 "$cpid" 2>/dev/null || break; sleep 0.1; done
		t1=$(date +%s.%N); sleep 2; r1=$(rss "$SRV_PID")
		lc=NA; mc=NA; lconns=; [ -z "$isnet" ] || { line=$(lua_stats "$stats"); lc=$(echo " $line" | kv lua_kib_after_gc); mc=$(echo " $line" | kv malloc_inuse_kib); lconns=$(echo " $line" | kv conns); }
		kill "$cpid" 2>/dev/null; wait "$cpid" 2>/dev/null; stop_server   # measured: no need to sit out HOLD
		ok=$(awk '/CONNECTED/{print $2}' "$out"); ok=${ok:-0}
		failed=$(sed -n 's/.*failed=\([0-9]*\).*/\1/p' "$out"); errs=${failed:-?}
		[ -z "$SRV_RC" ] || errs="$errs+server-died(rc=$SRV_RC)"
		per=$(awk -v a="$r0" -v b="$r1" -v n="$ok" 'BEGIN{ if (n>0 && a != "" && b != "") printf "%.2f", (b-a)/n; else print "NA"}')
		ct=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}')
		perconn() { awk -v a="${1:-x}" -v b="${2:-x}" -v n="$ok" 'BEGIN{ if (n>0 && a+0>0 && b+0>0) printf "%.2f", (b-a)/n; else print "NA"}'; }
		lper=$(perconn "$lb" "$lc"); mper=$(perconn "$mb" "$mc")
		echo "$n idle rep$rep: connected=$ok rss_base=${r0}KiB rss_$IDLE_CONNS=${r1}KiB per_conn=${per}KiB connect_time=${ct}s errors=$errs${isnet:+ lua_heap=${lb}->${lc}KiB (${lper} KiB/conn, conns seen by Lua=${lconns:-?}) malloc_inuse=${mb:-NA}->${mc:-NA}KiB (${mper} KiB/conn)}"
		row "$n" idle "$rep" NA NA NA NA NA "$errs" "$ok" "${r0:-NA}" "${r1:-NA}" "$per" "$ct" "${lb:-NA}" "${lc:-NA}" "$lper" "${mb:-NA}" "${mc:-NA}" "$mper"
	done
done
fi
echo
echo "run took $(( $(date +%s) - T0 )) s"
python3 "$BENCH/summarize_ws.py" "$TSV"
