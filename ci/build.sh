#!/usr/bin/env bash
# Build the `net` module for one or more Lua flavours, one after the other, in one cargo target dir.
#
#   ci/build.sh                 # lua54 and luajit (the two main flavours)
#   ci/build.sh lua54           # only Lua 5.4
#   ci/build.sh luajit lua51    # any of: lua54 lua53 lua52 lua51 luajit
#
# Each build is `cargo build --release -j2 --features <flavour>`; the cdylib is copied to
#   lua54 -> build/5.4/net.so   lua53 -> build/5.3/net.so   lua52 -> build/5.2/net.so
#   lua51 -> build/5.1/net.so   luajit -> build/luajit/net.so
# Load one with:  lua5.4 -e 'package.cpath="build/5.4/?.so;"..package.cpath' -e 'require("net")'
# Env: CARGO (default cargo), CARGO_TARGET_DIR (honoured), NET_CARGO_FLAGS (extra cargo flags).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CARGO="${CARGO:-cargo}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

die() { echo "ci/build.sh: ERROR: $*" >&2; exit 1; }
trap 'rc=$?; [ $rc -eq 0 ] || echo "ci/build.sh: FAILED (exit $rc)" >&2' EXIT

command -v "$CARGO" >/dev/null 2>&1 ||
  die "'$CARGO' not found. Install Rust with rustup (https://rustup.rs), then 'source \$HOME/.cargo/env'."

dir_for() {
  case "$1" in
    lua54) echo 5.4 ;; lua53) echo 5.3 ;; lua52) echo 5.2 ;; lua51) echo 5.1 ;; luajit) echo luajit ;;
    *) return 1 ;;
  esac
}

flavours=("$@")
[ ${#flavours[@]} -gt 0 ] || flavours=(lua54 luajit)
for f in "${flavours[@]}"; do
  dir_for "$f" >/dev/null || die "unknown flavour '$f' (expected lua54, lua53, lua52, lua51 or luajit)"
done

built=()
for f in "${flavours[@]}"; do
  d="$ROOT/build/$(dir_for "$f")"
  echo "==> cargo build --release -j2 --features $f" >&2
  # shellcheck disable=SC2086
  "$CARGO" build --release -j2 --features "$f" ${NET_CARGO_FLAGS:-} ||
    die "cargo build for flavour '$f' failed"
  lib="$TARGET_DIR/release/libnet.so"
  [ -f "$lib" ] || die "cargo succeeded but $lib is missing"
  mkdir -p "$d"
  # copy then rename: a process that has the old net.so mapped keeps a valid file
  cp "$lib" "$d/.net.so.tmp.$$"
  mv -f "$d/.net.so.tmp.$$" "$d/net.so"
  built+=("$f -> ${d#"$ROOT"/}/net.so")
done

echo "ci/build.sh: built:"
for b in "${built[@]}"; do echo "  $b"; done
