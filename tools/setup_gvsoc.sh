#!/usr/bin/env bash
# Builds the GVSoC simulator (pulp-open only, Release) and unpacks pulp-runtime into a cache outside the work tree.
# Sources: the pinned tarballs in $EDGEFLOW_VENDOR (default <repo>/../shared/vendor), else the same commits cloned
# from upstream. Reused when its stamp file is present. Prints the install prefix on its last line.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
GVSOC_COMMIT=209c147
PULPRT_COMMIT=415a028
VENDOR=${EDGEFLOW_VENDOR:-$REPO/../shared/vendor}
CACHE=${EDGEFLOW_CACHE:-$HOME/.cache/edgeflow}
ROOT=$CACHE/gvsoc-$GVSOC_COMMIT
PREFIX=$ROOT/install
STAMP=$ROOT/.built
JOBS=${EDGEFLOW_JOBS:-$(nproc 2>/dev/null || echo 2)}

die() { echo "setup_gvsoc: $*" >&2; exit 1; }

if [ -f "$STAMP" ] && [ -x "$PREFIX/bin/gvsoc" ] && [ -d "$ROOT/pulp-runtime" ]; then
  echo "$PREFIX"; exit 0
fi

# Debian build dependencies: installed when root, otherwise named in a one-line error.
need_deb=()
command -v cmake >/dev/null 2>&1 || need_deb+=(cmake)
command -v g++ >/dev/null 2>&1 || need_deb+=(g++)
command -v make >/dev/null 2>&1 || need_deb+=(make)
command -v xz >/dev/null 2>&1 || need_deb+=(xz-utils)
[ -f /usr/include/zlib.h ] || need_deb+=(zlib1g-dev)
python3 -c "import ensurepip, venv" 2>/dev/null || need_deb+=(python3-venv)
command -v riscv64-unknown-elf-gcc >/dev/null 2>&1 || need_deb+=(gcc-riscv64-unknown-elf)
if [ ${#need_deb[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_deb[@]}" >/dev/null
  else
    die "missing Debian packages: ${need_deb[*]} (as root: apt-get install -y ${need_deb[*]})"
  fi
fi

mkdir -p "$ROOT"
# Python environment of the simulator's configuration generator (also used at run time by bin/gvsoc).
VENV=$ROOT/venv
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV" || die "python3 -m venv failed (apt-get install python3-venv)"
fi
"$VENV/bin/python" -m pip install --quiet pyelftools prettytable rich psutil six pexpect typing_extensions \
  > "$ROOT/pip.log" 2>&1 || die "pip install of pyelftools prettytable rich psutil six pexpect typing_extensions failed"

fetch() {  # fetch NAME COMMIT URL: unpack the vendored tarball, else clone the commit
  local name=$1 commit=$2 url=$3 tarball="$VENDOR/$1-$2.tar.xz"
  [ -d "$ROOT/$name" ] && return 0
  if [ -f "$tarball" ]; then
    tar -xJf "$tarball" -C "$ROOT" || die "cannot unpack $tarball"
  else
    command -v git >/dev/null 2>&1 || die "no $tarball and no git to clone $url"
    git clone -q "$url" "$ROOT/$name.tmp" || die "no $tarball and cloning $url failed"
    git -C "$ROOT/$name.tmp" checkout -q "$commit" || die "commit $commit not found in $url"
    git -C "$ROOT/$name.tmp" submodule update -q --init --recursive || die "submodules of $url failed"
    mv "$ROOT/$name.tmp" "$ROOT/$name"
  fi
}
fetch gvsoc "$GVSOC_COMMIT" https://github.com/gvsoc/gvsoc.git
fetch pulp-runtime "$PULPRT_COMMIT" https://github.com/pulp-platform/pulp-runtime.git

GV=$ROOT/gvsoc
export PATH=$VENV/bin:$GV/gapy/bin:$PATH
echo "setup_gvsoc: building GVSoC $GVSOC_COMMIT (pulp-open, Release, -j$JOBS) into $PREFIX: minutes" >&2
cmake -S "$GV" -B "$GV/build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$PREFIX" \
  -DGVSOC_MODULES="$GV/core/models;$GV/pulp;$GV/pulp/targets;$GV/gvrun/python" \
  -DGVSOC_TARGETS=pulp-open -DCMAKE_SKIP_INSTALL_RPATH=false -DBUILD_PROFILE=OFF -DBUILD_DEBUG=OFF \
  > "$ROOT/cmake.log" 2>&1 || die "cmake configure failed (see $ROOT/cmake.log)"
cmake --build "$GV/build" -j"$JOBS" > "$ROOT/build.log" 2>&1 || die "GVSoC build failed (see $ROOT/build.log)"
cmake --install "$GV/build" > "$ROOT/install.log" 2>&1 || die "GVSoC install failed (see $ROOT/install.log)"

# L1 TCDM of 128 KiB (GAP9's size) in the installed cluster config; no rebuild needed.
CLUSTER_JSON=$(find "$PREFIX" -path '*chips/pulp_open/cluster.json' | head -1)
[ -n "$CLUSTER_JSON" ] || die "cluster.json of pulp_open not found under $PREFIX"
"$VENV/bin/python" - "$CLUSTER_JSON" <<'EOF' || die "cannot patch $CLUSTER_JSON for a 128 KiB L1"
import json, sys
path = sys.argv[1]
cfg = json.load(open(path))
def patch(node):
    if isinstance(node, dict):
        if "l1" in node and isinstance(node["l1"], dict) and "mapping" in node["l1"]:
            node["l1"]["mapping"]["size"] = "0x20000"
            return True
        return any(patch(v) for v in node.values())
    return False
if not patch(cfg):
    sys.exit("no l1/mapping in " + path)
json.dump(cfg, open(path, "w"), indent=2)
EOF
rm -rf "$GV/build"  # the objects are not needed once installed (keeps the cache ~20 MiB)
touch "$STAMP"
echo "$PREFIX"
