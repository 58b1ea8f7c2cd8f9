#!/usr/bin/env bash
# Idempotent set-up: Debian packages the later stages need (when root), then edgeflow with its dev extra.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
# torch is pinned to 2.13.0 (a local CPU wheel on these machines); never let pip pick an unpinned torch.
if ! $PY -c "import torch, sys; sys.exit(0 if torch.__version__.startswith('2.13.0') else 1)" 2>/dev/null; then
  $PY -m pip install --quiet "torch==2.13.0"
fi
$PY -m pip install --quiet -e ".[dev]"
command -v pyenv >/dev/null 2>&1 && pyenv rehash || true  # expose the new `edgeflow` script
echo "edgeflow installed: $($PY -m edgeflow --version)"
