"""Runner: QEMU virt rv32 running firmware.elf in the background, its UART on a pty, a QMP monitor socket."""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import tty
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edgeflow.errors import EdgeflowError

QEMU = "qemu-system-riscv32"
QEMU_PACKAGE = "qemu-system-misc"
DEVICE_JSON = "device.json"
LOG = "qemu.log"
ELF = "firmware.elf"
# Deterministic counters: one instruction per virtual ns, so rdcycle == rdinstret, identical run to run.
ICOUNT = "shift=0,align=off,sleep=off"
# A host write to the board's pty blocks while QEMU is starved of CPU (a loaded 2-core CI box): give it time
# rather than failing the attempt (open_port's default suits a board that answers at once).
WRITE_TIMEOUT_S = 30.0
_PTY = re.compile(r"char device redirected to (/dev/pts/\d+)")
_CHILDREN: dict[int, subprocess.Popen] = {}   # QEMUs this process started (reaped on stop)


class EmulatorError(EdgeflowError):
    """QEMU missing, firmware missing, QEMU failed to start, monitor unreachable."""


@dataclass
class Device:
    """A running emulated board: its UART pty, QEMU's pid, the monitor socket, the firmware and QEMU's log."""

    port: str
    pid: int
    monitor: str
    elf: str
    log: str

    def reset(self, timeout: float = 5.0) -> None:
        """Reset the board (QMP `system_reset`, waiting for QEMU's RESET event): when this returns the firmware is
        restarting from _start; the pty stays the same."""
        monitor_command(self.monitor, "system_reset", timeout, wait_event="RESET")

    def alive(self) -> bool:
        return _is_qemu(self.pid, self.elf)


def qemu_binary() -> str:
    q = shutil.which(QEMU)
    if q is None:
        raise EmulatorError(f"{QEMU} not found on PATH (install the Debian package {QEMU_PACKAGE}, "
                            "or run `bash tools/setup.sh` as root)")
    return q


def qemu_command(elf: Path, monitor: str, ram_mib: int = 128) -> list[str]:
    """The QEMU command line of the rv32-virt board (UART on a new pty, QMP monitor on a unix socket), paused
    (-S) until start() has the pty open."""
    return [qemu_binary(), "-machine", "virt", "-m", f"{ram_mib}M", "-bios", "none", "-kernel", str(elf),
            "-display", "none", "-monitor", "none", "-qmp", f"unix:{monitor},server=on,wait=off",
            "-serial", "pty",
            "-icount", ICOUNT, "-S"]


def _ram_mib(elf: Path) -> int:
    rep = elf.parent / "report.json"
    try:
        return int(json.loads(rep.read_text())["firmware"]["qemu_ram_mib"])
    except (OSError, ValueError, KeyError, TypeError):
        return 128


def _is_qemu(pid: int, elf: str | None = None) -> bool:
    """True if pid is a live (not zombie) QEMU of ours (running `elf` when given)."""
    child = _CHILDREN.get(pid)
    if child is not None and child.poll() is not None:
        return False
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    if state == "Z" or not cmd or not cmd[0].endswith(QEMU.encode()):
        return False
    return elf is None or elf.encode() in cmd


def _monitor_path() -> str:
    """A short unix-socket path (sun_path holds ~107 bytes; build dirs can be deeper)."""
    fd, path = tempfile.mkstemp(prefix="ef-qemu-", suffix=".mon")
    os.close(fd)
    os.unlink(path)
    return path


def start(build_dir: str | Path, elf: str | Path | None = None, timeout: float = 10.0) -> Device:
    """Start QEMU on build_dir/firmware.elf (or `elf`) in the background, its own session, so it outlives this
    process; wait for its pty; write build_dir/device.json. A QEMU already running for build_dir is stopped first."""
    build = Path(build_dir)
    elf_path = Path(elf) if elf is not None else build / ELF
    qemu_binary()                                 # QEMU missing is said before anything else
    if not elf_path.is_file():
        raise EmulatorError(f"{elf_path}: firmware not found (build it with `edgeflow build --target rv32-virt` "
                            "or `edgeflow flash --target rv32-virt BUILD_DIR`)")
    stop(build)
    elf_abs = elf_path.resolve()
    monitor = _monitor_path()
    cmd = qemu_command(elf_abs, monitor, _ram_mib(elf_abs))
    log_path = build / LOG
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    _CHILDREN[proc.pid] = proc
    deadline = time.monotonic() + timeout
    while True:
        text = log_path.read_text(errors="replace")
        m = _PTY.search(text)
        if m and os.path.exists(monitor):
            break
        if proc.poll() is not None:
            last = (text.strip().splitlines() or ["no output"])[-1]
            raise EmulatorError(f"{QEMU} exited with code {proc.returncode} at start: {last}")
        if time.monotonic() > deadline:
            _kill(proc.pid)
            raise EmulatorError(f"{QEMU} printed no pty within {timeout:g} s (log {log_path})")
        time.sleep(0.01)
    dev = Device(port=m.group(1), pid=proc.pid, monitor=monitor, elf=str(elf_abs), log=str(log_path.resolve()))
    try:
        _boot(dev, timeout)
    except BaseException:
        _kill(proc.pid)
        raise
    (build / DEVICE_JSON).write_text(json.dumps(asdict(dev), indent=1) + "\n")
    return dev


