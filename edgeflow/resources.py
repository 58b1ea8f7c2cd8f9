"""Locates the project's data folders (models/, targets/, firmware/) in a checkout or an installed wheel."""

from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent


def _root_for(name: str) -> Path:
    checkout = _PKG.parent / name
    if checkout.is_dir():
        return checkout
    packaged = _PKG / "_data" / name
    if packaged.is_dir():
        return packaged
    raise FileNotFoundError(f"edgeflow data folder '{name}' not found (looked in {checkout} and {packaged})")


def models_dir() -> Path:
    return _root_for("models")


def targets_dir() -> Path:
    return _root_for("targets")


def firmware_dir() -> Path:
    return _root_for("firmware")
