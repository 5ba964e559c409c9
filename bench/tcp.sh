#!/usr/bin/env bash
# TCP echo benchmark: `net` against luv, copas, LuaSocket and raw tokio, in ONE run with
# interleaved reps (rep 1 of every entry, then rep 2, ...), server on core $SERVER_CPU (0), load
# generator on core $LOAD_CPU (1), both via prio.sh. Prints medians and the target ratios.
#   ping-pong: tcp-load, $CONNS (50) connections x $SIZE (64) B, each waits for its echo, $SECS (10) s
#              after a 1 s warm-up. Figures: round trips/s, server CPU us per round trip.
#   bulk:      tcp-load --mode bulk, 1 connection, 64 KiB writes + concurrent reads, $BULK_SECS (5) s.
#              Figure: echoed MB/s (1e6 B/s).
# Usage: bench/tcp.sh [name ...]     (default: all; names below)
# Env:   REPS (sets both), REPS_PP (3), REPS_BULK (5), SECS (10), BULK_SECS (5), CONNS, SIZE,
#        OUT (/tmp/net-bench), NET54/NETJIT (net.so paths), AG_NICE (prio.sh), QUIET_MAX.
# Quick look: REPS=1 SECS=3 BULK_SECS=3 bench/tcp.sh
set -u
. "$(dirname "$0")/lib.sh"
REPS_PP=${REPS_PP:-${REPS:-3}}
REPS_BULK=${REPS_BULK:-${REPS:-5}}
SECS=${SECS:-10}; BULK_SECS=${BULK_SECS:-5}; CONNS=${CONNS:-50}; SIZE=${SIZE:-64}
L=$BENCH/lua
RUN_ID=$(date +%Y%m%d-%H%M%S)
snapshot_net "$RUN_ID"
TSV=$OUT/tcp-$RUN_ID.tsv

[ -x "$TOOLS/tcp-load" ] && [ -x "$TOOLS/tcp-echo-server" ] || {
	echo "bench tools not built: run bench/install.sh (or cargo build --release -j2 --manifest-path bench/tools/Cargo.toml)" >&2
	exit 1; }

# name -> "port kind server-cmd..."   kind: pp (ping-pong) | bulk
declare -A SPEC
SPEC[net-5.4]="9101 pp lua5.4 $L/net_tcp_echo.lua 9101"
SPEC[net-luajit]="9102 pp luajit $L/net_tcp_echo.lua 9102"
SPEC[luv-5.4]="9103 pp lua5.4 $L/tcp_echo_luv.lua 9103"
SPEC[luv-luajit]="9104 pp luajit $L/tcp_echo_luv.lua 9104"
SPEC[copas-5.4]="9105 pp lua5.4 $L/tcp_echo_copas.lua 9105 $SIZE"
SPEC[tokio]="9106 pp $TOOLS/tcp-echo-server --port 9106"
SPEC[callbacks-5.4]="9107 pp lua5.4 $L/net_callbacks_echo.lua 9107"
SPEC[callbacks-luajit]="9108 pp luajit $L/net_callbacks_echo.lua 9108"
SPEC[bulk-net-5.4]="9111 bulk lua5.4 $L/net_tcp_echo.lua 9111"
SPEC[bulk-net-luajit]="9112 bulk luajit $L/net_tcp_echo.lua 9112"
SPEC[bulk-luv-5.4]="9113 bulk lua5.4 $L/tcp_echo_luv.lua 9113"
SPEC[bulk-luasocket-5.4]="9114 bulk lua5.4 $L/tcp_echo_socket.lua 9114 65536"
SPEC[bulk-copas-5.4]="9115 bulk lua5.4 $L/tcp_echo_copas.lua 9115 65536"
SPEC[bulk-tokio]="9116 bulk $TOOLS/tcp-echo-server --port 9116"
ALL=(net-5.4 net-luajit callbacks-5.4 callbacks-luajit luv-5.4 luv-luajit copas-5.4 tokio
     bulk-net-5.4 bulk-net-luajit bulk-luv-5.4 bulk-luasocket-5.4 bulk-copas-5.4 bulk-tokio)
