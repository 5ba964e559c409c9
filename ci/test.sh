#!/usr/bin/env bash
# The project's test command.
#
#   ci/test.sh                      everything: cargo unit tests, a short run of every fuzz target
#                                   (fuzz/run.sh), build all five flavours, busted specs in lua-tests/
#                                   under lua5.4, luajit, lua5.3, lua5.2 and lua5.1
#   ci/test.sh --lua54 tcp          only lua5.4, only spec files whose name matches the Lua pattern "tcp"
#   ci/test.sh --lua51 --lua53 tcp  several interpreters: the flags add up
#   ci/test.sh --luajit lua-tests/udp_spec.lua
#   ci/test.sh -- --filter="echo"   everything after -- goes to busted as is
#
# Options: --lua54 / --luajit / --lua53 / --lua52 / --lua51 (only the interpreters named), --no-cargo
# (skip `cargo test`; implied by an interpreter flag or a spec/pattern, unless --cargo),
# --no-fuzz / --fuzz (the same for the fuzz run), --no-build (use build/ as it is), -h.
# Env: NET_TEST_TIMEOUT (seconds per busted run, default 600), NET_CARGO_TIMEOUT (default 1800),
#      LUA54 / LUAJIT / LUA53 / LUA52 / LUA51 (interpreters, default lua5.4 / luajit / lua5.3 ...),
#      BUSTED (default: busted on PATH),
#      NET_BUSTED_UTF=1 (coloured utfTerminal output instead of plainTerminal),
#      NET_FUZZ_SECONDS (seconds per fuzz target, default 12), NET_FUZZ_TIMEOUT (default 1200).
# The last line printed is always "N passed, N failed" (cargo + fuzz + every busted run). Exit status is
# non-zero if anything failed, did not build, crashed or timed out.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

usage() { sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

ALL_FLAVOURS=(lua54 luajit lua53 lua52 lua51)
DEFAULT_FLAVOURS=("${ALL_FLAVOURS[@]}")
wanted=() cargo=auto fuzz=auto build=1 spec="" busted_extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --lua54|--luajit|--lua53|--lua52|--lua51) wanted+=("${1#--}") ;;
    --no-cargo) cargo=0 ;;
    --cargo) cargo=1 ;;
    --no-fuzz) fuzz=0 ;;
    --fuzz) fuzz=1 ;;
    --no-build) build=0 ;;
    -h|--help) usage; exit 0 ;;
    --) shift; busted_extra=("$@"); break ;;
    -*) echo "ci/test.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) [ -z "$spec" ] || { echo "ci/test.sh: only one spec or pattern" >&2; exit 2; }; spec="$1" ;;
  esac
  shift