def _boot(dev: Device, timeout: float) -> None:
    """Let the paused board run with the pty held open, and wait until the firmware has said something: its UART
    is then initialised (turning the 16550 FIFO on flushes it), so no byte a host sends later is lost. What the
    firmware said at boot is read and dropped (a host asks again: HELLO)."""
    fd = os.open(dev.port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        tty.setraw(fd)
        monitor_command(dev.monitor, "cont", timeout)
        deadline = time.monotonic() + timeout
        while True:
            r, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            if r:
                os.read(fd, 4096)
                break
            if time.monotonic() >= deadline:
                raise EmulatorError(f"{dev.elf}: the firmware said nothing within {timeout:g} s of boot "
                                    f"(QEMU log {dev.log})")
        time.sleep(0.05)                          # the rest of the boot message
        while select.select([fd], [], [], 0)[0] and os.read(fd, 4096):
            pass
    finally:
        os.close(fd)


def load(build_dir: str | Path) -> Device | None:
    """The device recorded in build_dir/device.json if its QEMU is still running, else None."""
    p = Path(build_dir) / DEVICE_JSON
    try:
        dev = Device(**json.loads(p.read_text()))
    except (OSError, ValueError, TypeError):
        return None
    return dev if dev.alive() else None


def _kill(pid: int, grace: float = 2.0) -> None:
    child = _CHILDREN.pop(pid, None)
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if child is not None and child.poll() is not None:
            return
        if child is None and not _is_qemu(pid):
            return
        time.sleep(0.02)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    if child is not None:
        child.wait(timeout=5)


def stop(build_dir: str | Path) -> bool:
    """Stop the QEMU recorded in build_dir/device.json; True if one was running. Removes device.json."""
    p = Path(build_dir) / DEVICE_JSON
    try:
        info = json.loads(p.read_text())
    except (OSError, ValueError):
        return False
    running = isinstance(info.get("pid"), int) and _is_qemu(info["pid"], info.get("elf"))
    if running:
        _kill(info["pid"])
    for f in (p, Path(str(info.get("monitor", "")))):
        if f.name:
            f.unlink(missing_ok=True)
    return running


def monitor_command(monitor: str, command: str, timeout: float = 5.0, wait_event: str | None = None) -> dict:
    """Run one QMP command (e.g. "system_reset") on QEMU's monitor socket and return its reply. With wait_event,
    also wait for that QMP event (RESET: the board has been reset when this returns)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(monitor)
            f = s.makefile("rwb")
            reply: dict | None = None
            seen: set[str] = set()
            for i, cmd in enumerate((None, "qmp_capabilities", command)):
                if cmd is not None:
                    f.write(json.dumps({"execute": cmd}).encode() + b"\n")
                    f.flush()
                reply = None
                while reply is None or (i == 2 and wait_event is not None and wait_event not in seen):
                    line = f.readline()
                    if not line:
                        raise OSError("monitor closed the connection")
                    msg = json.loads(line)
                    if "event" in msg:
                        seen.add(msg["event"])
                    elif reply is None:
                        reply = msg
    except (OSError, ValueError) as exc:
        raise EmulatorError(f"QEMU monitor {monitor}: {exc}") from None
    assert reply is not None
    if "error" in reply:
        raise EmulatorError(f"QEMU monitor {monitor}: {command}: {reply['error'].get('desc', reply)}")
    return reply


@contextmanager
def running(elf: str | Path, workdir: str | Path | None = None) -> Iterator[Device]:
    """A QEMU on `elf` for the duration of a with-block (device.json and the log in workdir or a temp dir)."""
    with tempfile.TemporaryDirectory(prefix="ef-dev-") as tmp:
        where = Path(workdir) if workdir is not None else Path(tmp)
        dev = start(where, elf)
        try:
            yield dev
        finally:
            stop(where)


def run_raw_windows(elf: Path, windows: np.ndarray, n_out: int, timeout: float = 120.0) -> np.ndarray:
    """Stream int8 windows to a firmware built with the bring-up main (targets/rv32-virt/raw_main.c) and read its
    int32 accumulators (N, n_out); the per-window instruction counts go to run_raw_windows.last_instret."""
    import serial

    data = np.ascontiguousarray(windows, dtype=np.int8).reshape(len(windows), -1)
    out = np.zeros((len(data), n_out), dtype=np.int32)
    instret = np.zeros(len(data), dtype=np.uint64)
    reply = 4 * n_out + 8
    with running(elf) as dev, serial.Serial(dev.port, timeout=timeout, write_timeout=timeout) as port:
        for i, w in enumerate(data):
            port.write(w.tobytes())
            got = port.read(reply)
            if len(got) != reply:
                raise EmulatorError(f"{dev.port}: window {i}: device answered {len(got)} of {reply} bytes "
                                    f"within {timeout:g} s")
            out[i] = np.frombuffer(got[: 4 * n_out], dtype="<i4")
            instret[i] = np.frombuffer(got[4 * n_out:], dtype="<u8")[0]
    run_raw_windows.last_instret = instret  # type: ignore[attr-defined]
    return out


def run_link_windows(elf: Path, windows: np.ndarray, n_out: int, timeout: float = 30.0) -> np.ndarray:
    """Stream int8 windows over the link protocol (HELLO, INPUT chunks, OUTPUT) to firmware.elf on QEMU; its
    int32 accumulators (N, n_out). Any window lost after the session's retries raises LinkError."""
    from edgeflow.link.session import Session, open_port

    data = np.ascontiguousarray(windows, dtype=np.int8).reshape(len(windows), -1)
    out = np.zeros((len(data), n_out), dtype=np.int32)
    with running(elf) as dev:
        port = open_port(dev.port, write_timeout=WRITE_TIMEOUT_S)
        try:
            session = Session(port, None, timeout_s=timeout, name=dev.port)
            session.handshake()
            for i, w in enumerate(data):
                ans = session.infer(i + 1, w.tobytes())
                out[i] = np.asarray(ans.output.values, dtype=np.int64).astype(np.int32)
        finally:
            port.close()
    return out
