"""One writer at a time per store folder, across threads and processes.

Every write to a store (rows, index files, profiles) holds the folder's lock, so a process
never saves an index built from a view of the store that another process has changed since:
the lock is held from reading the state to writing the result.

Example:
    >>> import tempfile
    >>> lock = FolderLock(tempfile.mkdtemp())
    >>> with lock, lock:  # re-entrant within a thread
    ...     lock.path.name
    '.lock'
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

try:  # POSIX: an advisory lock on a file in the folder, released by the kernel on exit
    import fcntl
except ImportError:  # pragma: no cover - Windows: threads of one process only
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".lock"


class FolderLock:
    """A re-entrant lock: a thread lock inside the process, ``flock`` across processes.

    The operating system releases the file lock when a process dies, so a killed writer never
    leaves the store locked.
    """

    def __init__(self, folder: str | Path) -> None:
        self.path = Path(folder) / LOCK_NAME
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._fd: int | None = None

    def __enter__(self) -> FolderLock:
        self._thread_lock.acquire()
        try:
            if self._depth == 0 and fcntl is not None:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                except BaseException:
                    os.close(fd)
                    raise
                self._fd = fd
        except BaseException:
            self._thread_lock.release()
            raise
        self._depth += 1
        return self

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        if self._depth == 0 and self._fd is not None:
            fd, self._fd = self._fd, None
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        self._thread_lock.release()
