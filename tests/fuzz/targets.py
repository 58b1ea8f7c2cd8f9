"""The libFuzzer targets of tests/fuzz: build them (clang, ASan + UBSan) over a real femba-micro host build,
write their seed corpora, read the regression inputs (corpus/<target>/*.hex), run them bounded.

Used by test_libfuzzer.py and by tools/fuzz.sh (`python -m tests.fuzz.targets build|run ...` from the repo root).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

FUZZ_DIR = Path(__file__).resolve().parent
REPO = FUZZ_DIR.parents[1]
FW = REPO / "firmware"
CASE = REPO / "tests" / "cases" / "femba-micro-w2"
CORPUS = FUZZ_DIR / "corpus"
TARGETS = ("fuzz_link_rx", "fuzz_device")
WARN = ["-std=c99", "-Wall", "-Wextra", "-Werror"]
SANITIZE = ["-fsanitize=fuzzer,address,undefined", "-fno-sanitize-recover=all", "-g", "-O1"]
CLANGS = ("clang", *(f"clang-{v}" for v in range(19, 13, -1)))
INPUT_SIZE = 22 * 1280  # femba-micro's int8 window


def find_clang() -> str | None:
    """A clang on PATH that links libFuzzer with ASan + UBSan (Debian: clang + libclang-rt-N-dev), else None."""
    for name in CLANGS:
        exe = shutil.which(name)
        if exe is None:
            continue
        probe = subprocess.run([exe, *SANITIZE, "-x", "c", "-", "-o", os.devnull], capture_output=True, text=True,
                               input="#include <stdint.h>\n#include <stddef.h>\n"
                                     "int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)"
                                     "{ (void)d; (void)n; return 0; }\n")
        if probe.returncode == 0:
            return exe
    return None


def micro_build(out: Path) -> Path:
    """`edgeflow build --target host --card femba-micro` of the golden case into out, plus src/ef_model_info.h."""
    cmd = [sys.executable, "-m", "edgeflow", "build", "--target", "host", "--card", "femba-micro",
           "--onnx", str(CASE / "model.onnx"), "--out", str(out)]
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"femba-micro host build failed: {(res.stderr or res.stdout).strip()[-400:]}")
    from edgeflow.ir.graph import Graph
    from edgeflow.link.model_info import write_model_info_h

    write_model_info_h(Graph.load(out), out / "src")
    return out


def compile_cmds(clang: str, build: Path, out: Path) -> dict[str, list[str]]:
    """The clang command line of each target (binaries in out)."""
    src = build / "src"
    net = sorted(src.glob("*.c")) + sorted((FW / "kernels").glob("*.c"))
    if (src / "ef_tiled.c").exists():  # the host target tiles its linear layers: the memcpy DMA engine too
        net.append(FW / "hal" / "ef_dma_memcpy.c")
    incs = [f"-I{d}" for d in (src, FW / "kernels", FW / "hal", FW / "link", FW / "device")]
    hook = ["-include", str(FW / "device" / "ef_layer_hook.h"), "-DEF_LAYER_HOOK(i)=ef_layer_mark(i)"]
    link = str(FW / "link" / "ef_link.c")
    return {
        "fuzz_link_rx": [clang, *WARN, *SANITIZE, f"-I{FW / 'link'}", str(FUZZ_DIR / "fuzz_link_rx.c"), link,
                         "-o", str(out / "fuzz_link_rx")],
        "fuzz_device": [clang, *WARN, *SANITIZE, *incs, *hook, str(FUZZ_DIR / "fuzz_device.c"), *map(str, net),
                        link, "-o", str(out / "fuzz_device")],
    }


def build_targets(clang: str, out: Path) -> dict[str, Path]:
    """Build femba-micro for the host and both fuzz targets into out; {target: binary}."""
    out.mkdir(parents=True, exist_ok=True)
    build = micro_build(out / "micro-host")
    bins = {}
    for name, cmd in compile_cmds(clang, build, out).items():
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"{name}: clang failed: {res.stderr.strip()[-600:]}")
        bins[name] = out / name
    return bins


# ---- inputs -----------------------------------------------------------------------------------------------------
def read_hex(path: Path) -> bytes:
    """A regression input: hex digits, whitespace ignored, `#` starts a comment."""
    text = re.sub(r"#[^\n]*", "", path.read_text())
    return bytes.fromhex("".join(text.split()))


def regression_inputs(target: str) -> dict[str, bytes]:
    return {p.stem: read_hex(p) for p in sorted((CORPUS / target).glob("*.hex"))}


def chunks_last_too_long(window: bytes) -> bytes:
    """The payload of a last INPUT chunk (1016-byte steps) one byte longer than the window has left."""
    last = (len(window) - 1) // 1016 * 1016
    return struct.pack("<II", last, len(window)) + window[last:] + b"\x01"


def seeds(target: str) -> dict[str, bytes]:
    """Seed inputs built from the protocol (valid traffic, each error kind, resets), never opaque blobs."""
    from edgeflow.link.protocol import MsgType, cobs_encode, encode_frame, frame_body, input_frames

    hello = encode_frame(MsgType.HELLO, 0xF001)
    window = bytes((i * 37 + 11) & 0xFF for i in range(INPUT_SIZE))
    chunks = input_frames(1, window, 1024)
    bad_crc = bytearray(frame_body(MsgType.INPUT, 5, struct.pack("<II", 0, INPUT_SIZE) + b"x"))
    bad_crc[-1] ^= 0xFF
    bad = [cobs_encode(bytes(bad_crc)) + b"\x00", b"\x09\x01\x02\x00", encode_frame(0x42, 5),
           encode_frame(MsgType.INPUT, 5, struct.pack("<II", 0, 1000) + b"\x01"),
           encode_frame(MsgType.INPUT, 5, struct.pack("<II", 100, INPUT_SIZE) + b"\x01"),
           encode_frame(MsgType.INPUT, 5, bytes(2000)), encode_frame(MsgType.INPUT, 6, b"\x01\x02"),
           chunks[0] + input_frames(2, window, 1024)[1],  # another window's chunk mid-window
           chunks[0] + chunks[2],  # a gap
           b"".join(chunks[:-1]) + encode_frame(MsgType.INPUT, 1, chunks_last_too_long(window))]
    errors = hello.join(bad)  # each error kind once (a HELLO between them ends the broken state)
    if target == "fuzz_link_rx":
        return {"hello": b"\xff\x80" + hello, "chunks": b"\xff\x80" + b"".join(chunks[:3]),
                "errors": b"\xff\x80" + errors, "tiny-buffer": b"\x04\x0c" + hello + chunks[0][:40] + b"\x00",
                "garbage": b"\x40\x80\x13\x37garbage" + hello + b"\x00\x00" + encode_frame(MsgType.OUTPUT, 7, bytes(9))}
    ops = bytes([0, 0x01, 0xF0, 1, 1, 255, 9, 7, 2, 2, 0, 0, 16, 0, 0, 1, 3, 255, 7, 6, 4, 0, 5, 4, 0x42, 3, 2, 1, 2])
    return {"raw-window-replay": b"\x00" + hello + b"".join(chunks) * 2 + hello,
            "raw-errors": b"\x00" + hello + errors + b"".join(chunks),
            "raw-mid-window-hello": b"\x00" + b"".join(chunks[:5]) + hello + b"".join(chunks),
            "ops": b"\x01" + ops}


def write_corpus(target: str, folder: Path) -> Path:
    """Seeds and regression inputs of `target` as files in folder (the fuzzer's starting corpus)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in {**seeds(target), **regression_inputs(target)}.items():
        (folder / name).write_bytes(data)
    return folder


def run_fuzzer(binary: Path, corpus: Path, seconds: int, artifacts: Path) -> subprocess.CompletedProcess:
    """One bounded libFuzzer run (new inputs go to corpus, a crasher to artifacts/crash-*)."""
    artifacts.mkdir(parents=True, exist_ok=True)
    cmd = [str(binary), f"-max_total_time={seconds}", "-timeout=20", "-rss_limit_mb=2048", "-max_len=65536",
           "-print_final_stats=1", f"-artifact_prefix={artifacts}/", str(corpus)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120)


def crash_report(artifacts: Path) -> str:
    """Every crasher in artifacts as hex, ready to keep as a regression input in corpus/<target>/."""
    return "\n".join(f"{p.name}: {p.read_bytes().hex()}" for p in sorted(artifacts.glob("*")) if p.is_file())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=("build", "run"))
    ap.add_argument("out", type=Path, help="work folder (binaries, corpora, crashers)")
    ap.add_argument("--seconds", type=int, default=600, help="per target (run)")
    ap.add_argument("--target", choices=TARGETS, action="append", help="default: both")
    args = ap.parse_args(argv)
    clang = find_clang()
    if clang is None:
        print("no clang with libFuzzer found: apt-get install clang libclang-rt-14-dev", file=sys.stderr)
        return 2
    bins = build_targets(clang, args.out)
    if args.command == "build":
        print("\n".join(str(b) for b in bins.values()))
        return 0
    rc = 0
    for name in args.target or TARGETS:
        corpus = write_corpus(name, args.out / "corpus" / name)
        res = run_fuzzer(bins[name], corpus, args.seconds, args.out / "crashes" / name)
        print(f"{name}: exit {res.returncode}; " + " ".join(ln for ln in res.stderr.splitlines() if "stat::" in ln))
        if res.returncode != 0:
            print(res.stderr[-3000:] + "\n" + crash_report(args.out / "crashes" / name), file=sys.stderr)
            rc = 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
