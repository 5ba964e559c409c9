#!/usr/bin/env bash
# One-time setup for bench/ (Debian 12, root): anchor Lua packages + the Rust load tools.
# Idempotent. The net module itself is built by ci/build.sh into build/5.4/ and build/luajit/.
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
PKGS="lua5.4 luajit lua-luv lua-copas lua-socket lua-compat53 time lua-http lua-cqueues"
if ! dpkg -s $PKGS >/dev/null 2>&1; then
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y $PKGS
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y nodejs npm
fi
cargo build --release -j2 --manifest-path tools/Cargo.toml   # -> bench/tools/target/release/{tcp-load,tcp-echo-server}
echo "bench tools: $(pwd)/tools/target/release"

# ---- WebSocket anchors (ws.sh) ---------------------------------------------------------------
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
