#!/usr/bin/env bash
# HTTP benchmark: `net` (net.serve, the router, net.request) side by side with OpenResty-style
# nginx (content_by_lua), nginx's static `return 200`, lua-http, LuaSocket and raw hyper, in ONE
# run with interleaved reps (rep 1 of every entry, then rep 2, ...), the server pinned to core
# $SERVER_CPU (0) and the load generator to core $LOAD_CPU (1), both via prio.sh; each server is
# started fresh per measurement. Parts (PARTS, default all five), each a table + ratios at the end:
#   h1:     hello world (13-byte body) under `wrk -t1 -c$CONNS` (50, keep-alive) for $DUR s after a
#           $WARM s warm-up. Figures: req/s, server CPU us per request, p50/p99 latency.
#   h2:     the same over HTTP/2 cleartext by prior knowledge, `h2load -c$H2_CONNS -m$H2_STREAMS`
#           (50 connections x 10 concurrent streams).
#   client: sequential keep-alive GETs for $DUR s against a local server (CLIENT_SERVER: hyper
#           (default) or nginx static) by each client; the CLIENT's CPU us per request is the
#           figure, `wrk -t1 -c1` being the floor of what sending and parsing costs.
#   idle:   http-idle opens $IDLE_CONNS (5000) keep-alive connections, one request on each, and
#           holds them; server RSS before and with them open -> KiB per idle connection.
#   scale:  net_http_hello.lua --reuseport as 1 and as 2 processes on one port (nginx: 1 and 2
#           workers with reuseport), servers and `wrk -t2 -c$SCALE_CONNS` (100) all on cores
#           $SCALE_CPUS (0,1): req/s for each and x2 / x1.
# Usage: bench/http.sh [name ...]   (default: all; a name runs in every part that has it)
#   names: net-5.4 net-luajit router-5.4 router-luajit nginx-lua nginx-static lua-http-5.4 hyper
#          (servers), luasocket-5.4 wrk (clients; net-* and lua-http-5.4 are clients there too)
# Env: REPS (3; IDLE_REPS and SCALE_REPS default to it), DUR (10, seconds; "10s" accepted),
#      WARM (2), PARTS ("h1 h2 client idle scale"), CONNS (50), H2_CONNS (50), H2_STREAMS (10),
#      CLIENT_SERVER (hyper|nginx), IDLE_CONNS (5000), SCALE_CONNS (100), SCALE_CPUS (0,1),
#      OUT (/tmp/net-bench), NET54/NETJIT (net.so paths), SERVER_CPU, LOAD_CPU, AG_NICE, QUIET_MAX.
# Quick look: REPS=1 DUR=3 bench/http.sh
# An entry whose net.so lacks what it needs (net.serve, net.http.server, net.request) or whose
# server does not start is reported as FAILED with the reason, and the run goes on.
set -u
. "$(dirname "$0")/lib.sh"
REPS=${REPS:-3}; IDLE_REPS=${IDLE_REPS:-$REPS}; SCALE_REPS=${SCALE_REPS:-$REPS}
DUR=${DUR:-10}; DUR=${DUR%s}; WARM=${WARM:-2}; WARM=${WARM%s}
PARTS=${PARTS:-h1 h2 client idle scale}
CONNS=${CONNS:-50}; H2_CONNS=${H2_CONNS:-50}; H2_STREAMS=${H2_STREAMS:-10}
CLIENT_SERVER=${CLIENT_SERVER:-hyper}; IDLE_CONNS=${IDLE_CONNS:-5000}
SCALE_CONNS=${SCALE_CONNS:-100}; SCALE_CPUS=${SCALE_CPUS:-0,1}
LOAD_TIMEOUT=$(( DUR + 60 ))
L=$BENCH/lua
NGINX=$BENCH/nginx/run-nginx.sh
RUN_ID=$(date +%Y%m%d-%H%M%S)
snapshot_net "$RUN_ID"
TSV=$OUT/http-$RUN_ID.tsv

