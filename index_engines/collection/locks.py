"""Locks of a collection: a readers-writer lock in memory and a single-writer lock on disk."""
from __future__ import annotations

import fcntl
import os
import threading
from contextlib import contextmanager
from pathlib import Path

from .errors import CollectionError

LOCK_FILE = ".lock"


class RWLock:
    """Many readers (searches) or one writer (a write batch, a segment swap); waiting writers go first, so a
    stream of searches cannot starve writes. Not reentrant."""

    def __init__(self):
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._waiting = 0

    @contextmanager
    def read(self):
        with self._cond:
            while self._writer or self._waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def write(self):
        with self._cond:
            self._waiting += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


class DirectoryLock:
    """An exclusive `flock` on `<collection>/.lock`: one open `Collection` per directory, across processes.
    The kernel releases it when the holder dies, so a crashed writer never blocks recovery."""

    def __init__(self, directory: Path):
        self.path = Path(directory) / LOCK_FILE
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            raise CollectionError(f"the collection at {directory} is already open (in this or another process); "
                                  f"close it there first — a collection has one writer") from None

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
