#!/bin/sh
# Start the OpenResty-style nginx of bench/http.sh in the foreground (master + workers; the
# master's PID is this script's, so lib.sh's stop_server and CPU accounting find the workers
# as its children).
# Usage: run-nginx.sh PORT [h1|h2c] [WORKERS]
#   h2c:     the port speaks HTTP/2 by prior knowledge (cleartext), as h2load expects
#   WORKERS: worker_processes (default 1); when given, the listener is opened with `reuseport`,
#            one socket per worker (the scale-out test's reference)
# Env: ORX (extracted lua module tree; default bench/tools/target/nginx-lua, made by
#      bench/install.sh), RUN (prefix/config/log dir; default /tmp/net-bench/nginx-PORT).
set -e
HERE=$(cd "$(dirname "$0")" && pwd)
PORT=${1:?usage: run-nginx.sh PORT [h1|h2c] [WORKERS]}
PROTO=${2:-h1}
WORKERS=${3:-}
ORX=${ORX:-$HERE/../tools/target/nginx-lua}
RUN=${RUN:-${OUT:-/tmp/net-bench}/nginx-$PORT}
LISTEN=""
case $PROTO in h1) ;; h2c) LISTEN=" http2" ;; *) echo "run-nginx.sh: unknown protocol $PROTO" >&2; exit 2 ;; esac
[ -z "$WORKERS" ] || LISTEN="$LISTEN reuseport"
[ -f "$ORX/usr/lib/nginx/modules/ngx_http_lua_module.so" ] || {
	echo "run-nginx.sh: no lua module under $ORX: run bench/install.sh" >&2; exit 1; }
mkdir -p "$RUN"
sed -e "s#@ORX@#$ORX#g" -e "s#@RUN@#$RUN#g" -e "s#@PORT@#$PORT#g" -e "s#@LISTEN@#$LISTEN#g" \
	-e "s#@WORKERS@#${WORKERS:-1}#g" "$HERE/nginx.conf.in" >"$RUN/nginx.conf"
# the lua module links libluajit-5.1.so.2: OpenResty's luajit2 from the extracted tree
LD_LIBRARY_PATH="$ORX/usr/lib/x86_64-linux-gnu" exec nginx -p "$RUN" -c "$RUN/nginx.conf"