for t in "$TOOLS/hyper-hello" "$TOOLS/http-idle"; do
	[ -x "$t" ] || { echo "missing $t: run bench/install.sh http" >&2; exit 1; }
done
for c in wrk h2load nginx; do
	command -v "$c" >/dev/null || { echo "missing $c: run bench/install.sh http" >&2; exit 1; }
done
for p in $PARTS; do case $p in h1|h2|client|idle|scale) ;; *) echo "unknown part $p (h1 h2 client idle scale)" >&2; exit 2 ;; esac; done

# part/name -> "port path server-cmd..." (client: name -> client-cmd, with @URL@ and @SECS@)
declare -A SPEC
SPEC[h1/net-5.4]="9301 / lua5.4 $L/net_http_hello.lua 9301"
SPEC[h1/net-luajit]="9302 / luajit $L/net_http_hello.lua 9302"
SPEC[h1/router-5.4]="9303 / lua5.4 $L/net_router_hello.lua 9303"
SPEC[h1/router-luajit]="9304 / luajit $L/net_router_hello.lua 9304"
SPEC[h1/nginx-lua]="9305 / $NGINX 9305"
SPEC[h1/nginx-static]="9306 /static $NGINX 9306"
SPEC[h1/lua-http-5.4]="9307 / lua5.4 $L/http_hello_luahttp.lua 9307"
SPEC[h1/hyper]="9308 / $TOOLS/hyper-hello --port 9308"
SPEC[h2/net-5.4]="9321 / lua5.4 $L/net_http_hello.lua 9321"
SPEC[h2/net-luajit]="9322 / luajit $L/net_http_hello.lua 9322"
SPEC[h2/nginx-lua]="9325 / $NGINX 9325 h2c"
SPEC[h2/nginx-static]="9326 /static $NGINX 9326 h2c"
SPEC[h2/hyper]="9328 / $TOOLS/hyper-hello --port 9328 --proto h2c"
SPEC[client/net-5.4]="lua5.4 $L/net_http_client.lua @URL@ @SECS@"
SPEC[client/net-luajit]="luajit $L/net_http_client.lua @URL@ @SECS@"
SPEC[client/luasocket-5.4]="lua5.4 $L/http_client_socket.lua @URL@ @SECS@ raw-ka"
SPEC[client/lua-http-5.4]="lua5.4 $L/http_client_luahttp.lua @URL@ @SECS@ keepalive"
SPEC[client/wrk]="wrk -t1 -c1 -d@SECS@s @URL@"
SPEC[idle/net-5.4]="9351 / lua5.4 $L/net_http_hello.lua 9351"
SPEC[idle/net-luajit]="9352 / luajit $L/net_http_hello.lua 9352"
SPEC[idle/nginx-static]="9356 /static $NGINX 9356"
SPEC[idle/hyper]="9358 / $TOOLS/hyper-hello --port 9358"
# scale: the command is started K times (net) or given K as its worker count (nginx: @K@)
SPEC[scale/net-5.4]="9361 / lua5.4 $L/net_http_hello.lua 9361 --reuseport"
SPEC[scale/net-luajit]="9362 / luajit $L/net_http_hello.lua 9362 --reuseport"
SPEC[scale/nginx-static]="9366 /static $NGINX 9366 h1 @K@"
case $CLIENT_SERVER in
	hyper) CSRV="9341 / $TOOLS/hyper-hello --port 9341" ;;
	nginx) CSRV="9342 /static $NGINX 9342" ;;
	*) echo "CLIENT_SERVER must be hyper or nginx" >&2; exit 2 ;;
