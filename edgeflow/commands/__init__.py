"""Command bodies of the `edgeflow` CLI: glue between the stages and the terminal (cli.py holds the parsers)."""

from __future__ import annotations

from rich.console import Console

console = Console()
err_console = Console(stderr=True)
