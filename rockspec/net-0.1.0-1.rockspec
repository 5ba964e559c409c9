-- Offline rockspec for `luarocks make` (Debian's luarocks 3.8 is enough; no luarocks.org needed).
-- The built-in "command" backend asks the interpreter luarocks is configured for ($(LUA)) which
-- flavour it is, builds the Rust cdylib with that cargo feature and installs it as net.so:
--   luarocks --lua-version=5.4 make rockspec/net-0.1.0-1.rockspec          (Lua 5.4)
--   luarocks --lua-version=5.1 make rockspec/net-0.1.0-1.rockspec \
--       LUA=/usr/bin/luajit LUA_INCDIR=/usr/include/luajit-2.1             (LuaJIT)
-- Run it from the repository root. Needs cargo (rustup) on PATH; crates come from crates.io.
-- Build output: target/ (or $CARGO_TARGET_DIR) and build/rock/net.so; nothing else in the tree.
-- Also installed: types/ (LuaLS annotations), into the rock's directory.
package = "net"
version = "0.1.0-1"
source = { url = "git+https://example.invalid/net.git" } -- unused by `luarocks make` (builds the cwd)
description = {
  summary = "TCP, UDP, TLS, DNS, WebSocket and HTTP for stock Lua 5.4 and LuaJIT",
  detailed = "A Rust (mlua) module: blocking like LuaSocket in plain scripts, concurrent inside net.spawn tasks.",
  license = "MIT",
}
dependencies = { "lua >= 5.1" }
build = {
  type = "command",
  build_command = [[
    FEAT=`$(LUA) -e "io.write(jit and 'luajit' or ({['Lua 5.4']='lua54',['Lua 5.3']='lua53',['Lua 5.2']='lua52',['Lua 5.1']='lua51'})[_VERSION] or 'unknown')"` &&
    echo "net: building with cargo feature '$FEAT' for $(LUA)" &&
    test "$FEAT" != unknown &&
    { command -v cargo >/dev/null 2>&1 || { echo "net: cargo not found: install Rust with rustup (https://rustup.rs)" >&2; exit 1; }; } &&
    cargo build --release -j "${CARGO_BUILD_JOBS:-2}" --features "$FEAT" &&
    mkdir -p build/rock &&
    cp "${CARGO_TARGET_DIR:-target}/release/libnet.so" build/rock/net.so
  ]],
  install = { lib = { net = "build/rock/net.so" } },
  -- The editor annotations (README, "Editor support"): installed as the rock's types/ directory,
  -- `$(luarocks show --rock-dir net)/types`, for LuaLS's workspace.library.
  copy_directories = { "types" },
}
