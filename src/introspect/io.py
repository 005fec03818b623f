"""The one door for files: every file under ``results_dir`` and every file handed to the CLI is opened here.

Any file or folder of a shared results directory may have been replaced by a symlink, a FIFO, a device or a huge
file (docs/trust.md). So every path is walked one component at a time from a directory descriptor
(``O_NOFOLLOW | O_DIRECTORY``; the anchor is the working directory, the package, a directory named in
``INTROSPECT_TRUSTED_ROOTS``, else ``/``), the file is opened with ``O_NOFOLLOW | O_NONBLOCK`` and accepted only
if it is regular, at most :data:`MAX_BYTES` of its kind is read, JSON is parsed with a depth bound and without
NUL, lone surrogates or non-finite numbers, checkpoints are loaded ``weights_only`` from the bytes read, and
writes are atomic in the directory already opened (a folder swapped for a link later cannot redirect them).
Every refusal is a one-line :class:`FileRefused` naming the path (:class:`FileMissing` for a missing file);
``tests/test_one_door.py`` fails if another module opens a file itself.
"""
from __future__ import annotations

import contextlib
import errno
import io
import json
import math
import os
import re
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import ResultFileError

MiB = 1 << 20
# The most bytes a file of each kind may hold. A metrics.json is a few KB, a claims spec grows with its claims,
# a checkpoint holds a model and its optimizer state (the paper's largest network, ResNet110, is ~7 MB).
MAX_BYTES: dict[str, int] = {
    "metrics": 4 * MiB, "epochs": 16 * MiB, "record": 4 * MiB, "spec": 64 * MiB, "selection": 1 * MiB,
    "calibration": 1 * MiB, "preflight": 1 * MiB, "outcome": 64 * 1024, "lock": 4096, "checkpoint": 1024 * MiB,
    "model": 1024 * MiB, "config": 1_000_000, "overlay": 1 * MiB, "reported": 4 * MiB, "log": 64 * MiB,
    "cache": 4 * MiB, "text": 16 * MiB, "csv": 64 * MiB}
MAX_JSON_DEPTH = 64
TEMPORARY_SUFFIX = ".tmp"  # atomic writes go to ".<name>.<random>.tmp" beside their target
TRUSTED_ROOTS_VARIABLE = "INTROSPECT_TRUSTED_ROOTS"

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# the package's own data (schemas, catalogues) is code, not a results file: its folder is an anchor
_PACKAGE_DIRS = tuple(dict.fromkeys([os.path.dirname(os.path.abspath(__file__)),
                                     os.path.dirname(os.path.realpath(__file__))]))
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")


class FileRefused(ResultFileError):
    """A file cannot be opened through the door: a symlink on its path, not a regular file, too large,
    unreadable or not parseable. The message is one line and names the path."""


class FileMissing(FileRefused):
    """The file (or a folder on its path) does not exist."""


# ------------------------------------------------------------------ walking a path without following links

def trusted_roots() -> list[str]:
    """The absolute directories named in ``INTROSPECT_TRUSTED_ROOTS`` (an administrator's symlinked roots)."""
    value = os.environ.get(TRUSTED_ROOTS_VARIABLE, "")
    return [os.path.abspath(p) for p in value.split(os.pathsep) if p.strip()]


def _anchor(path: str) -> tuple[str, list[str]]:
    """The directory the walk starts from (opened following its links: trusted) and the components below it."""
    absolute = os.path.abspath(path)
    candidates = [os.getcwd(), *trusted_roots(), *_PACKAGE_DIRS]
    best = "/"
    for root in candidates:
        if (absolute == root or absolute.startswith(root.rstrip("/") + "/")) and len(root) > len(best):
            best = root
    rest = absolute[len(best):].strip("/")
    return best, [p for p in rest.split("/") if p]


def _refusal(path: str | Path, dir_fd: int, name: str, error: OSError) -> FileRefused:
    """The one-line error for a component that could not be opened."""
    if error.errno == errno.ENOENT:
        return FileMissing(f"{path}: does not exist ({name!r} is missing)")
    try:
        mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
    except OSError:
        mode = 0
    if stat.S_ISLNK(mode):
        return FileRefused(f"{path}: {name!r} on its path is a symlink; files in a results directory are never "
                           f"reached through links (a link set by an administrator: name its target in "
                           f"{TRUSTED_ROOTS_VARIABLE})")
    return FileRefused(f"{path}: cannot open {name!r} on its path ({error.strerror or type(error).__name__})")


