#!/usr/bin/env bash
# Prove that `luarocks make rockspec/net-0.1.0-1.rockspec` (Debian's luarocks 3.8, no luarocks.org)
# installs a loadable net.so (and the editor annotations, types/), for Lua 5.4, LuaJIT, 5.3, 5.2 and 5.1.
#
#   ci/luarocks-check.sh            # all five
#   ci/luarocks-check.sh luajit     # any of: lua54 luajit lua53 lua52 lua51
#
# Each flavour is installed into a throw-away tree, build/luarocks/<5.x|luajit>, and loaded from it
# (1) with an explicit package.cpath and (2) as a plain `lua5.4 -e 'require("net")'` after
# `eval "$(luarocks path ...)"`. --only-server points luarocks at a server that does not exist, so any
# attempt to fetch a rock would fail the check. LuaJIT: luarocks has no LuaJIT mode of its own; it is
# run as Lua 5.1 (the ABI) with the interpreter and headers overridden:
#   luarocks --lua-version=5.1 make rockspec/net-0.1.0-1.rockspec LUA=/usr/bin/luajit LUA_INCDIR=/usr/include/luajit-2.1
# The rockspec's only leftover outside target/ is build/rock/net.so, removed here; the check fails
# if luarocks created or changed any other file in the source tree.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
ROCKSPEC=rockspec/net-0.1.0-1.rockspec
NO_SERVER=--only-server=/nonexistent/no-rocks-server

die() { echo "ci/luarocks-check.sh: ERROR: $*" >&2; exit 1; }
trap 'rc=$?; [ $rc -eq 0 ] || echo "ci/luarocks-check.sh: FAILED (exit $rc)" >&2' EXIT

command -v luarocks >/dev/null || die "luarocks not found (run ci/setup.sh)"
command -v cargo >/dev/null || die "cargo not found: install Rust with rustup (https://rustup.rs)"
echo "==> $(luarocks --version | head -1)"
luarocks lint "$ROCKSPEC" || die "luarocks lint $ROCKSPEC failed"

# files outside target/, build/ and .git, with size and mtime: to see what luarocks leaves behind
snapshot() {
  find . \( -path ./target -o -path ./build -o -path ./.git \) -prune -o -type f -printf '%p %s %T@\n' | sort
}

check() { # check FLAVOUR
  local fl=$1 lua ver tree lrargs=()
  case "$fl" in
    lua54) lua=$(command -v lua5.4) || die "lua5.4 not found"; ver=5.4
      tree="$ROOT/build/luarocks/5.4"; lrargs=(--lua-version=5.4) ;;
    lua53|lua52|lua51) ver="5.${fl#lua5}"
      lua=$(command -v "lua$ver") || die "lua$ver not found (run ci/setup.sh)"
      tree="$ROOT/build/luarocks/$ver"; lrargs=(--lua-version="$ver") ;;
    luajit) lua=$(command -v luajit) || die "luajit not found"; ver=5.1
      local inc=/usr/include/luajit-2.1
      [ -f "$inc/lua.h" ] || die "$inc/lua.h missing (apt-get install libluajit-5.1-dev)"
      tree="$ROOT/build/luarocks/luajit"; lrargs=(--lua-version=5.1) ;;
    *) die "unknown flavour '$fl' (lua54, luajit, lua53, lua52 or lua51)" ;;
  esac
  local vars=(LUA="$lua")
  [ "$fl" = luajit ] && vars+=(LUA_INCDIR=/usr/include/luajit-2.1 LUA_BINDIR="$(dirname "$lua")")

  echo
  echo "==> luarocks ${lrargs[*]} --tree=${tree#"$ROOT"/} make $ROCKSPEC ${vars[*]}"
  rm -rf "$tree" build/rock
  local before after
  before=$(snapshot)
  luarocks "${lrargs[@]}" --tree="$tree" "$NO_SERVER" make "$ROCKSPEC" "${vars[@]}" ||
    die "luarocks make failed for $fl"
  after=$(snapshot)
  if [ "$before" != "$after" ]; then
    echo "luarocks make created or changed files in the source tree:" >&2
    diff <(echo "$before") <(echo "$after") >&2 || true
    die "luarocks make left files behind ($fl)"
  fi
  rm -rf build/rock   # the rockspec's staging copy; the installed one is in the tree

  local so="$tree/lib/lua/$ver/net.so"
  [ -f "$so" ] || die "luarocks reported success but $so is missing"
  # the editor annotations (copy_directories): where README's "Editor support" says they are
  local rockdir
  rockdir=$(luarocks "${lrargs[@]}" --tree="$tree" show --rock-dir net) || die "luarocks show --rock-dir net failed"
  [ -f "$rockdir/types/net.lua" ] && [ -f "$rockdir/types/net/websocket.lua" ] ||
    die "the annotations are not installed in $rockdir/types"
  echo "  ok: annotations installed in ${rockdir#"$ROOT"/}/types"
  local probe='local net = require("net")
    assert(type(net.version) == "string", "net.version is not a string")
    local searchpath = package.searchpath or function(name, path) -- Lua 5.1 has none
      for pat in path:gmatch("[^;]+") do
        local f = pat:gsub("%?", name); local h = io.open(f)
        if h then h:close(); return f end
      end
    end
    local where = searchpath("net", package.cpath)
    assert(where and where:find(os.getenv("NET_TREE"), 1, true) == 1, "net loaded from " .. tostring(where))
    print("  ok: " .. (jit and jit.version or _VERSION) .. " loaded net " .. net.version .. " from " .. where)'

  # (1) explicit cpath
  env -u LUA_CPATH -u LUA_CPATH_5_4 -u LUA_CPATH_5_3 -u LUA_CPATH_5_2 \
    -u LUA_PATH -u LUA_PATH_5_4 -u LUA_PATH_5_3 -u LUA_PATH_5_2 NET_TREE="$tree" \
    "$lua" -e "package.cpath = '$tree/lib/lua/$ver/?.so;' .. package.cpath" -e "$probe" ||
    die "$lua cannot load net from $so with an explicit cpath"
  # (2) plain require after `luarocks path` (what a user of a non-system tree does)
  ( unset LUA_CPATH LUA_CPATH_5_4 LUA_CPATH_5_3 LUA_CPATH_5_2 LUA_PATH LUA_PATH_5_4 LUA_PATH_5_3 LUA_PATH_5_2
    eval "$(luarocks "${lrargs[@]}" --tree="$tree" path)"
    NET_TREE="$tree" "$lua" -e "$probe" ) ||
    die "plain '$lua -e require(\"net\")' failed after luarocks path"
}

flavours=("$@")
[ ${#flavours[@]} -gt 0 ] || flavours=(lua54 luajit lua53 lua52 lua51)
for f in "${flavours[@]}"; do check "$f"; done
echo
echo "ci/luarocks-check.sh: luarocks make works for: ${flavours[*]} (trees under build/luarocks/)"
