# Source me. Environment + helpers for bench/tcp.sh, ws.sh, http.sh and micro.sh (adapted from
# the workplace's performance anchors: shared/bench/anchors/{env,lib}.sh).
BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH/.." && pwd)
TOOLS=${TOOLS:-$BENCH/tools/target/release}
OUT=${OUT:-/tmp/net-bench}              # raw tool output + server logs + results.tsv (not in the repo)
SERVER_CPU=${SERVER_CPU:-0}             # taskset core for the server under test
LOAD_CPU=${LOAD_CPU:-1}                 # taskset core for the load generator
NET54=${NET54:-$ROOT/build/5.4/net.so}
NETJIT=${NETJIT:-$ROOT/build/luajit/net.so}
mkdir -p "$OUT/raw"

# Debian's copas (and coxpcall) are packaged for Lua 5.1-5.3 only (pure Lua); on 5.4 they run
# unmodified from those directories. net.so for each flavour comes first on its own cpath:
# LUA_CPATH_5_4 is what lua5.4 reads (before LUA_CPATH), LUA_CPATH is what LuaJIT reads.
export LUA_PATH_5_4="/usr/share/lua/5.4/?.lua;/usr/share/lua/5.4/?/init.lua;/usr/share/lua/5.3/?.lua;/usr/share/lua/5.3/?/init.lua;/usr/share/lua/5.1/?.lua;/usr/share/lua/5.1/?/init.lua;;"
export LUA_CPATH_5_4="$(dirname "$NET54")/?.so;;"
export LUA_CPATH="$(dirname "$NETJIT")/?.so;;"

# snapshot_net RUN_ID : copy both net.so into $OUT/net-RUN_ID/ and point the cpaths there, so
# a rebuild (ci/build.sh) during a run cannot mix two versions of net in one comparison.
snapshot_net() {
	local d=$OUT/net-$1 f
	mkdir -p "$d/5.4" "$d/luajit"
	for f in "$NET54:$d/5.4" "$NETJIT:$d/luajit"; do
		[ -f "${f%%:*}" ] && cp "${f%%:*}" "${f#*:}/net.so"
	done
	export LUA_CPATH_5_4="$d/5.4/?.so;;" LUA_CPATH="$d/luajit/?.so;;"
	echo "net.so snapshot: $(cd "$d" && md5sum ./*/net.so 2>/dev/null | awk '{printf "%s %.8s  ", $2, $1}')"
	find "$OUT" -maxdepth 1 -name 'net-*' -mtime +1 -exec rm -rf {} + 2>/dev/null # old snapshots
}

# net_ok LUA [MOD=tcp] : does this flavour's net.so load and have net.MOD.listen?
net_ok() {
	timeout 10 "$1" -e 'local ok, net = pcall(require, "net")
		local m = "'"${2:-tcp}"'"
		if not ok then io.stderr:write(tostring(net), "\n") os.exit(1) end
		if not (type(net[m]) == "table" and net[m].listen) then
			io.stderr:write("net." .. m .. ".listen missing\n") os.exit(1) end' 2>"$OUT/net_ok.$1.log"
}

