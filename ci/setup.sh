#!/usr/bin/env bash
# One-time setup of a Debian (12) machine for `net`, then build all five flavours and run the demo.
# Safe to run again: apt is skipped when every package is already there.
#
#   ci/setup.sh
#
# Env: NET_SETUP_NO_DEMO=1 (skip examples/tour.lua), NET_SETUP_NO_BUILD=1 (packages only),
#      NET_DEMO_TIMEOUT (seconds per demo run, default 120), NET_SETUP_NO_EMMYLUA=1 (skip the
#      annotation checker, `cargo install emmylua_check`).
# Rust itself is not installed here: get it with rustup (https://rustup.rs).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

die() { echo "ci/setup.sh: ERROR: $*" >&2; exit 1; }
trap 'rc=$?; [ $rc -eq 0 ] || echo "ci/setup.sh: FAILED (exit $rc)" >&2' EXIT

# Debian packages:
#   interpreters + dev headers for Lua 5.1-5.4 and LuaJIT (luarocks builds against them; LuaJIT's
#   are in /usr/include/luajit-2.1),
#   luarocks, busted (lua-busted ships it for 5.1..5.4, so it runs under luajit too),
#   libssl-dev + pkg-config (openssl crate), gcc (linker for rustc), git, curl and openssl (test
#   peers: curl, openssl s_server), python3 + pip + websockets (Python test peers), nodejs + npm
#   (node test peers, below); HTTP peers: nghttp/nghttpd (h2 both ways), tinyproxy (a real
#   HTTP/CONNECT proxy; the tests start their own instance on a loopback port).
PACKAGES=(
  lua5.4 liblua5.4-dev luajit libluajit-5.1-dev lua5.3 liblua5.3-dev lua5.2 liblua5.2-dev
  lua5.1 liblua5.1-0-dev luarocks lua-busted
  libssl-dev pkg-config gcc libc6-dev git ca-certificates curl openssl
  python3 python3-pip python3-websockets
  nghttp2-client nghttp2-server tinyproxy
)
# node and npm (node WebSocket peers) only when missing as commands: a node from elsewhere (e.g.
# NodeSource's nodejs, which ships npm itself and conflicts with Debian's npm) is fine as it is.
command -v node >/dev/null 2>&1 || command -v nodejs >/dev/null 2>&1 || PACKAGES+=(nodejs)
command -v npm >/dev/null 2>&1 || PACKAGES+=(npm)

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  echo "ci/setup.sh: not a Debian/Ubuntu system: install by hand: ${PACKAGES[*]}" >&2
else
  missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    echo "==> Debian packages: all ${#PACKAGES[@]} already installed"
  else
    SUDO=()
    if [ "$(id -u)" -ne 0 ]; then
      command -v sudo >/dev/null 2>&1 || die "not root and no sudo: install ${missing[*]} as root"
      SUDO=(sudo)
    fi
    echo "==> apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    "${SUDO[@]}" apt-get update -q
    "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
fi

# Python peers need `websockets` (WebSocket peers) and `brotli` (an HTTP server sending br bodies,
# lua-tests/http_peers_client_spec.lua) in the python3 that is on PATH (it may be a pyenv one, not
# Debian's, so Debian's python3-brotli would not do).
if command -v python3 >/dev/null 2>&1; then
  for mod in websockets brotli; do
    if ! python3 -c "import $mod" 2>/dev/null; then
      echo "==> pip install $mod (for $(command -v python3))"
      python3 -m pip install -q "$mod" ||
        python3 -m pip install -q --break-system-packages "$mod" ||
        die "could not install the Python package $mod"
    fi
  done
else
  die "python3 not found"
fi

# node's `ws` package for the node peers (lua-tests/ws_node_spec.lua), from the npm registry at the
# version lua-tests/node/package-lock.json pins, into lua-tests/node/node_modules (git-ignored).
NODE_BIN="$(command -v node || command -v nodejs || true)"
[ -n "$NODE_BIN" ] || die "node not found (apt-get install nodejs npm)"
if (cd "$ROOT/lua-tests/node" && "$NODE_BIN" -e 'require("ws")' 2>/dev/null); then
  echo "==> node $("$NODE_BIN" --version): ws $(cd "$ROOT/lua-tests/node" && "$NODE_BIN" -p 'require("ws/package.json").version') already installed"