esac
ORDER=(net-5.4 net-luajit router-5.4 router-luajit nginx-lua nginx-static lua-http-5.4 hyper luasocket-5.4 wrk)
NAMES=("$@"); [ ${#NAMES[@]} -gt 0 ] || NAMES=("${ORDER[@]}")
for n in "${NAMES[@]}"; do
	known=; for p in h1 h2 client idle scale; do [ -n "${SPEC[$p/$n]:-}" ] && known=1; done
	[ -n "$known" ] || { echo "unknown name $n (known: ${ORDER[*]})" >&2; exit 2; }
done
names_in() { local n; for n in "${NAMES[@]}"; do [ -n "${SPEC[$1/$n]:-}" ] && echo "$n"; done; }

# What a net entry needs from net.so, checked once per flavour and feature: "" = usable, else why not.
declare -A WHY
net_probe() { # net_probe LUA FIELD : does net.so load on LUA and have net.FIELD (dotted)?
	timeout 10 "$1" - "$2" 2>&1 >/dev/null <<-'EOF' | head -1
	local ok, net = pcall(require, "net")
	if not ok then io.stderr:write(tostring(net):match("[^\n]*"), "\n") os.exit(1) end
	local v = net
	for k in arg[1]:gmatch("[^.]+") do v = type(v) == "table" and v[k] or nil end
	if v == nil then io.stderr:write("net." .. arg[1] .. " missing\n") os.exit(1) end
	EOF
}
why_not() { # why_not PART NAME : sets WHYNOT to "" if runnable, else the reason (net entries only)
	local f lua
	WHYNOT=
	case $2 in
		net-*) f=serve; [ "$1" = client ] && f=request ;;
		router-*) f=http.server ;;
		*) return 0 ;;
	esac
	case $2 in *-luajit) lua=luajit ;; *) lua=lua5.4 ;; esac
	if [ -z "${WHY[$lua $f]+x}" ]; then
		WHY[$lua $f]=$(net_probe "$lua" "$f")
		[ -z "${WHY[$lua $f]}" ] || WHY[$lua $f]="$lua: ${WHY[$lua $f]}"
	fi
	WHYNOT=${WHY[$lua $f]}
}

