#!/usr/bin/env bash
# Builds the fuzz targets and runs each for a bounded time, one after the other.
#
#   fuzz/run.sh                 every target, 60 s each
#   fuzz/run.sh 12              every target, 12 s each (what ci/test.sh runs)
#   fuzz/run.sh 300 ws_frames   one target, 5 minutes
#
# Prints per target the executions, the coverage reached and whether anything was found; exits
# non-zero if a target crashed, panicked, leaked, ran out of memory or hung, or did not build.
# Crashing inputs are left in fuzz/artifacts/TARGET/ (reproduce: cargo +nightly fuzz run TARGET
# FILE). The corpus grows in fuzz/corpus/TARGET/ (git-ignored), seeded by fuzz/seeds/make.py.
# Needs rustup's nightly toolchain; installs cargo-fuzz (crates.io) when it is missing.
# Env: NET_FUZZ_JOBS (cargo build jobs, default 2), NET_FUZZ_ARGS (more libFuzzer options).
set -uo pipefail

FUZZ="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$FUZZ"
seconds="${1:-60}"
shift $(( $# > 0 ? 1 : 0 ))
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(json url ws_frames ws_handshake)
case "$seconds" in ''|*[!0-9]*) echo "fuzz/run.sh: seconds expected, got '$seconds'" >&2; exit 2 ;; esac

[ -d "$HOME/.cargo/bin" ] && export PATH="$HOME/.cargo/bin:$PATH"
if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "==> rustup toolchain install nightly (cargo fuzz needs it)"
  rustup toolchain install nightly --profile minimal || { echo "fuzz/run.sh: no nightly toolchain" >&2; exit 1; }
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "==> cargo install cargo-fuzz (about a minute)"
  cargo install --locked cargo-fuzz || { echo "fuzz/run.sh: could not install cargo-fuzz" >&2; exit 1; }
fi

command -v python3 >/dev/null 2>&1 && python3 seeds/make.py corpus

# Debug assertions and overflow checks on (-a), AddressSanitizer (cargo fuzz's default) on: the
# same flags for build and run, or `run` would build again.
flags=(-a)
export CARGO_BUILD_JOBS="${NET_FUZZ_JOBS:-2}"
echo "==> cargo +nightly fuzz build ${flags[*]} (${targets[*]})"
start=$(date +%s)
build_ok=1
for t in "${targets[@]}"; do
  [ -f "fuzz_targets/$t.rs" ] || { echo "fuzz/run.sh: no target '$t' (see fuzz/fuzz_targets/)" >&2; exit 2; }
done
if [ ${#targets[@]} -eq 4 ]; then   # all at once: one cargo invocation
  cargo +nightly fuzz build "${flags[@]}" || build_ok=0
else
  for t in "${targets[@]}"; do cargo +nightly fuzz build "${flags[@]}" "$t" || build_ok=0; done
fi
echo "==> built in $(( $(date +%s) - start )) s"
if [ $build_ok -ne 1 ]; then
  echo "fuzz: the targets did not build"
  exit 1
fi

mkdir -p logs
failed=0 summary=()
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  log="logs/$t.log"
  before=$(ls "artifacts/$t" | wc -l)
  echo "==> $t: ${seconds} s"
  # -timeout: one input that takes over 10 s is a hang; -rss_limit_mb: libFuzzer's own cap.
  # shellcheck disable=SC2086
  cargo +nightly fuzz run "${flags[@]}" "$t" "corpus/$t" -- -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 ${NET_FUZZ_ARGS:-} >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -E '^#[0-9]+' "$log" | tail -1 | sed -nE 's/.* cov: ([0-9]+) ft: ([0-9]+) corp: ([0-9]+).*/cov \1, features \2, corpus \3/p')
  found=$(( $(ls "artifacts/$t" | wc -l) - before ))
  if [ $rc -eq 0 ] && [ $found -eq 0 ]; then
    line="$t: ${execs:-?} executions in ${seconds} s, ${cov:-coverage ?}: nothing found"
  else
    failed=$((failed + 1))
    line="$t: FOUND something (exit $rc, ${found} new artifact(s) in fuzz/artifacts/$t), ${execs:-?} executions"
    echo "---- last lines of fuzz/$log"
    grep -vE '^\s+[0-9]+: |^\s+at ' "$log" | tail -40
  fi
  echo "$line"
  summary+=("$line")
done

echo
echo "==================== fuzz/run.sh summary ===================="
for s in "${summary[@]}"; do echo "  $s"; done
echo "fuzz: $(( ${#targets[@]} - failed )) passed, $failed failed"
[ $failed -eq 0 ]