else
  command -v npm >/dev/null 2>&1 || die "npm not found (apt-get install npm)"
  echo "==> npm ci --prefix lua-tests/node (node's ws package)"
  npm ci --prefix "$ROOT/lua-tests/node" --no-audit --no-fund --loglevel=error ||
    die "could not install node's ws package into lua-tests/node"
fi

# Rust (not from apt: Debian's is too old for this crate's dependencies)
if ! command -v cargo >/dev/null 2>&1; then
  [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
fi
command -v cargo >/dev/null 2>&1 || die "cargo not found. Install Rust with rustup:
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y
    . \"\$HOME/.cargo/env\"
  then run ci/setup.sh again."
echo "==> $(cargo --version)"

# emmylua_check: a checker of LuaLS annotations, for lua-tests/reference_spec.lua's type check of
# types/ and examples/ (lua-language-server itself is in none of the registries this project
# uses). Built once per machine (a few minutes); if it cannot be installed those tests are
# pending, not failed, and the rest of setup goes on. NET_SETUP_NO_EMMYLUA=1 skips it.
EMMYLUA_VERSION=0.25.1
if [ "${NET_SETUP_NO_EMMYLUA:-0}" != 1 ] &&
   ! emmylua_check --version 2>/dev/null | grep -qF "$EMMYLUA_VERSION"; then
  echo "==> cargo install emmylua_check $EMMYLUA_VERSION (annotation checker, once per machine)"
  emmy_target="$(mktemp -d)"
  CARGO_TARGET_DIR="$emmy_target" cargo install -q --locked -j2 emmylua_check --version "$EMMYLUA_VERSION" ||
    echo "ci/setup.sh: WARNING: could not install emmylua_check; its checks will be pending" >&2
  rm -rf "$emmy_target"
fi

if [ "${NET_SETUP_NO_BUILD:-0}" = 1 ]; then
  echo "==> NET_SETUP_NO_BUILD=1: packages only"
  exit 0
fi

"$ROOT/ci/build.sh" lua54 luajit lua53 lua52 lua51

# Demo
if [ "${NET_SETUP_NO_DEMO:-0}" = 1 ]; then
  echo "==> NET_SETUP_NO_DEMO=1: demo skipped"
elif [ ! -f "$ROOT/examples/tour.lua" ]; then
  echo "==> examples/tour.lua does not exist yet: demo skipped"
else
  for pair in "lua5.4:5.4:LUA_CPATH_5_4" "luajit:luajit:LUA_CPATH"; do
    IFS=: read -r lua dir var <<<"$pair"
    echo
    echo "==> demo: $lua examples/tour.lua (net from build/$dir)"
    env "$var=$ROOT/build/$dir/?.so;;" timeout -k 5 "${NET_DEMO_TIMEOUT:-120}" "$lua" examples/tour.lua </dev/null ||
      die "the demo failed under $lua (exit $?)"
  done
fi

cat <<EOF

ci/setup.sh: done. The module is built for all five interpreters:
  build/5.4/net.so      for lua5.4
  build/luajit/net.so   for luajit
  build/5.3/net.so, build/5.2/net.so, build/5.1/net.so   for lua5.3, lua5.2, lua5.1
Use it from a script with
  package.cpath = "$ROOT/build/5.4/?.so;" .. package.cpath      -- luajit: build/luajit/?.so
  local net = require("net")
or from the shell:
  LUA_CPATH_5_4="$ROOT/build/5.4/?.so;;" lua5.4 your_script.lua
  LUA_CPATH="$ROOT/build/luajit/?.so;;"  luajit your_script.lua      -- lua5.1 the same, with build/5.1
or install it with luarocks (from the repository root):
  luarocks --lua-version=5.4 make rockspec/net-0.1.0-1.rockspec        -- or 5.3, 5.2, 5.1
  luarocks --lua-version=5.1 make rockspec/net-0.1.0-1.rockspec LUA=/usr/bin/luajit LUA_INCDIR=/usr/include/luajit-2.1
Run the tests with: ci/test.sh
EOF