echo "http.sh run $RUN_ID: parts [$PARTS] x$REPS, ${DUR}s (+${WARM}s warm-up); h1 wrk -t1 -c$CONNS, h2 h2load -c$H2_CONNS -m$H2_STREAMS, client vs $CLIENT_SERVER, idle $IDLE_CONNS conns x$IDLE_REPS, scale wrk -t2 -c$SCALE_CONNS on cores $SCALE_CPUS x$SCALE_REPS; server core $SERVER_CPU, load core $LOAD_CPU; raw -> $OUT"
echo "versions: $(nginx -v 2>&1 | sed 's/.*: //') + extracted $(paste -sd, "$BENCH/tools/target/nginx-lua/.versions" 2>/dev/null | sed 's/,/, /g'), $(wrk -v 2>&1 | head -1 | awk '{print $1, $2}'), $(h2load --version | head -1), lua-http $(dpkg-query -W -f='${Version}' lua-http 2>/dev/null), LuaSocket $(dpkg-query -W -f='${Version}' lua-socket 2>/dev/null), hyper $(awk '/^name = "hyper"$/{getline; print $3}' "$BENCH/tools/Cargo.lock" | tr -d '"')"
COLS=(part name rep rps reqs srv_us_per_req cli_us_per_req srv_cores cli_cores bg_cores p50_ms p99_ms errors conns rss_base_kib rss_conns_kib kib_per_conn split)
(IFS=$'\t'; echo "${COLS[*]}") >"$TSV"
declare -A R
row() { # row: writes the fields set in R (NA for the others), then clears R
	local c line=
	for c in "${COLS[@]}"; do line+="${R[$c]:-NA}"$'\t'; done
	echo "${line%$'\t'}" >>"$TSV"; R=()
}
failed() { # failed PART NAME REP REASON : report clearly, record a row the summary shows as FAILED
	echo "$1 $2 rep$3: FAILED: $4"
	R=([part]=$1 [name]=$2 [rep]=$3 [errors]="FAILED: ${4//$'\t'/ }"); row
}
start_failed_reason() { # after start_server failed: the server log's last line says why
	local t; t=$(grep -v '^\s*$' "$OUT/raw/$1.server.log" 2>/dev/null | tail -1)
	echo "server did not start${t:+: $t} (log: $OUT/raw/$1.server.log)"
}
to_ms() { # wrk's 1.23ms / 456.00us / 1.2s -> ms
	awk -v v="$1" 'BEGIN{ if (v == "") print "NA"; else if (v ~ /us$/) {sub(/us$/,"",v); print v/1000}
	                    else if (v ~ /ms$/) {sub(/ms$/,"",v); print v+0}
	                    else if (v ~ /s$/) {sub(/s$/,"",v); print v*1000}
	                    else print v }'
}
per_req() { awk -v s="$1" -v n="${2:-0}" 'BEGIN{ if (n>0 && s != "NA" && s != "") printf "%.2f", s*1e6/n; else print "NA" }'; }
cores() { awk -v s="$1" -v w="$WALL" 'BEGIN{ if (s == "NA") print s; else printf "%.2f", s/w }'; }
parse_wrk() { # parse_wrk FILE -> sets REQS RPS P50 P99 ERRS
	REQS=$(awk '/ requests in /{print $1}' "$1"); RPS=$(awk '/^Requests\/sec/{print $2}' "$1")
	P50=$(to_ms "$(awk '$1=="50%"{print $2}' "$1")"); P99=$(to_ms "$(awk '$1=="99%"{print $2}' "$1")")
	ERRS=$(awk '/Socket errors/{gsub(/,/,""); s+=$4+$6+$8+$10} /Non-2xx/{s+=$NF} END{print s+0}' "$1")
}
parse_h2load() { # parse_h2load FILE -> sets REQS RPS ERRS (P50/P99: h2load prints no percentiles)
	REQS=$(awk '/^requests:/{print $8}' "$1"); RPS=$(awk '/^finished in/{print $4}' "$1")
	ERRS=$(awk '/^requests:/{s+=$10+$12+$14} /^status codes:/{s+=$5+$7+$9} END{print s+0}' "$1")
	grep -q '^Application protocol: h2c' "$1" || ERRS="$ERRS+not-h2c"
	P50=NA; P99=NA
}
rss_kib() { # VmRSS of $SRV_PID, $SRV_EXTRA and their children (nginx: master + worker)
	local p t=0 r kids
	kids=$(ps -o pid= --ppid "$(echo "$SRV_PID $SRV_EXTRA" | xargs | tr ' ' ,)" 2>/dev/null)
	for p in $SRV_PID $SRV_EXTRA $kids; do r=$(awk '/^VmRSS/{print $2}' "/proc/$p/status" 2>/dev/null); t=$(( t + ${r:-0} )); done
	echo "$t"
}
srv_died() { [ -z "$SRV_RC" ] || echo "+server-died(rc=$SRV_RC)"; } # after stop_server
T0=$(date +%s)

