"""The JSON schemas the package validates its inputs with, shipped as package data (they must be
found in an installed package, not only in a checkout)."""
from __future__ import annotations

from pathlib import Path

SCHEMA_DIR = Path(__file__).resolve().parent


def schema_path(name: str) -> Path:
    """``config`` -> the path of ``config.schema.yaml`` inside the installed package."""
    return SCHEMA_DIR / f"{name}.schema.yaml"
