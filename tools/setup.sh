#!/usr/bin/env bash
# Idempotent set-up: Debian packages the later stages need (when root), then edgeflow with its dev extra.
set -euo pipefail
cd "$(dirname "$0")/.."

# The emulated device (edgeflow flash / stream / demo, device and link test tiers): RISC-V cross compiler with
# picolibc, and qemu-system-riscv32 (in qemu-system-misc). Installed only when missing, and only as root.
if ! command -v riscv64-unknown-elf-gcc >/dev/null 2>&1 || ! command -v qemu-system-riscv32 >/dev/null 2>&1 \
   || [ ! -d /usr/lib/picolibc/riscv64-unknown-elf ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf \
      qemu-system-misc >/dev/null
  else
    echo "note: the RISC-V toolchain or QEMU is missing; as root run: apt-get install -y gcc-riscv64-unknown-elf" \
         "picolibc-riscv64-unknown-elf qemu-system-misc (device tests and edgeflow demo need them)" >&2
  fi
fi

# The fuzz targets (tests/fuzz, tools/fuzz.sh): Debian clang with libFuzzer and the sanitizer runtimes. Installed
# only when no clang can link -fsanitize=fuzzer,address,undefined, and only as root.
fuzz_probe='#include <stdint.h>
#include <stddef.h>
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }'
if ! echo "$fuzz_probe" | clang -fsanitize=fuzzer,address,undefined -x c - -o /dev/null >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang >/dev/null
    clang_major=$(clang -dumpversion | cut -d. -f1)
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "libclang-rt-${clang_major}-dev" >/dev/null 2>&1 || true
  else
    echo "note: no clang with libFuzzer; as root run: apt-get install -y clang libclang-rt-14-dev" \
         "(the fuzz tests skip without it)" >&2
  fi
fi

# The Jetson target (edgeflow build --target jetson-orin-nano): the aarch64 cross compiler for the board's host code.
if ! command -v aarch64-linux-gnu-g++ >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc-aarch64-linux-gnu g++-aarch64-linux-gnu >/dev/null
  else
    echo "note: aarch64-linux-gnu-g++ is missing; as root run: apt-get install -y gcc-aarch64-linux-gnu" \
         "g++-aarch64-linux-gnu (the Jetson cross build needs it; --host-only builds do not)" >&2
  fi
fi

# GVSoC, the cycle-level simulator of the pulp-open target (gvsoc test tier): built once (minutes) into a cache
# outside the work tree (${EDGEFLOW_CACHE:-~/.cache/edgeflow}), reused afterwards. Done as root or in CI;
# EDGEFLOW_SKIP_GVSOC=1 skips it. A failed build only skips that tier.
if [ "${EDGEFLOW_SKIP_GVSOC:-0}" != 1 ] && { [ "$(id -u)" = 0 ] || [ -n "${CI:-}" ]; }; then
  bash tools/setup_gvsoc.sh >/dev/null || echo "note: GVSoC not built: the pulp-open target and gvsoc tests are skipped" >&2
fi

PY=${PYTHON:-python3}
# torch is pinned to 2.13.0 (a local CPU wheel on these machines); never let pip pick an unpinned torch.
if ! $PY -c "import torch, sys; sys.exit(0 if torch.__version__.startswith('2.13.0') else 1)" 2>/dev/null; then
  $PY -m pip install --quiet "torch==2.13.0"
fi
# jetson extra: apache-tvm 0.27 + CUDA 12.6 NVRTC/runtime headers/CCCL from PyPI (pinned in pyproject.toml)
$PY -m pip install --quiet -e ".[dev,jetson]" "torch==2.13.0"
command -v pyenv >/dev/null 2>&1 && pyenv rehash || true  # expose the new `edgeflow` script
echo "edgeflow installed: $($PY -m edgeflow --version)"