# ---- h1 and h2: one server, one load generator ---------------------------------------------
server_load() { # server_load PART : every rep, every name of PART
	local part=$1 rep n port path url id out cc
	for rep in $(seq 1 "$REPS"); do
		for n in $(names_in "$part"); do
			why_not "$part" "$n"; [ -z "$WHYNOT" ] || { failed "$part" "$n" "$rep" "$WHYNOT"; continue; }
			# shellcheck disable=SC2086
			set -- ${SPEC[$part/$n]}; port=$1; path=$2; shift 2
			url="http://127.0.0.1:$port$path"; id="$RUN_ID-$part-$n-$rep"; out="$OUT/raw/$id.out"
			wait_quiet
			start_server "$port" "$id" "$@" || { failed "$part" "$n" "$rep" "$(start_failed_reason "$id")"; continue; }
			if [ "$part" = h1 ]; then
				load wrk -t1 -c"$CONNS" -d"${WARM}s" "$url" >/dev/null 2>&1
				measure_begin
				load /usr/bin/time -f "$TIMEFMT" wrk -t1 -c"$CONNS" -d"${DUR}s" --latency "$url" >"$out" 2>&1
			else
				load h2load -t1 -c"$H2_CONNS" -m"$H2_STREAMS" -D "$WARM" "$url" >/dev/null 2>&1
				measure_begin
				load /usr/bin/time -f "$TIMEFMT" h2load -t1 -c"$H2_CONNS" -m"$H2_STREAMS" -D "$DUR" "$url" >"$out" 2>&1
			fi
			cc=$(client_cpu "$out"); cc=${cc:-0}; measure_end "$cc"
			stop_server
			if [ "$part" = h1 ]; then parse_wrk "$out"; else parse_h2load "$out"; fi
			ERRS="$ERRS$(srv_died)"
			R=([part]=$part [name]=$n [rep]=$rep [rps]=${RPS:-NA} [reqs]=${REQS:-NA} [srv_us_per_req]=$(per_req "$SRVS" "$REQS")
			   [cli_us_per_req]=$(per_req "$cc" "$REQS") [srv_cores]=$(cores "$SRVS") [cli_cores]=$(cores "$cc")
			   [bg_cores]=$BG [p50_ms]=$P50 [p99_ms]=$P99 [errors]=$ERRS [conns]=$([ "$part" = h1 ] && echo "$CONNS" || echo "$H2_CONNS"))
			echo "$part $n rep$rep: req/s=${RPS:-FAIL} srv_us/req=${R[srv_us_per_req]} p50=${P50}ms p99=${P99}ms errors=$ERRS srv_cores=${R[srv_cores]} cli_cores=${R[cli_cores]} bg=$BG"
			[ -n "${REQS:-}" ] && [ "${REQS:-0}" != 0 ] || echo "  load output: $(tail -4 "$out" | tr '\n' ' ')"
			row
		done
	done
}