@contextlib.contextmanager
def open_directory(path: str | Path, *, create: bool = False, shown: str | Path | None = None) -> Iterator[int]:
    """A descriptor of the directory ``path``, reached without following a symlink below its anchor (created,
    with its missing parents, when ``create``); errors name ``shown`` (default: ``path``). Closed when the
    block ends."""
    anchor, parts = _anchor(os.fspath(path))
    path = shown if shown is not None else path
    try:
        fd = os.open(anchor, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as error:
        raise FileRefused(f"{path}: cannot open {anchor} ({error.strerror})") from None
    try:
        for part in parts:
            child = _child(fd, part, create, path)
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)


def _child(fd: int, part: str, create: bool, path: str | Path) -> int:
    try:
        return os.open(part, _DIR_FLAGS, dir_fd=fd)
    except FileNotFoundError:
        if not create:
            raise FileMissing(f"{path}: does not exist ({part!r} is missing)") from None
    except OSError as error:
        raise _refusal(path, fd, part, error) from None
    try:
        with contextlib.suppress(FileExistsError):
            os.mkdir(part, 0o777, dir_fd=fd)
        return os.open(part, _DIR_FLAGS, dir_fd=fd)
    except OSError as error:
        raise _refusal(path, fd, part, error) from None


def _split(path: str | Path) -> tuple[str, str]:
    text = os.fspath(path)
    parent, name = os.path.split(os.path.abspath(text))
    if not name or name in (".", ".."):
        raise FileRefused(f"{text}: not a file name")
    return parent, name


@contextlib.contextmanager
def _open_regular(path: str | Path, flags: int, kind: str) -> Iterator[tuple[int, os.stat_result]]:
    parent, name = _split(path)
    with open_directory(parent, shown=path) as dir_fd:
        try:
            fd = os.open(name, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o666, dir_fd=dir_fd)
        except OSError as error:
            raise _refusal(path, dir_fd, name, error) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise FileRefused(f"{path}: not a regular file (a FIFO, device, socket or folder); a {kind} file is "
                              "a plain file")
        yield fd, info
    finally:
        os.close(fd)


# ------------------------------------------------------------------------------------------ reading
def read_bytes(path: str | Path, kind: str) -> bytes:
    """The content of the regular file ``path``, at most :data:`MAX_BYTES` ``[kind]`` bytes."""
    bound = MAX_BYTES[kind]
    with _open_regular(path, os.O_RDONLY, kind) as (fd, info):
        if info.st_size > bound:
            raise FileRefused(f"{path}: larger than {bound:,} bytes ({info.st_size:,}), more than a {kind} file holds")
        os.set_blocking(fd, True)
        chunks, size = [], 0
        while size <= bound:
            chunk = os.read(fd, min(bound + 1 - size, MiB))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    if size > bound:
        raise FileRefused(f"{path}: larger than {bound:,} bytes, more than a {kind} file holds")
    return b"".join(chunks)


def read_text(path: str | Path, kind: str) -> str:
    """The file as UTF-8 text without NUL characters."""
    data = read_bytes(path, kind)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise FileRefused(f"{path}: not UTF-8 text (byte 0x{data[error.start]:02x} at offset {error.start})") from None
    if "\x00" in text:
        raise FileRefused(f"{path}: holds a NUL character; a {kind} file is text")
    return text


