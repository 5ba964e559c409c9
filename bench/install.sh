#!/usr/bin/env bash
# One-time setup for bench/ (Debian 12, root): anchor Lua packages + the Rust load tools.
# Idempotent. The net module itself is built by ci/build.sh into build/5.4/ and build/luajit/.
# Usage: bench/install.sh [ws] [http]   (default: both; the base packages and tools/ always)
#
# For ws.sh it also prepares the workplace anchors' WebSocket tools from ANCHORS
# (default: the shared/ folder beside the repo, shared/bench/anchors), copied into
# bench/tools/target/anchors/ (git-ignored) and built there, so nothing is written into shared/
# and nothing from it is committed here:
#   netbench/ -> cargo build -> target/release/{ws-load,ws-idle,ws-echo-server}
#   node/     -> npm ci (ws 8.x from the anchors' package-lock.json, perMessageDeflate off)
#   lua/ws_echo_luahttp.lua (lua-http + cqueues, from apt)
set -eu
cd "$(dirname "$0")"
PARTS=${*:-ws http}
want() { case " $PARTS " in *" $1 "*) return 0 ;; esac; return 1; }
for p in $PARTS; do case $p in ws|http) ;; *) echo "unknown part $p (ws, http)" >&2; exit 2 ;; esac; done
PKGS="lua5.4 luajit lua-luv lua-copas lua-socket lua-compat53 time lua-http lua-cqueues"
if ! dpkg -s $PKGS >/dev/null 2>&1; then
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y $PKGS
fi
if want ws && { ! command -v node >/dev/null || ! command -v npm >/dev/null; }; then
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y nodejs npm
fi
# --target-dir: lib.sh looks for the tools there, whatever CARGO_TARGET_DIR says
cargo build --release -j2 --manifest-path tools/Cargo.toml --target-dir tools/target  # -> tcp-load, tcp-echo-server, hyper-hello, http-idle
echo "bench tools: $(pwd)/tools/target/release"

# ---- HTTP anchors (http.sh) -----------------------------------------------------------------
# wrk (HTTP/1.1 load), h2load (HTTP/2), nginx + the OpenResty Lua module, LuaSocket and lua-http
# (Debian's lua-http is packaged for Lua <= 5.3 but is pure Lua: lib.sh puts those directories on
# the 5.4 path, and lua-cqueues/lua-socket ship 5.4 builds).
if want http; then
	HTTP_PKGS="wrk nghttp2-client nginx libnginx-mod-http-ndk libpcre3 lua-socket lua-http lua-cqueues lua-compat53"
	if ! dpkg -s $HTTP_PKGS >/dev/null 2>&1; then
		apt-get update
		DEBIAN_FRONTEND=noninteractive apt-get install -y $HTTP_PKGS
	fi
	# libnginx-mod-http-lua is not installed but extracted into tools/target/nginx-lua (git-ignored):
	# its lua-resty-core depends on libluajit2-5.1-2, which Conflicts with the stock
	# libluajit-5.1-2 that luajit and net's LuaJIT build need. bench/nginx/run-nginx.sh loads the
	# module from there, with OpenResty's luajit2 on LD_LIBRARY_PATH. Re-extracted when nginx changes.
	ORX=tools/target/nginx-lua
	NGX=$(dpkg-query -W -f='${Version}' nginx)
	if [ "$(cat "$ORX/.nginx-version" 2>/dev/null)" != "$NGX" ] || [ ! -f "$ORX/usr/lib/nginx/modules/ngx_http_lua_module.so" ]; then
		rm -rf "$ORX" tools/target/nginx-lua-debs
		mkdir -p "$ORX" tools/target/nginx-lua-debs
		( cd tools/target/nginx-lua-debs && apt-get -o APT::Sandbox::User=root download libnginx-mod-http-lua lua-resty-core \
			lua-resty-lrucache libluajit2-5.1-2 libluajit2-5.1-common )
		for f in tools/target/nginx-lua-debs/*.deb; do
			dpkg-deb -x "$f" "$ORX"
			dpkg-deb -W --showformat='${Package} ${Version}\n' "$f" >>"$ORX/.versions"
		done
		echo "$NGX" >"$ORX/.nginx-version"
	fi
	echo "http anchors: nginx $NGX + lua module in $(pwd)/$ORX; wrk, h2load, lua-http, LuaSocket from apt"
fi

# ---- WebSocket anchors (ws.sh) ---------------------------------------------------------------
want ws || exit 0
ANCHORS=${ANCHORS:-$(cd .. && pwd)/../shared/bench/anchors}
[ -d "$ANCHORS" ] || ANCHORS=/work/shared/bench/anchors
[ -f "$ANCHORS/netbench/Cargo.toml" ] || { echo "anchors not found at $ANCHORS (set ANCHORS=)" >&2; exit 1; }
A=tools/target/anchors
mkdir -p "$A/lua" "$A/node"
rm -rf "$A/netbench.new" && cp -r "$ANCHORS/netbench" "$A/netbench.new" && chmod -R u+w "$A/netbench.new"
# A member of the anchors' workspace there; a workspace of its own here (same release profile).
printf '\n[workspace]\n\n[profile.release]\nopt-level = 3\ndebug = false\n' >>"$A/netbench.new/Cargo.toml"
[ -f "$A/netbench/Cargo.lock" ] && cp "$A/netbench/Cargo.lock" "$A/netbench.new/"
rm -rf "$A/netbench" && mv "$A/netbench.new" "$A/netbench"
cargo build --release -j2 --manifest-path "$A/netbench/Cargo.toml" --target-dir "$A/target" \
	--bin ws-load --bin ws-idle --bin ws-echo-server
cp "$ANCHORS/lua/ws_echo_luahttp.lua" "$A/lua/"
cp "$ANCHORS/node/ws_echo.js" "$ANCHORS/node/package.json" "$ANCHORS/node/package-lock.json" "$A/node/"
chmod -R u+w "$A/lua" "$A/node"
( cd "$A/node" && npm ci --no-audit --no-fund )
echo "ws anchors: $(pwd)/$A (tools in target/release; node ws $(node -p 'require("./'"$A"'/node/node_modules/ws/package.json").version'))"