wait_port() { # bounded: 10 s
	for _ in $(seq 1 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		kill -0 "$SRV_PID" 2>/dev/null || break
		sleep 0.1
	done
	echo "  port $1 never opened" >&2; return 1
}

SRV_PID=
SRV_EXTRA=   # more server PIDs (http.sh's reuseport test): stopped and CPU-counted with SRV_PID
start_server() { # start_server PORT LOGNAME CMD... : CMD pinned to $SERVER_CPU, own autogroup (prio.sh)
	local port=$1 log=$2; shift 2
	# a leftover server on the port would be measured instead of this one
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
		echo "port $port already in use: not starting $*" | tee "$OUT/raw/$log.server.log" >&2; return 1
	fi
	taskset -c "$SERVER_CPU" "$BENCH/prio.sh" "$@" >"$OUT/raw/$log.server.log" 2>&1 &
	SRV_PID=$!
	wait_port "$port" || { stop_server; return 1; }
	sleep 0.3
}

SRV_RC=
stop_server() { # sets SRV_RC to the exit status if the server had already exited, else ""
	SRV_RC=
	local p
	for p in $SRV_EXTRA; do
		kill "$p" 2>/dev/null
		for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null
	done
	SRV_EXTRA=
	[ -n "$SRV_PID" ] || return 0
	if ! kill -0 "$SRV_PID" 2>/dev/null; then wait "$SRV_PID" 2>/dev/null; SRV_RC=$?; SRV_PID=; return 0; fi
	kill "$SRV_PID" 2>/dev/null
	for _ in $(seq 1 50); do kill -0 "$SRV_PID" 2>/dev/null || break; sleep 0.1; done
	kill -9 "$SRV_PID" 2>/dev/null
	wait "$SRV_PID" 2>/dev/null
	SRV_PID=
}
trap stop_server EXIT
trap 'stop_server; exit 130' INT TERM

load() { # load CMD... : the load generator pinned to $LOAD_CPU, bounded by timeout ($LOAD_TIMEOUT s)
	timeout "${LOAD_TIMEOUT:-90}" taskset -c "$LOAD_CPU" "$BENCH/prio.sh" "$@"
}

kv() { # kv KEY < RESULT-line : extract key=value
	sed -n "s/.*[ ]$1=\([^ ]*\).*/\1/p" | head -1
}

# ---- noise control (see shared/bench/anchors/README.md "Method") -------------------------
stat_busy() { awk '/^cpu /{b=$2+$3+$4+$7+$8+$9; print b, b+$5+$6}' /proc/stat; }
wait_quiet() { # up to QUIET_MAX s for < QUIET_PCT % busy (both cores) over 1 s
	local b0 t0 b1 t1 pct=100
	for _ in $(seq 1 "${QUIET_MAX:-5}"); do
		read -r b0 t0 < <(stat_busy); sleep 1; read -r b1 t1 < <(stat_busy)
		pct=$(( 100 * (b1 - b0) / (t1 - t0 + 1) ))
		[ "$pct" -lt "${QUIET_PCT:-10}" ] && return 0
	done
	echo "  WARN: machine still ${pct}% busy after ${QUIET_MAX:-5}s; measuring anyway" >&2
}
jiffies() { # utime+stime of PID (fields 14+15 of /proc/PID/stat; comm has no spaces here); "" if gone
	awk '{print $14+$15}' "/proc/$1/stat" 2>/dev/null
}
# srv_jiffies: the server's CPU = $SRV_PID and $SRV_EXTRA and their direct children (nginx's
# master runs no requests, its workers do); "" if $SRV_PID is gone.
srv_jiffies() {
	[ -r "/proc/$SRV_PID/stat" ] || return 0
	local p kids t=0 j
	kids=$(ps -o pid= --ppid "$(echo "$SRV_PID $SRV_EXTRA" | xargs | tr ' ' ,)" 2>/dev/null)
	for p in $SRV_PID $SRV_EXTRA $kids; do j=$(jiffies "$p"); t=$(( t + ${j:-0} )); done
	echo "$t"
}
CLK_TCK=$(getconf CLK_TCK)
# measure_begin / measure_end wrap one measured load run. measure_end CLIENT_CPU_SECONDS sets
# SRVS (server CPU seconds), WALL (s), BG (cores used by other processes) for the interval.
measure_begin() { read -r MB0 MT0 < <(stat_busy); MS0=$(srv_jiffies); MW0=$(date +%s.%N); }
measure_end() {
	local b1 t1 s1 w1
	read -r b1 t1 < <(stat_busy); s1=$(srv_jiffies); w1=$(date +%s.%N)
	WALL=$(awk -v a="$MW0" -v b="$w1" 'BEGIN{printf "%.3f", b-a}')
	if [ -n "$s1" ] && [ -n "$MS0" ]; then # server still there: its CPU over the interval
		SRVS=$(awk -v s=$((s1 - MS0)) -v hz="$CLK_TCK" 'BEGIN{printf "%.3f", s/hz}')
	else
		SRVS=NA # server exited during the interval: its CPU is unknown
	fi
	BG=$(awk -v tot=$((b1 - MB0)) -v s="$SRVS" -v c="$1" -v w="$WALL" -v hz="$CLK_TCK" \
		'BEGIN{ if (s == "NA") { print "NA"; exit } x=(tot/hz - s - c)/w; if (x<0) x=0; printf "%.2f", x}')
}
TIMEFMT='CLIENTCPU %U %S'
client_cpu() { awk '/^CLIENTCPU/{print $2+$3}' "$1" | tail -1; } # from /usr/bin/time -f
