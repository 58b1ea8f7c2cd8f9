#!/usr/bin/env bash
# Longer fuzz runs of the libFuzzer targets in tests/fuzz (the C link receiver; the device main loop with
# femba-micro's generated network), built with clang under ASan + UBSan.
#   tools/fuzz.sh [SECONDS per target, default 600] [WORKDIR, default build/fuzz] [TARGET ...]
# The corpus grows in WORKDIR/corpus/<target> across runs; a crash exits 1 and prints the input in hex: keep it
# as tests/fuzz/corpus/<target>/<name>.hex (a regression input the test suite runs) once fixed.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
work=${2:-build/fuzz}
targets=()
for t in "${@:3}"; do
  targets+=(--target "$t")
done
exec "${PYTHON:-python3}" -m tests.fuzz.targets run "$work" --seconds "$seconds" ${targets[@]+"${targets[@]}"}