done
full=1
if [ -n "$spec" ] || [ ${#wanted[@]} -gt 0 ]; then full=0; fi
[ ${#wanted[@]} -gt 0 ] || wanted=("${DEFAULT_FLAVOURS[@]}")
# in the canonical order, once each
flavours=()
for fl in "${ALL_FLAVOURS[@]}"; do
  for w in "${wanted[@]}"; do [ "$w" = "$fl" ] && { flavours+=("$fl"); break; }; done
done
[ "$cargo" = auto ] && cargo=$full
[ "$fuzz" = auto ] && fuzz=$full

TIMEOUT="${NET_TEST_TIMEOUT:-600}"
CARGO_TIMEOUT="${NET_CARGO_TIMEOUT:-1800}"
LUA54="${LUA54:-lua5.4}"
LUAJIT="${LUAJIT:-luajit}"
LUA53="${LUA53:-lua5.3}"
LUA52="${LUA52:-lua5.2}"
LUA51="${LUA51:-lua5.1}"
BUSTED="${BUSTED:-$(command -v busted || echo /usr/bin/busted)}"
LOGDIR="$ROOT/build/test-logs"
rm -rf "$LOGDIR"
mkdir -p "$LOGDIR"

total_pass=0 total_fail=0
summary=()   # one line per step
details=()   # failure blocks, printed at the end

add() { # add PASSED FAILED "summary line"
  total_pass=$((total_pass + $1)); total_fail=$((total_fail + $2)); summary+=("$3")
}

# ---------------------------------------------------------------- 1. Rust unit tests
if [ "$cargo" = 1 ]; then
  echo "==> cargo test -j2 --release --features lua54 --lib"
  log="$LOGDIR/cargo-test.log"
  timeout -k 10 "$CARGO_TIMEOUT" cargo test -j2 --release --features lua54 --lib 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  p=0 f=0
  while read -r line; do
    # test result: ok. 3 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s
    n=$(sed -nE 's/.* ([0-9]+) passed; ([0-9]+) failed.*/\1 \2/p' <<<"$line")
    [ -n "$n" ] && { p=$((p + ${n% *})); f=$((f + ${n#* })); }
  done < <(grep -E '^test result: ' "$log")
  failed_names=$(grep -E '^test .* \.\.\. FAILED$' "$log" | sed -E 's/^test (.*) \.\.\. FAILED$/  [FAIL] \1/')
  note=""
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    f=1
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then note=" (TIMED OUT after ${CARGO_TIMEOUT} s)";
    else note=" (cargo test exited $rc without a failing test: build error? see $log)"; fi
  fi
  add "$p" "$f" "cargo test (lua54): $p passed, $f failed$note"
  [ -n "$failed_names$note" ] && details+=("cargo test failures:${note}"$'\n'"$failed_names")
fi

# ---------------------------------------------------------------- 1b. fuzz targets, briefly
# Every target of fuzz/ for NET_FUZZ_SECONDS: a guard rail against panics in the decoders, not a
# search (docs/fuzzing.md). Needs rustup's nightly; fuzz/run.sh installs cargo-fuzz if missing.
if [ "$fuzz" = 1 ]; then
  echo
  echo "==> fuzz/run.sh ${NET_FUZZ_SECONDS:-12}"
  log="$LOGDIR/fuzz.log"
  timeout -k 10 "${NET_FUZZ_TIMEOUT:-1200}" "$ROOT/fuzz/run.sh" "${NET_FUZZ_SECONDS:-12}" </dev/null 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  n=$(sed -nE 's/^fuzz: ([0-9]+) passed, ([0-9]+) failed$/\1 \2/p' "$log" | tail -1)
  p=${n% *} f=${n#* } note=""
  [ -n "$n" ] || { p=0 f=0; }
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    f=1
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then note=" (TIMED OUT after ${NET_FUZZ_TIMEOUT:-1200} s)";
    else note=" (fuzz/run.sh exited $rc: see $log)"; fi
  fi
  add "$p" "$f" "fuzz (${NET_FUZZ_SECONDS:-12} s per target): $p passed, $f failed$note"
  if [ "$f" -ne 0 ]; then
    details+=("fuzz failures${note}:"$'\n'"$(grep -E '^  [a-z_]+: FOUND' "$log")"$'\n'"  reproduce: cargo +nightly fuzz run TARGET fuzz/artifacts/TARGET/FILE (in fuzz/)")
  fi
fi

# ---------------------------------------------------------------- 2. build the flavours
# flavour -> "interpreter build-dir env-suffix" (the env suffix picks LUA_PATH_5_x; "" = LUA_PATH)
flavour_info() {
  case "$1" in
    lua54) echo "$LUA54 5.4 _5_4" ;; lua53) echo "$LUA53 5.3 _5_3" ;; lua52) echo "$LUA52 5.2 _5_2" ;;
    lua51) echo "$LUA51 5.1 -" ;; luajit) echo "$LUAJIT luajit -" ;;
  esac
}
declare -A build_ok=()
for fl in "${flavours[@]}"; do
  if [ $build -eq 1 ]; then
    if "$ROOT/ci/build.sh" "$fl"; then build_ok[$fl]=1; else build_ok[$fl]=0; fi
  else
    read -r _ d _ <<<"$(flavour_info "$fl")"
    if [ -f "$ROOT/build/$d/net.so" ]; then build_ok[$fl]=1; else build_ok[$fl]=0; fi
  fi
done

# ---------------------------------------------------------------- 3. busted specs
busted_args=(--output="$ROOT/ci/busted_count.lua")
if [ -n "$spec" ]; then
  if [ -e "$spec" ]; then busted_args+=("$spec"); else busted_args+=(--pattern="$spec" lua-tests); fi
else
  busted_args+=(lua-tests)
fi

run_busted() { # run_busted FLAVOUR
  local fl=$1 lua dir suffix name
  read -r lua dir suffix <<<"$(flavour_info "$fl")"
  name=$(basename "$lua")
  if [ "${build_ok[$fl]:-0}" != 1 ]; then
    add 0 1 "$name busted: not run, the $fl build failed"
    details+=("$name: the $fl build failed (see ci/build.sh output above)")
    return
  fi
  if ! command -v "$lua" >/dev/null 2>&1; then
    add 0 1 "$name busted: not run, interpreter '$lua' not found (run ci/setup.sh)"
    return
  fi
  local counts="$LOGDIR/$name.counts" failures="$LOGDIR/$name.failures"
  : >"$failures"
  rm -f "$counts"
  echo
  echo "==> $name $BUSTED ${busted_args[*]} ${busted_extra[*]:-}   (cpath: build/$dir, timeout ${TIMEOUT} s)"
  local lpath="$ROOT/lua-tests/?.lua;$ROOT/lua-tests/?/init.lua;;" cpath="$ROOT/build/$dir/?.so;;"
  local envs
  # 5.2+ read LUA_PATH_5_x before LUA_PATH; 5.1 and LuaJIT read only LUA_PATH
  if [ "$suffix" != - ]; then envs=(LUA_PATH$suffix="$lpath" LUA_CPATH$suffix="$cpath")
  else envs=(LUA_PATH="$lpath" LUA_CPATH="$cpath"); fi
  local t0=$SECONDS
  env "${envs[@]}" NET_BUSTED_COUNTS="$counts" NET_BUSTED_FAILURES="$failures" \
    timeout -k 10 "$TIMEOUT" "$lua" "$BUSTED" "${busted_args[@]}" "${busted_extra[@]}" \
    </dev/null
  local rc=$? p=0 f=0 pend=0 done=0 current="" note=""
  if [ -f "$counts" ]; then
    p=$(sed -n 's/^passed=//p' "$counts"); f=$(sed -n 's/^failed=//p' "$counts")
    pend=$(sed -n 's/^pending=//p' "$counts"); done=$(sed -n 's/^done=//p' "$counts")
    current=$(sed -n 's/^current=//p' "$counts")
  fi
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    f=$((f + 1)); note=" - TIMED OUT after ${TIMEOUT} s${current:+ in: $current}"
  elif [ ! -f "$counts" ]; then
    f=$((f + 1)); note=" - busted did not start (exit $rc; output handler not loaded?)"
  elif [ "$done" != 1 ]; then
    f=$((f + 1)); note=" - CRASHED (exit $rc)${current:+ in: $current}"
  elif [ "$rc" -ge 2 ]; then
    f=$((f + 1)); note=" - exited $rc after the suite ended (crash at exit / lua_close?)"
  elif [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    f=1; note=" - busted exited $rc"
  fi
  add "$p" "$f" "$name busted: $p passed, $f failed, $pend pending, $((SECONDS - t0)) s$note"
  if [ -s "$failures" ] || [ -n "$note" ]; then
    local block
    block=$(cat "$failures")
    details+=("Failures under $name:${note}${block:+$'\n'}$block")
  fi
}

for fl in "${flavours[@]}"; do run_busted "$fl"; done

# ---------------------------------------------------------------- 4. summary
if [ $((total_pass + total_fail)) -eq 0 ]; then
  add 0 1 "no test ran at all"
fi
echo
echo "==================== ci/test.sh summary ===================="
for d in "${details[@]}"; do echo "$d"; echo; done
for s in "${summary[@]}"; do echo "  $s"; done
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
