#!/usr/bin/env bash
# Micro-benchmarks of the `net` runtime, on Lua 5.4 and LuaJIT, pinned to core $SERVER_CPU (0)
# via prio.sh, each run REPS (3) times; prints the medians against the targets:
#   read_fastpath.lua : ns per c:read(64) whose data is already there   (target <= 150 ns, LuaJIT)
#   tasks_100k.lua    : 100,000 tasks each net.sleep(0.1), net.run(), side by side with
#   tasks_luv.lua       the same job on bare coroutines and libuv timers (luv): wall and peak
#                       RSS ratios (targets <= 1.0x and <= 1.5x luv)
#   spawn_join.lua    : ns per net.spawn(empty):join(), from a task and from the main thread
# Usage: bench/micro.sh          Env: REPS (3), MIB (64, data read per read_fastpath run),
#        TASKS (100000), OUT (/tmp/net-bench), NET54/NETJIT (net.so paths).
# The luv side needs `luv` for both interpreters (bench/install.sh); without it, it is skipped.
set -u
. "$(dirname "$0")/lib.sh"
REPS=${REPS:-3}; MIB=${MIB:-64}; TASKS=${TASKS:-100000}
RUN_ID=$(date +%Y%m%d-%H%M%S)
snapshot_net "$RUN_ID"
LOG=$OUT/micro-$RUN_ID.log

LUAS=()
for lua in lua5.4 luajit; do
	if net_ok "$lua"; then LUAS+=("$lua")
	else echo "SKIP $lua: net.so unusable: $(head -1 "$OUT/net_ok.$lua.log")"; fi
done
[ ${#LUAS[@]} -gt 0 ] || { echo "no usable net.so (build with ci/build.sh)"; exit 1; }

run() { # run LUA SCRIPT ARGS... -> RESULT line (or FAIL)
	local r
	r=$(timeout 300 taskset -c "$SERVER_CPU" "$BENCH/prio.sh" "$@" 2>>"$LOG" | tee -a "$LOG" | grep '^RESULT')
	echo "${r:-FAIL}"
}
median() { sort -g | awk '{v[NR]=$1} END{ if (NR==0) print "NA"; else if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2 }'; }

declare -A RD TW TC TM LW LM SJ SM
echo "micro.sh run $RUN_ID: ${REPS} reps, core $SERVER_CPU; log -> $LOG"
for rep in $(seq 1 "$REPS"); do
	for lua in "${LUAS[@]}"; do
		wait_quiet
		r=$(run "$lua" "$BENCH/lua/read_fastpath.lua" "$MIB" 64)
		ns=$(kv ns_per_call <<<"$r"); echo "$lua rep$rep read(64): ${ns:-FAIL} ns/call"
		RD[$lua]+="${ns:-} "
		r=$(run "$lua" "$BENCH/lua/tasks_100k.lua" "$TASKS")
		w=$(kv wall_s <<<"$r"); c=$(kv cpu_s <<<"$r"); h=$(kv hwm_kib <<<"$r"); hp=$(kv heap_sleeping_kib <<<"$r")
		echo "$lua rep$rep $TASKS tasks: wall=${w:-FAIL} s cpu=${c:-} s VmHWM=${h:-} KiB lua_heap_sleeping=${hp:-} KiB"
		TW[$lua]+="${w:-} "; TC[$lua]+="${c:-} "; TM[$lua]+="${h:-}/${hp:-} "
		if "$lua" -e 'require("luv")' 2>/dev/null; then
			r=$(run "$lua" "$BENCH/lua/tasks_luv.lua" "$TASKS")
			w=$(kv wall_s <<<"$r"); h=$(kv hwm_kib <<<"$r")
			echo "$lua rep$rep $TASKS coroutines on luv timers: wall=${w:-FAIL} s VmHWM=${h:-} KiB"
			LW[$lua]+="${w:-} "; LM[$lua]+="${h:-} "
		fi
		r=$(run "$lua" "$BENCH/lua/spawn_join.lua")
		a=$(kv in_task_ns <<<"$r"); b=$(kv main_ns <<<"$r")
		echo "$lua rep$rep spawn+join: ${a:-FAIL} ns in a task, ${b:-FAIL} ns from the main thread"
		SJ[$lua]+="${a:-} "; SM[$lua]+="${b:-} "
	done
done

echo
echo "Medians of $REPS:"
printf '  %-8s %16s %18s %14s %16s %20s\n' lua "read(64) ns/call" "${TASKS} tasks wall s" "cpu s" "VmHWM MiB" "heap sleeping MiB"
for lua in "${LUAS[@]}"; do
	rd=$(tr ' ' '\n' <<<"${RD[$lua]}" | grep . | median)
	tw=$(tr ' ' '\n' <<<"${TW[$lua]}" | grep . | median)
	tc=$(tr ' ' '\n' <<<"${TC[$lua]}" | grep . | median)
	hw=$(tr ' ' '\n' <<<"${TM[$lua]}" | grep . | cut -d/ -f1 | grep . | median)
	hp=$(tr ' ' '\n' <<<"${TM[$lua]}" | grep . | cut -d/ -f2 | grep . | median)
	printf '  %-8s %16s %18s %14s %16s %20s\n' "$lua" "$rd" "$tw" "$tc" \
		"$(awk -v k="$hw" 'BEGIN{ if (k=="NA") print k; else printf "%.1f", k/1024 }')" \
		"$(awk -v k="$hp" 'BEGIN{ if (k=="NA") print k; else printf "%.1f", k/1024 }')"
	if [ "$lua" = luajit ]; then
		RDJ=$rd
	fi
done
echo "Tasks against luv (same job, same run; ratio of medians; targets: wall <= 1.0, peak RSS <= 1.5):"
for lua in "${LUAS[@]}"; do
	lw=$(tr ' ' '\n' <<<"${LW[$lua]:-}" | grep . | median)
	lm=$(tr ' ' '\n' <<<"${LM[$lua]:-}" | grep . | median)
	tw=$(tr ' ' '\n' <<<"${TW[$lua]}" | grep . | median)
	hw=$(tr ' ' '\n' <<<"${TM[$lua]}" | grep . | cut -d/ -f1 | grep . | median)
	awk -v l="$lua" -v tw="$tw" -v lw="$lw" -v hw="$hw" -v lm="$lm" 'BEGIN{
		if (lw=="NA" || tw=="NA") { printf "  %-8s luv not measured\n", l; exit }
		rw=tw/lw; rm=hw/lm
		printf "  %-8s wall %.3f / %.3f s = %.2fx %s   peak RSS %.1f / %.1f MiB = %.2fx %s\n", l, tw, lw, rw,
			(rw<=1.0) ? "MET" : "MISSED", hw/1024, lm/1024, rm, (rm<=1.5) ? "MET" : "MISSED" }'
done
echo "spawn + join of an empty task (medians, ns):"
for lua in "${LUAS[@]}"; do
	printf '  %-8s %8s in a task %8s from the main thread\n' "$lua" \
		"$(tr ' ' '\n' <<<"${SJ[$lua]}" | grep . | median)" "$(tr ' ' '\n' <<<"${SM[$lua]}" | grep . | median)"
done
echo "Targets (LuaJIT):"
if [ -n "${RDJ:-}" ]; then
	awk -v v="$RDJ" 'BEGIN{ printf "  read with data already there: %s ns/call, target <= 150  %s\n", v, (v!="NA" && v<=150) ? "MET" : "MISSED" }'
else
	echo "  (LuaJIT not measured)"
fi
