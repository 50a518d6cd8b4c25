"""A durable append-only spool of landing files: what the service acknowledges is on disk before it answers.

The service appends records (captured interactions, the prediction log) to an *open* file in a landing
folder and fsyncs before returning; ingestion only ever reads *closed* files. A file is open while its
name starts with a dot (`.spool-<stamp>-<pid>-<n>.<ext>.open`, which the landing loader skips) and is
closed by an atomic rename to `spool-<stamp>-<pid>-<n>.<ext>` once it is large or old enough
(`max_bytes`, `max_seconds`), or when the service stops. A file left open by a process that died
(SIGKILL, power cut) is closed by `close_orphans`, which the next service start and every ingestion
call, so acknowledged records always reach the warehouse. Whether a writer is gone is decided by its pid,
so services writing to one landing folder must run on one host (or each get a folder of its own).

Concurrent appends share fsyncs (group commit): each writer appends under a lock, then the first writer
to take the sync lock fsyncs everything written so far, and later writers whose bytes it covered return
without a second fsync.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path

OPEN_PREFIX = ".spool-"
OPEN_SUFFIX = ".open"


def _fsync_dir(directory: Path) -> None:
    """Make a rename or a new file in `directory` itself durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def closed_name(open_path: Path) -> Path:
    """The name a spool file gets when it is closed (what ingestion sees)."""
    return open_path.with_name(open_path.name[1 : -len(OPEN_SUFFIX)])


def _owner_alive(open_path: Path) -> bool:
    """Whether the process named in an open file's name still runs on this host."""
    try:
        pid = int(open_path.name.split("-")[2])
    except (IndexError, ValueError):
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def close_orphans(directory: Path) -> list[Path]:
    """Close open spool files whose writer is gone, so what it acknowledged gets ingested; returns them.

    An empty orphan (a header and no records, or nothing at all) is removed instead."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    closed = []
    for path in sorted(directory.glob(f"{OPEN_PREFIX}*{OPEN_SUFFIX}")):
        if _owner_alive(path):
            continue
        with contextlib.suppress(FileNotFoundError):
            if path.read_bytes().count(b"\n") <= _header_lines(path):
                path.unlink()
                continue
            path.rename(closed_name(path))
            closed.append(closed_name(path))
    if closed:
        _fsync_dir(directory)
    return closed


def _header_lines(path: Path) -> int:
    """CSV spools start with one header line; JSON-lines spools have none."""
    return 1 if path.name.endswith(".csv" + OPEN_SUFFIX) else 0


class Spool:
    """Appends records to rotating files in `directory`; `append` returns once the bytes are fsync'd."""

    def __init__(
        self,
        directory: Path,
        extension: str,
        header: bytes = b"",
        max_bytes: int = 8 * 1024 * 1024,
        max_seconds: float = 60.0,
    ):
        self.directory = Path(directory)
        self.extension = extension
        self.header = header
        self.max_bytes = max_bytes
        self.max_seconds = max_seconds
        self._write_lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._fd: int | None = None
        self._path: Path | None = None
        self._opened_at = 0.0
        self._size = 0
        self._written = 0  # bytes appended since start, across files
        self._synced = 0  # of those, how many are known durable
        self._sequence = 0
        self.directory.mkdir(parents=True, exist_ok=True)
        close_orphans(self.directory)

    def _open(self) -> None:
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        self._sequence += 1
        name = f"{OPEN_PREFIX}{stamp}-{os.getpid()}-{self._sequence:06d}.{self.extension}{OPEN_SUFFIX}"
        self._path = self.directory / name
        self._fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        self._opened_at = time.monotonic()
        self._size = 0
        if self.header:
            os.write(self._fd, self.header)
            self._size = len(self.header)
        _fsync_dir(self.directory)

    def _close_locked(self) -> Path | None:
        """Sync, close and rename the open file (caller holds both locks)."""
        if self._fd is None:
            return None
        os.fsync(self._fd)
        os.close(self._fd)
        target = closed_name(self._path)
        self._path.rename(target)
        _fsync_dir(self.directory)
        self._fd = self._path = None
        self._synced = self._written
        return target

    def append(self, data: bytes) -> None:
        """Write `data` (whole records, each ending in a newline) durably; rotates before a full file."""
        if not data:
            return
        with self._write_lock:
            full = self._size + len(data) > self.max_bytes and self._size > len(self.header)
            if self._fd is not None and (full or time.monotonic() - self._opened_at >= self.max_seconds):
                with self._sync_lock:
                    self._close_locked()
            if self._fd is None:
                self._open()
            os.write(self._fd, data)
            self._size += len(data)
            self._written += len(data)
            mine = self._written
        with self._sync_lock:
            if self._synced >= mine:
                return  # another writer's fsync (or a rotation) covered these bytes
            # No rotation can run while the sync lock is held, so the open file still holds our bytes;
            # everything counted in _written was written before the count moved.
            covered, fd = self._written, self._fd
            os.fdatasync(fd)
            self._synced = max(self._synced, covered)

    def rotate_if_old(self) -> Path | None:
        """Close the open file when it is older than max_seconds (called by a timer, so idle files land)."""
        with self._write_lock, self._sync_lock:
            if self._fd is not None and time.monotonic() - self._opened_at >= self.max_seconds:
                return self._close_locked()
        return None

    def close(self) -> Path | None:
        with self._write_lock, self._sync_lock:
            return self._close_locked()
