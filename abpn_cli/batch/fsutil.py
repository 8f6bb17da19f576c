"""File-system safety: atomic writes, leftover temp files, input probes, the OUT lock.

An output only ever appears under its final name complete and fsynced: it is written to a
hidden temp file in the target folder (same file system, so the rename is atomic), fsynced,
then `os.replace`d; the folder is fsynced so the rename survives a power cut.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

TEMP_MARK = ".abpn-tmp-"
# .NAME.abpn-tmp-<pid>-<hex><suffix>; the suffix keeps format-by-extension writers happy
TEMP_RE = re.compile(r"^\..*\.abpn-tmp-\d+-[0-9a-f]{8}(\.[A-Za-z0-9]{1,8})?$")
PROBE_BYTES = 1 << 20
FATAL_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}
_NAME_ROOM = 150  # keep temp names under NAME_MAX (255) even for long final names


def temp_path_for(dest: Path) -> Path:
    """A unique hidden temp name beside `dest` that the walker and resume ignore."""
    name = dest.name[:_NAME_ROOM]
    return dest.with_name(f".{name}{TEMP_MARK}{os.getpid()}-{secrets.token_hex(4)}{dest.suffix}")


def is_temp_name(name: str) -> bool:
    return bool(TEMP_RE.match(name))


def fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _sync_and_hash(path: Path) -> tuple[int, str]:
    """fsync `path` and return its size and sha256 (one read, from the page cache)."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            digest.update(chunk)
            size += len(chunk)
        os.fsync(f.fileno())
    return size, digest.hexdigest()


@dataclass(frozen=True)
class WrittenFile:
    path: Path
    size: int
    sha256: str


def atomic_write(
    dest: Path,
    write: Callable[[Path], None],
    check_dest: Callable[[Path], None] | None = None,
) -> WrittenFile:
    """Run `write(temp)`, fsync, then rename onto `dest`; on any failure remove the temp.

    `check_dest` runs just before the rename (e.g. 'dest is not an input') and may raise.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_path_for(dest)
    try:
        write(temp)
        size, sha = _sync_and_hash(temp)
        if check_dest is not None:
            check_dest(dest)
        os.replace(temp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    fsync_dir(dest.parent)
    return WrittenFile(dest, size, sha)


class _SourceChanged(Exception):
    """atomic_copy's source is no longer the file the caller meant."""


def atomic_copy(
    source: Path,
    dest: Path,
    still_same: Callable[[], bool] | None = None,
    check_dest: Callable[[Path], None] | None = None,
) -> WrittenFile | None:
    """Copy `source` onto `dest` like atomic_write; None, with `dest` untouched, when
    `still_same()` says after the copy that the source changed (the copy may not match)."""

    def copy(temp: Path) -> None:
        shutil.copyfile(source, temp)
        if still_same is not None and not still_same():
            raise _SourceChanged

    try:
        return atomic_write(dest, copy, check_dest)
    except _SourceChanged:
        return None


def existing_file(path: Path) -> WrittenFile:
    """Size and sha256 of a file already in place (a finished output that is kept)."""
    size, sha = _sync_and_hash(path)
    return WrittenFile(path, size, sha)


def atomic_write_bytes(dest: Path, data: bytes) -> WrittenFile:
    """Atomic write of a small blob (reports, compacted journals)."""
    return atomic_write(dest, lambda temp: temp.write_bytes(data))


def clean_stale_temps(root: Path) -> list[Path]:
    """Remove temp files a killed run left under `root` (caller holds the OUT lock)."""
    removed: list[Path] = []
    if not root.is_dir():
        return removed
    for folder, _dirs, files in os.walk(root):
        for name in files:
            if is_temp_name(name):
                path = Path(folder) / name
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed.append(path)
    return removed


def input_probe(path: Path, size: int) -> str:
    """sha256 of the first and last MiB (and the size): cheap change detection for resume."""
    digest = hashlib.sha256(str(size).encode())
    with open(path, "rb") as f:
        digest.update(f.read(PROBE_BYTES))
        if size > PROBE_BYTES:
            f.seek(max(PROBE_BYTES, size - PROBE_BYTES))
            digest.update(f.read(PROBE_BYTES))
    return digest.hexdigest()[:32]


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and everything it was raised from (a wrapper may hide the OSError)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def is_fatal_write_error(exc: BaseException) -> bool:
    """True for 'no space left', 'quota exceeded' and 'read-only file system' errors.

    Every later write would fail the same way, so the batch stops instead of failing
    thousands of files one by one.
    """
    for e in exception_chain(exc):
        if isinstance(e, OSError) and e.errno in FATAL_WRITE_ERRNOS:
            return True
        text = str(e).lower()
        if "no space left on device" in text or "disk quota exceeded" in text:
            return True
    return False


def describe_os_error(exc: BaseException) -> str:
    """A short human reason: 'disk full (no space left on device)', 'permission denied'..."""
    for e in exception_chain(exc):
        if isinstance(e, OSError) and e.errno is not None:
            if e.errno == errno.ENOSPC:
                return "disk full (no space left on device)"
            if e.errno == errno.EDQUOT:
                return "disk quota exceeded"
            if e.errno == errno.EROFS:
                return "output file system is read-only"
            reason = e.strerror or os.strerror(e.errno)
            return f"{reason}: {e.filename}" if e.filename else reason
    if is_fatal_write_error(exc):
        return "disk full (no space left on device)"
    return f"{type(exc).__name__}: {exc}"


class OutLock:
    """An exclusive lock on OUT/.abpn/lock so two runs never share a journal or temp files."""

    def __init__(self, lock_path: Path) -> None:
        self.path = lock_path
        self._fd: int | None = None

    def acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not on POSIX: no advisory locks
            self._fd = fd
            return True
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None