def parse_json(text: str, where: str) -> Any:
    """JSON data, nested at most :data:`MAX_JSON_DEPTH` levels, without NUL, lone surrogates, NaN or
    infinities (each one line naming ``where``)."""
    if "\x00" in text:
        raise FileRefused(f"{where}: holds a NUL character")
    depth = deepest = 0
    for bracket in _BRACKETS.findall(_STRINGS.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    if deepest > MAX_JSON_DEPTH:
        raise FileRefused(f"{where}: nested deeper than {MAX_JSON_DEPTH} levels")

    def constant(name: str) -> Any:
        raise ValueError(f"{name} is not a finite number")

    try:
        data = json.loads(text, parse_constant=constant)
    except (ValueError, RecursionError) as error:
        raise FileRefused(f"{where}: not valid JSON ({' '.join(str(error).split())[:200]})") from None
    if problem := _text_problem(data):
        raise FileRefused(f"{where}: {problem}")
    return data


def _text_problem(data: Any) -> str | None:
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return "holds a lone surrogate (\\ud800-\\udfff), which is not text"
            if "\x00" in item:
                return "holds a NUL character"
        elif isinstance(item, float) and not math.isfinite(item):
            return "holds a number too large to be finite"
    return None


def read_json(path: str | Path, kind: str) -> Any:
    """The JSON data of ``path`` (bounded as :func:`read_bytes` and :func:`parse_json`)."""
    return parse_json(read_text(path, kind), os.fspath(path))


def read_torch(path: str | Path, kind: str, device: str = "cpu") -> Any:
    """A checkpoint's data, loaded with ``torch.load(..., weights_only=True)`` from the bytes read: a file
    in a results directory never runs code. Unpickling errors propagate to the caller, who names the fix."""
    import torch

    data = read_bytes(path, kind)
    return torch.load(io.BytesIO(data), map_location=device, weights_only=True)


def is_file(path: str | Path) -> bool:
    """Whether ``path`` is a regular file reached without a symlink (what a reader here would accept)."""
    try:
        parent, name = _split(path)
        with open_directory(parent, shown=path) as dir_fd:
            return stat.S_ISREG(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except (FileRefused, OSError):
        return False


# ------------------------------------------------------------------------------------------ writing
def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, in the directory reached without links (created if missing): a
    temporary file beside the target, fsynced, renamed over it. A killed job never leaves half a file."""
    parent, name = _split(path)
    with open_directory(parent, create=True, shown=path) as dir_fd:
        temporary = f".{name[:200]}.{secrets.token_hex(6)}{TEMPORARY_SUFFIX}"
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666,
                         dir_fd=dir_fd)
        except OSError as error:
            raise FileRefused(f"{path}: cannot create a file beside it ({error.strerror})") from None
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
            os.close(fd)
            fd = -1
            os.replace(temporary, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException as error:
            if fd >= 0:
                os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(temporary, dir_fd=dir_fd)
            if isinstance(error, OSError):
                raise FileRefused(f"{path}: cannot write it ({error.strerror or error})") from None
            raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def atomic_torch_save(path: str | Path, obj: Any) -> None:
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def write_if_changed(path: str | Path, text: str, kind: str) -> bool:
    """Write ``text`` unless ``path`` already holds exactly that (no time stamp moves); whether it wrote."""
    try:
        if read_text(path, kind) == text:
            return False
    except FileRefused:
        pass
    atomic_write_text(path, text)
    return True


def make_directory(path: str | Path) -> None:
    """Create the directory ``path`` and its missing parents, none of them reached through a link."""
    with open_directory(path, create=True):
        pass


def remove_file(path: str | Path) -> bool:
    """Delete the file (or link) ``path`` itself, never what a link points to; whether there was one."""
    parent, name = _split(path)
    try:
        with open_directory(parent, shown=path) as dir_fd:
            os.unlink(name, dir_fd=dir_fd)
    except (FileMissing, FileNotFoundError):
        return False
    except OSError as error:
        raise FileRefused(f"{path}: cannot delete it ({error.strerror})") from None
    return True


def rename_in_directory(path: str | Path, new_name: str) -> None:
    """Rename ``path`` to ``new_name`` in its own directory (the link itself if it is one)."""
    parent, name = _split(path)
    with open_directory(parent, shown=path) as dir_fd:
        try:
            os.replace(name, new_name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except OSError as error:
            raise FileRefused(f"{path}: cannot rename it ({error.strerror})") from None


def remove_stale_temporaries(directory: str | Path) -> list[Path]:
    """Delete the temporary files of atomic writes that a kill interrupted (call it before a run's single writer
    starts writing into ``directory``); returns what it removed."""
    removed = []
    try:
        with open_directory(directory) as dir_fd:
            for name in os.listdir(dir_fd):
                if name.startswith(".") and name.endswith(TEMPORARY_SUFFIX):
                    with contextlib.suppress(OSError):
                        if stat.S_ISREG(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode):
                            os.unlink(name, dir_fd=dir_fd)
                            removed.append(Path(directory) / name)
    except FileMissing:
        pass
    return removed


def linked_folders(folders: list[str | Path]) -> list[str]:
    """The refusal of each of ``folders`` that is reached through a symlink (folders that do not exist yet
    pass): for the folders that tools other than ours write into, e.g. Snakemake's job logs."""
    problems = []
    for folder in folders:
        try:
            with open_directory(folder):
                pass
        except FileMissing:
            continue
        except FileRefused as error:
            problems.append(str(error))
    return list(dict.fromkeys(problems))


def open_lock_file(path: str | Path) -> int:
    """A read-write descriptor of the lock file ``path`` (created if missing), never through a link and only
    if it is a regular file: a lock symlinked to another file must not let its holder truncate that file."""
    parent, name = _split(path)
    with open_directory(parent, create=True, shown=path) as dir_fd:
        try:
            fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o666,
                         dir_fd=dir_fd)
        except OSError as error:
            raise _refusal(path, dir_fd, name, error) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise FileRefused(f"{path}: not a regular file; a lock file is a plain file")
    os.set_blocking(fd, True)
    return fd


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
