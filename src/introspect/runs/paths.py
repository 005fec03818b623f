"""Paths that stay inside their root. Every id that becomes a path under ``results_dir`` (run, teacher,
warm-up and selection ids, view and config names) and ``results_dir`` itself are checked here, by the
planner and by the CLI with the same rules: an id is a relative path of plain names, and the path it
names, resolved (absolute, symlinks followed), lies inside the resolved root.

The checks are lexical first (cheap, no file access) and resolved where a path is about to be used;
a symlink planted inside ``results_dir`` that points out of it is refused by the resolved check.
"""
from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path

from ..errors import UnsafePathError

# One path component of an id: what label and method slugs produce (letters, digits, '_', '.', '+', '-'),
# or a whole Snakemake wildcard such as "{run}" (the rules' path patterns; it cannot leave its folder).
_PART = re.compile(r"[A-Za-z0-9_+.-]+|\{[A-Za-z_]+\}")
MAX_PART_BYTES = 255  # NAME_MAX of every common file system
MAX_ID_BYTES = 1024
# results_dir may not be, or lie inside, these (the system's own files)
SYSTEM_DIRS = ("/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/run", "/sbin",
               "/sys", "/usr", "/var/lib", "/var/log")
# ... nor be exactly one of these (roots that hold other people's or other programs' files)
SHARED_ROOTS = ("/", "/home", "/root", "/tmp", "/var", "/opt", "/srv", "/mnt", "/media")


def check_id(what: str, value: object) -> str:
    """``value`` if it is a relative path of plain names (no ``..``, ``.`` or empty component, each component
    at most 255 bytes); otherwise an :class:`UnsafePathError` naming ``what``."""
    if not isinstance(value, str) or not value:
        raise UnsafePathError(f"{what}: expected a non-empty id, got {value!r}")
    shown = value if len(value) <= 80 else value[:77] + "..."
    if len(value.encode()) > MAX_ID_BYTES:
        raise UnsafePathError(f"{what}: {shown!r} is longer than {MAX_ID_BYTES} bytes")
    for part in value.split("/"):
        if part in ("", ".", "..") or not _PART.fullmatch(part):
            raise UnsafePathError(f"{what}: {shown!r} is not a relative path of plain names (letters, digits, "
                                  "'_', '.', '+', '-'; no '..' or '.' part, no leading '/'): it could leave its folder")
        if len(part.encode()) > MAX_PART_BYTES:
            raise UnsafePathError(f"{what}: a component of {shown!r} is longer than {MAX_PART_BYTES} bytes")
    return value


def check_results_dir(results_dir: str | Path) -> Path:
    """The resolved ``results_dir``; refuses the file-system root, system directories and shared roots
    (the home directory itself among them)."""
    text = str(results_dir)
    if not text or text.startswith("-"):
        raise UnsafePathError(f"results_dir: {text!r} must be a directory path (not empty, not starting with '-')")
    resolved = Path(os.path.realpath(os.path.expanduser(text)))
    refused, system_dirs = _refused_roots()
    system = next((shown for shown, real in system_dirs if _within(resolved, real)), None)
    if resolved in refused or system:
        where = f"inside the system directory {system}" if system else "a shared root, not a results folder"
        raise UnsafePathError(f"results_dir: {text!r} resolves to {resolved}, {where}; give it a folder of its own "
                              "(e.g. results)")
    return resolved


def ensure_inside(results_dir: str | Path, path: str | Path) -> None:
    """Raise ValueError unless ``path`` lies inside ``results_dir`` (lexically: after resolving
    '.' and '..' against the working directory, without following symlinks the user made)."""
    root = os.path.abspath(results_dir)
    target = os.path.abspath(path)
    if target == root or os.path.commonpath([root, target]) != root:
        raise ValueError(f"{path} is not inside results_dir {results_dir}")


@lru_cache(maxsize=1)
def _refused_roots() -> tuple[frozenset[Path], tuple[tuple[str, Path], ...]]:
    """The shared roots (the home directory among them) and the system directories, as written and resolved."""
    refused = frozenset({Path(p) for p in SHARED_ROOTS} | {Path(os.path.realpath(Path.home()))})
    system = tuple((d, real) for d in SYSTEM_DIRS for real in dict.fromkeys([Path(d), Path(os.path.realpath(d))]))
    return refused, system


def inside(root: Path, relative: str | Path, what: str) -> Path:
    """``root / relative`` after checking that, resolved, it stays inside the resolved ``root``."""
    path = root / relative
    real_root = Path(os.path.realpath(root))
    if not _within(Path(os.path.realpath(path)), real_root):
        raise UnsafePathError(f"{what}: {path} resolves to {os.path.realpath(path)}, outside {real_root} "
                              "(a '..' or a symlink out of it)")
    return path


def _within(path: Path, root: Path) -> bool:
    text, base = str(path), str(root)
    return text == base or text.startswith(base if base.endswith(os.sep) else base + os.sep)
