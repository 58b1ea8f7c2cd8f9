"""Runners: how a built artifact runs (a native process, a native pty device, QEMU rv32); start, stop, windows."""
