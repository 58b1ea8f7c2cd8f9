"""Runners: how a built artifact runs (a native process, a native pty device, QEMU rv32, GVSoC pulp-open): start,
stop, feed windows, read outputs and measurements back."""