# ---- client: the client is measured --------------------------------------------------------
client_part() {
	local rep n port path url id out cc cmd
	for rep in $(seq 1 "$REPS"); do
		for n in $(names_in client); do
			why_not client "$n"; [ -z "$WHYNOT" ] || { failed client "$n" "$rep" "$WHYNOT"; continue; }
			# shellcheck disable=SC2086
			set -- $CSRV; port=$1; path=$2; shift 2
			url="http://127.0.0.1:$port$path"; id="$RUN_ID-client-$n-$rep"; out="$OUT/raw/$id.out"
			cmd=${SPEC[client/$n]//@URL@/$url}; cmd=${cmd//@SECS@/$DUR}
			wait_quiet
			start_server "$port" "$id" "$@" || { failed client "$n" "$rep" "$(start_failed_reason "$id")"; continue; }
			measure_begin
			# shellcheck disable=SC2086
			load /usr/bin/time -f "$TIMEFMT" $cmd >"$out" 2>&1
			cc=$(client_cpu "$out"); cc=${cc:-0}; measure_end "$cc"
			stop_server
			if [ "$n" = wrk ]; then
				parse_wrk "$out"
			else
				REQS=$(kv reqs <"$out"); RPS=$(kv rate <"$out"); ERRS=$(kv errors <"$out"); ERRS=${ERRS:-?}; P50=NA; P99=NA
			fi
			ERRS="$ERRS$(srv_died)"
			R=([part]=client [name]=$n [rep]=$rep [rps]=${RPS:-NA} [reqs]=${REQS:-NA} [srv_us_per_req]=$(per_req "$SRVS" "$REQS")
			   [cli_us_per_req]=$(per_req "$cc" "$REQS") [srv_cores]=$(cores "$SRVS") [cli_cores]=$(cores "$cc")
			   [bg_cores]=$BG [p50_ms]=$P50 [p99_ms]=$P99 [errors]=$ERRS [conns]=1)
			echo "client $n rep$rep: req/s=${RPS:-FAIL} cli_us/req=${R[cli_us_per_req]} srv_us/req=${R[srv_us_per_req]} errors=$ERRS cli_cores=${R[cli_cores]} srv_cores=${R[srv_cores]} bg=$BG"
			[ -n "${REQS:-}" ] && [ "${REQS:-0}" != 0 ] || echo "  client output: $(tail -4 "$out" | tr '\n' ' ')"
			row
		done
	done
}

# ---- idle: memory per idle keep-alive connection ---------------------------------------------
idle_part() {
	local rep n port path id out cpid r0 r1 ok open closed failed_n ct per
	# the server and http-idle each need IDLE_CONNS descriptors (inherited from here)
	ulimit -n $(( IDLE_CONNS * 2 + 1000 )) 2>/dev/null || ulimit -n "$(ulimit -Hn)"
	for rep in $(seq 1 "$IDLE_REPS"); do
		for n in $(names_in idle); do
			why_not idle "$n"; [ -z "$WHYNOT" ] || { failed idle "$n" "$rep" "$WHYNOT"; continue; }
			# shellcheck disable=SC2086
			set -- ${SPEC[idle/$n]}; port=$1; path=$2; shift 2
			id="$RUN_ID-idle-$n-$rep"; out="$OUT/raw/$id.out"
			wait_quiet
			start_server "$port" "$id" "$@" || { failed idle "$n" "$rep" "$(start_failed_reason "$id")"; continue; }
			sleep 1; r0=$(rss_kib)
			# OPEN is printed 2 s after the last connection is up, having checked that none was
			# closed by the server: the RSS is read then
			timeout 180 taskset -c "$LOAD_CPU" "$BENCH/prio.sh" "$TOOLS/http-idle" --addr "127.0.0.1:$port" \
				--path "$path" --conns "$IDLE_CONNS" --check 2 --hold 30 >"$out" 2>&1 &
			cpid=$!
			for _ in $(seq 1 1700); do grep -q '^OPEN' "$out" && break; kill -0 "$cpid" 2>/dev/null || break; sleep 0.1; done
			r1=$(rss_kib)
			kill "$cpid" 2>/dev/null; wait "$cpid" 2>/dev/null; stop_server
			ok=$(awk '/^CONNECTED/{print $2}' "$out"); failed_n=$(sed -n 's/^CONNECTED.* failed=\([0-9]*\).*/\1/p' "$out")
			ct=$(sed -n 's/^CONNECTED.* secs=\([0-9.]*\).*/\1/p' "$out")
			open=$(awk '/^OPEN/{print $2}' "$out"); closed=$(sed -n 's/^OPEN.* closed=\([0-9]*\).*/\1/p' "$out")
			ERRS="failed=${failed_n:-?},closed=${closed:-?}$(srv_died)"
			per=$(awk -v a="$r0" -v b="$r1" -v n="${open:-0}" 'BEGIN{ if (n>0 && a>0 && b>0) printf "%.2f", (b-a)/n; else print "NA"}')
			echo "idle $n rep$rep: connected=${ok:-0} still_open=${open:-?} rss_base=${r0}KiB rss_with=${r1}KiB per_conn=${per}KiB connect_time=${ct:-?}s errors=$ERRS"
			[ -n "$open" ] || echo "  http-idle output: $(tail -3 "$out" | tr '\n' ' ')"
			[ "${closed:-0}" = 0 ] || echo "  WARN: the server closed $closed idle connections within 2 s; per_conn counts only the open ones"
			R=([part]=idle [name]=$n [rep]=$rep [errors]=$ERRS [conns]=${open:-NA} [rss_base_kib]=$r0 [rss_conns_kib]=$r1 [kib_per_conn]=$per)
			row
		done
	done
}

# ---- scale: 1 and 2 server processes on one port (SO_REUSEPORT) --------------------------------
listeners() { ss -Hltn "sport = :$1" 2>/dev/null | wc -l; }
proc_pids() { # the processes that serve: nginx's workers (children), else $SRV_PID $SRV_EXTRA
	local kids; kids=$(ps -o pid= --ppid "$SRV_PID" 2>/dev/null | xargs)
	echo "${kids:-$SRV_PID $SRV_EXTRA}"
}
scale_part() {
	local rep n k port path url id out cc i cmd pids p j0 j1 split
	for rep in $(seq 1 "$SCALE_REPS"); do
		for n in $(names_in scale); do
			for k in 1 2; do
				why_not scale "$n"; [ -z "$WHYNOT" ] || { failed "scale-x$k" "$n" "$rep" "$WHYNOT"; continue; }
				cmd=${SPEC[scale/$n]//@K@/$k}
				# shellcheck disable=SC2086
				set -- $cmd; port=$1; path=$2; shift 2
				url="http://127.0.0.1:$port$path"; id="$RUN_ID-scale-x$k-$n-$rep"; out="$OUT/raw/$id.out"
				wait_quiet
				SERVER_CPU=$SCALE_CPUS start_server "$port" "$id" "$@" || { failed "scale-x$k" "$n" "$rep" "$(start_failed_reason "$id")"; continue; }
				case $n in nginx-*) ;; *)   # nginx: one master, K workers; net: K processes
					for i in $(seq 2 "$k"); do
						taskset -c "$SCALE_CPUS" "$BENCH/prio.sh" "$@" >"$OUT/raw/$id.server$i.log" 2>&1 &
						SRV_EXTRA+=" $!"
					done ;;
				esac
				for _ in $(seq 1 50); do [ "$(listeners "$port")" -ge "$k" ] && break; sleep 0.1; done
				if [ "$(listeners "$port")" -ne "$k" ]; then
					stop_server
					failed "scale-x$k" "$n" "$rep" "$(listeners "$port") listening sockets on port $port instead of $k (reuseport not honoured? logs: $OUT/raw/$id.server*.log)"
					continue
				fi
				LOAD_CPU=$SCALE_CPUS load wrk -t2 -c"$SCALE_CONNS" -d"${WARM}s" "$url" >/dev/null 2>&1
				pids=$(proc_pids); declare -A J0=(); for p in $pids; do J0[$p]=$(jiffies "$p"); done
				measure_begin
				LOAD_CPU=$SCALE_CPUS load /usr/bin/time -f "$TIMEFMT" wrk -t2 -c"$SCALE_CONNS" -d"${DUR}s" --latency "$url" >"$out" 2>&1
				cc=$(client_cpu "$out"); cc=${cc:-0}; measure_end "$cc"
				split=; for p in $pids; do j1=$(jiffies "$p"); split+="$(( ${j1:-0} - ${J0[$p]:-0} )) "; done
				split=$(echo "$split" | awk '{t=0; for(i=1;i<=NF;i++) t+=$i; for(i=1;i<=NF;i++) printf "%s%.2f", (i>1?"/":""), (t>0?$i/t:0)}')
				stop_server
				parse_wrk "$out"; ERRS="$ERRS$(srv_died)"
				R=([part]="scale-x$k" [name]=$n [rep]=$rep [rps]=${RPS:-NA} [reqs]=${REQS:-NA} [srv_us_per_req]=$(per_req "$SRVS" "$REQS")
				   [cli_us_per_req]=$(per_req "$cc" "$REQS") [srv_cores]=$(cores "$SRVS") [cli_cores]=$(cores "$cc")
				   [bg_cores]=$BG [p50_ms]=$P50 [p99_ms]=$P99 [errors]=$ERRS [conns]=$SCALE_CONNS [split]=$split)
				echo "scale $n x$k rep$rep: req/s=${RPS:-FAIL} srv_us/req=${R[srv_us_per_req]} srv_cores=${R[srv_cores]} (split $split) cli_cores=${R[cli_cores]} errors=$ERRS bg=$BG"
				[ -n "${REQS:-}" ] && [ "${REQS:-0}" != 0 ] || echo "  load output: $(tail -4 "$out" | tr '\n' ' ')"
				row
			done
		done
	done
}

for part in $PARTS; do
	echo "---- $part"
	case $part in
		h1|h2) server_load "$part" ;;
		client) client_part ;;
		idle) idle_part ;;
		scale) scale_part ;;
	esac
done
echo
echo "run took $(( $(date +%s) - T0 )) s"
python3 "$BENCH/summarize_http.py" "$TSV"
