#!/usr/bin/env bash
# Runs the cargo-fuzz targets of portcullis-iam one after the other.
#
#   fuzz/run.sh [SECONDS] [TARGET...]     (default: 300 seconds each, targets parse and evaluate)
#
# The committed seeds (fuzz/seeds/TARGET) are copied into the working corpus
# (fuzz/corpus/TARGET, ignored by git) first, and libFuzzer is given that corpus, so new
# inputs land there and never in the committed seeds. Crashes go to fuzz/artifacts/TARGET.
# Both targets use the dictionary fuzz/iam.dict (policy keywords, operators, escapes).
#
# Environment:
#   FUZZ_SANITIZER   cargo fuzz --sanitizer (default: none; the engine has no unsafe code,
#                    so AddressSanitizer mostly costs speed; use "address" to enable it)
#   FUZZ_NICE        nice level (default 10), so that other builds still progress
#   FUZZ_ARGS        extra libFuzzer arguments (e.g. "-max_len=12000 -jobs=1")
#
# Only the stable toolchain is needed: RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its -Z flags.
set -euo pipefail

seconds="${1:-300}"
shift || true
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
    targets=(parse evaluate)
fi
sanitizer="${FUZZ_SANITIZER:-none}"
niceness="${FUZZ_NICE:-10}"
read -r -a extra <<<"${FUZZ_ARGS:-}"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is missing: cargo install cargo-fuzz" >&2
    exit 1
fi

for target in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$target" "fuzz/artifacts/$target"
    cp -n "fuzz/seeds/$target/"* "fuzz/corpus/$target/" 2>/dev/null || true
    cmd=(nice -n "$niceness" env RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer "$sanitizer"
        "$target" "fuzz/corpus/$target"
        -- -max_total_time="$seconds" -print_final_stats=1 -dict="$root/fuzz/iam.dict" "${extra[@]}")
    echo "== $(date -u +%Y-%m-%dT%H:%M:%SZ) running: ${cmd[*]}"
    start=$(date +%s)
    status=0
    "${cmd[@]}" || status=$?
    echo "== $target: exit status $status after $(($(date +%s) - start)) s;" \
        "corpus fuzz/corpus/$target has $(find "fuzz/corpus/$target" -type f | wc -l) inputs"
    if [ "$status" -ne 0 ]; then
        echo "== $target: crash inputs, if any, are in fuzz/artifacts/$target" >&2
        exit "$status"
    fi
done
