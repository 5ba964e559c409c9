#!/usr/bin/env bash
# One-time setup for bench/ (Debian 12, root): anchor Lua packages + the Rust load tools.
# Idempotent. The net module itself is built by ci/build.sh into build/5.4/ and build/luajit/.
set -eu
cd "$(dirname "$0")"
if ! dpkg -s lua5.4 luajit lua-luv lua-copas lua-socket lua-compat53 time >/dev/null 2>&1; then
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y lua5.4 luajit lua-luv lua-copas lua-socket lua-compat53 time
fi
cargo build --release -j2 --manifest-path tools/Cargo.toml   # -> bench/tools/target/release/{tcp-load,tcp-echo-server}
echo "bench tools: $(pwd)/tools/target/release"