NAMES=("$@"); [ ${#NAMES[@]} -gt 0 ] || NAMES=("${ALL[@]}")
for n in "${NAMES[@]}"; do [ -n "${SPEC[$n]:-}" ] || { echo "unknown name $n (known: ${ALL[*]})" >&2; exit 2; }; done

# Skip net entries whose net.so does not load or has no net.tcp.listen yet.
SKIP=()
net_ok lua5.4 || { echo "SKIP net on Lua 5.4: $NET54 unusable: $(head -1 "$OUT/net_ok.lua5.4.log")"; SKIP+=(net-5.4 callbacks-5.4 bulk-net-5.4); }
net_ok luajit || { echo "SKIP net on LuaJIT: $NETJIT unusable: $(head -1 "$OUT/net_ok.luajit.log")"; SKIP+=(net-luajit callbacks-luajit bulk-net-luajit); }
[ ${#SKIP[@]} -eq 0 ] || echo "  (build them with ci/build.sh; see bench/README.md)"
skipped() { local s; for s in "${SKIP[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }

echo "tcp.sh run $RUN_ID: ping-pong ${CONNS}x${SIZE} B ${SECS}s x$REPS_PP, bulk 64 KiB ${BULK_SECS}s x$REPS_BULK; server core $SERVER_CPU, load core $LOAD_CPU; raw -> $OUT"
printf 'name\tkind\trep\tvalue\tsrv_us_per_op\tsrv_cores\tcli_cores\tbg_cores\terrors\n' >"$TSV"
MAXREP=$(( REPS_PP > REPS_BULK ? REPS_PP : REPS_BULK ))
for rep in $(seq 1 "$MAXREP"); do
	for n in "${NAMES[@]}"; do
		skipped "$n" && continue
		# shellcheck disable=SC2086
		set -- ${SPEC[$n]}; port=$1; kind=$2; shift 2
		if [ "$kind" = bulk ]; then [ "$rep" -le "$REPS_BULK" ] || continue
		else [ "$rep" -le "$REPS_PP" ] || continue; fi
		wait_quiet
		start_server "$port" "$RUN_ID-$n-$rep" "$@" || { echo "$n rep$rep: server failed to start (log: $OUT/raw/$RUN_ID-$n-$rep.server.log)"; continue; }
		out="$OUT/raw/$RUN_ID-$n-$rep.out"
		if [ "$kind" = bulk ]; then
			args=(--mode bulk --chunk 65536); secs=$BULK_SECS
		else
			args=(--conns "$CONNS" --size "$SIZE"); secs=$SECS
			load "$TOOLS/tcp-load" --addr "127.0.0.1:$port" "${args[@]}" --secs 1 >/dev/null 2>&1 # warm-up
		fi
		measure_begin
		load /usr/bin/time -f "$TIMEFMT" "$TOOLS/tcp-load" --addr "127.0.0.1:$port" "${args[@]}" --secs "$secs" >"$out" 2>&1
		cc=$(client_cpu "$out"); cc=${cc:-0}; measure_end "$cc"
		stop_server
		errs=$(kv errors <"$out"); errs=${errs:-?}
		[ -z "$SRV_RC" ] || errs="$errs+server-died(rc=$SRV_RC)"   # rc 141 = SIGPIPE
		cli=$(awk -v c="$cc" -v w="$WALL" 'BEGIN{printf "%.2f", c/w}')
		srvc=$(awk -v s="$SRVS" -v w="$WALL" 'BEGIN{ if (s == "NA") print s; else printf "%.2f", s/w}')
		if [ "$kind" = bulk ]; then
			v=$(kv MBps <"$out"); mb=$(awk -v b="$(kv bytes <"$out")" 'BEGIN{print b/1e6}')
			us=$(awk -v s="$SRVS" -v m="${mb:-0}" 'BEGIN{ if (m>0 && s != "NA") printf "%.1f", s*1e6/m; else print "NA" }')
			echo "$n rep$rep: MB/s=${v:-FAIL} srv_us/MB=$us errors=$errs srv_cores=$srvc cli_cores=$cli bg=$BG"
		else
			v=$(kv rate <"$out"); rts=$(kv roundtrips <"$out")
			us=$(awk -v s="$SRVS" -v r="${rts:-0}" 'BEGIN{ if (r>0 && s != "NA") printf "%.2f", s*1e6/r; else print "NA" }')
			echo "$n rep$rep: rt/s=${v:-FAIL} srv_us/rt=$us errors=$errs srv_cores=$srvc cli_cores=$cli bg=$BG"
		fi
		[ -n "${v:-}" ] || { echo "  tool output: $(tail -3 "$out" | tr '\n' ' ')"; v=NA; }
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "$kind" "$rep" "$v" "$us" "$srvc" "$cli" "$BG" "$errs" >>"$TSV"
	done
done
echo
python3 "$BENCH/summarize_tcp.py" "$TSV"
