"""Runner: the device main loop built natively (host compiler, ef_hal_host.c) on a pty, a fast stand-in for QEMU."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import tty
from dataclasses import dataclass, field
from pathlib import Path

from edgeflow.backends import toolchain
from edgeflow.errors import EdgeflowError
from edgeflow.ir.graph import Graph
from edgeflow.link.model_info import write_model_info_h
from edgeflow.resources import firmware_dir

BINARY = "device_native"
LAYER_HOOK = ["-D", "EF_LAYER_HOOK(i)=ef_layer_mark(i)"]


class DeviceError(EdgeflowError):
    """The device could not be built or started."""


def device_sources(src_dir: Path, tiled: bool) -> tuple[list[Path], list[str]]:
    """C files and include flags of a device image over a build's src/ (generated network + kernels + link +
    main loop); the HAL is not included (one per target)."""
    fw = firmware_dir()
    srcs = sorted(src_dir.glob("*.c")) + toolchain.kernel_sources(toolchain.host_compiler().kernels)
    if tiled:
        srcs.append(fw / "hal" / "ef_dma_memcpy.c")
    srcs += [fw / "link" / "ef_link.c", fw / "device" / "device_main.c"]
    incs = [f"-I{d}" for d in (src_dir, fw / "kernels", fw / "hal", fw / "link", fw / "device")]
    return srcs, incs


def build_native_device(graph: Graph, out_dir: str | Path, l1_bytes: int | None = None,
                        max_payload: int | None = None) -> Path:
    """Render `graph` through the C pipeline into out_dir (src/, graph.json, ...; L1 tiles with l1_bytes), add
    ef_model_info.h, and compile the device main loop over ef_hal_host.c into out_dir/device_native."""
    from edgeflow.backends.c_pipeline import render_build

    out = Path(out_dir)
    render_build(graph, None, out, "host", l1_bytes=l1_bytes)
    write_model_info_h(graph, out / "src")
    return compile_native_device(out, tiled=l1_bytes is not None, max_payload=max_payload)


def compile_native_device(out_dir: Path, tiled: bool = False, max_payload: int | None = None) -> Path:
    """Compile the device image of an existing build directory (with src/ef_model_info.h) with the host
    target's compiler."""
    c = toolchain.host_compiler()
    gcc = toolchain.cc(c, DeviceError)
    fw = firmware_dir()
    srcs, incs = device_sources(out_dir / "src", tiled)
    srcs.append(fw / "hal" / "ef_hal_host.c")
    extra = [f"-DEF_LINK_MAX_PAYLOAD={max_payload}u"] if max_payload else []
    binary = out_dir / BINARY
    cmd = [gcc, *c.cflags, "-D_DEFAULT_SOURCE", *incs, *LAYER_HOOK, "-include", str(fw / "device" / "ef_layer_hook.h"),
           *extra, *map(str, srcs), "-o", str(binary)]
    toolchain.run(cmd, "native device", DeviceError)
    return binary


@dataclass
class PtyDevice:
    """A native device process on the master side of a pty; the host opens `port` (the slave path), as with
    QEMU's `-serial pty`. restart() kills and restarts the process on the same pty (a device reset)."""

    binary: Path
    env: dict[str, str] = field(default_factory=dict)
    master: int = -1
    slave: int = -1
    port: str = ""
    proc: subprocess.Popen | None = None

    def start(self) -> PtyDevice:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)  # no echo, no line discipline before anyone opens the port
        self.port = os.ttyname(self.slave)
        self._spawn()
        return self

    def _spawn(self) -> None:
        env = {**os.environ, **self.env, "EF_HAL_FD": str(self.master)}
        self.proc = subprocess.Popen([str(self.binary)], env=env, pass_fds=(self.master,),
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=5)
        self.proc = None

    def restart(self, delay_s: float = 0.0) -> None:
        self.kill()
        time.sleep(delay_s)
        self._spawn()

    def stop(self) -> None:
        self.kill()
        for fd in (self.master, self.slave):
            if fd >= 0:
                os.close(fd)
        self.master = self.slave = -1

    def __enter__(self) -> PtyDevice:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()
