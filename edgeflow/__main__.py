"""Allows `python -m edgeflow` (and `torchrun -m edgeflow`)."""

from edgeflow.cli import main

raise SystemExit(main())
