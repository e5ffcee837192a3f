"""The write-ahead log: every batch is appended here (and fsync'd, by policy) before it is acknowledged.

Layout: `wal/<first LSN, 20 digits>.wal` files, each a sequence of records
```
record = u32 body length | u32 CRC32(body) | body
body   = u64 LSN | u8 kind | u32 header length | header (UTF-8 JSON) | blob (e.g. float32 vectors)
```
LSNs (log sequence numbers) are consecutive from 1. The manifest records `applied_lsn`, the last LSN whose
effects are in the persisted segments; recovery replays the records after it, so replay is idempotent: replaying
the same log against the same checkpoint always rebuilds the same state.

Recovery reads the files in order and stops at the first record that is incomplete, fails its CRC or breaks the
LSN sequence. In the last file that is a torn tail (the process died mid-append): it is truncated away, and the
batch it held was never acknowledged. In an earlier file it is corruption of acknowledged data: `CorruptLogError`.

fsync policies:
- `always`: fsync before `append` returns (an acknowledged batch survives power loss);
- `interval`: fsync at most every `interval_s` seconds, by the appender or a flusher thread (a crash of the
  machine may lose the last interval; a crash of the process loses nothing, the OS has the bytes);
- `never`: leave it to the OS (benchmarks, bulk loads that can be redone).

At a checkpoint the current file is closed and a new one started; files whose records are all at or below the
checkpoint LSN are deleted.
"""
from __future__ import annotations

import json
import os
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import CollectionError, CorruptLogError

FSYNC_POLICIES = ("always", "interval", "never")
KINDS = {"upsert": 1, "delete": 2}
_KIND_NAMES = {v: k for k, v in KINDS.items()}
_FRAME = struct.Struct("<II")  # body length, crc32
_BODY = struct.Struct("<QBI")  # lsn, kind, header length
SUFFIX = ".wal"
MAX_RECORD_BYTES = 1 << 30  # a longer length field can only be garbage


@dataclass(frozen=True)
class Record:
    lsn: int
    kind: str
    header: dict
    blob: bytes


def fsync_directory(directory: Path) -> None:
    """Make a rename or a new file in `directory` durable (POSIX needs the directory itself fsync'd)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def encode_record(lsn: int, kind: str, header: dict, blob: bytes = b"") -> bytes:
    head = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    body = _BODY.pack(lsn, KINDS[kind], len(head)) + head + blob
    return _FRAME.pack(len(body), zlib.crc32(body)) + body


def _decode_records(data: bytes) -> tuple[list[Record], int]:
    """Records parsed from the start of `data`, and the offset where the valid prefix ends."""
    out, offset = [], 0
    while offset + _FRAME.size <= len(data):
        length, crc = _FRAME.unpack_from(data, offset)
        start = offset + _FRAME.size
        if length < _BODY.size or length > MAX_RECORD_BYTES or start + length > len(data):
            break
        body = data[start:start + length]
        if zlib.crc32(body) != crc:
            break
        lsn, kind, head_len = _BODY.unpack_from(body)
        if kind not in _KIND_NAMES or _BODY.size + head_len > length:
            break
        try:
            header = json.loads(body[_BODY.size:_BODY.size + head_len])
        except ValueError:
            break
        out.append(Record(lsn, _KIND_NAMES[kind], header, bytes(body[_BODY.size + head_len:])))
        offset = start + length
    return out, offset


def _log_files(directory: Path) -> list[Path]:
    return sorted(directory.glob(f"*{SUFFIX}"))


def _first_lsn(path: Path) -> int:
    return int(path.name[:-len(SUFFIX)])


class WriteAheadLog:
    """Append-only log of one collection. Open it with `WriteAheadLog.open`, which also recovers it."""

    def __init__(self, directory: Path, fsync: str = "always", interval_s: float = 1.0):
        if fsync not in FSYNC_POLICIES:
            raise CollectionError(f"unknown fsync policy {fsync!r}; valid policies: {', '.join(FSYNC_POLICIES)}")
        if interval_s <= 0:
            raise CollectionError(f"fsync interval must be positive, got {interval_s}")
        self.directory = Path(directory)
        self.fsync_policy = fsync
        self.interval_s = float(interval_s)
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._path: Path | None = None
        self._bytes = 0
        self.last_lsn = 0  # last LSN written
        self.durable_lsn = 0  # last LSN known to be on stable storage (fsync'd)
        self._last_sync = time.monotonic()
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None

    # ------------------------------------------------------------------------------------------ recovery
    @classmethod
    def open(cls, directory: Path, fsync: str = "always", interval_s: float = 1.0, after_lsn: int = 0
             ) -> tuple["WriteAheadLog", list[Record]]:
        """The log in `directory` (created if missing) ready for appends, and the records after `after_lsn`
        to replay. A torn tail in the last file is truncated; damage anywhere else raises CorruptLogError."""
        log = cls(directory, fsync, interval_s)
        log.directory.mkdir(parents=True, exist_ok=True)
        records: list[Record] = []
        files = _log_files(log.directory)
        expected = None
        for i, path in enumerate(files):
            data = path.read_bytes()
            found, valid_end = _decode_records(data)
            if expected is None and found:
                expected = found[0].lsn
            good = []
            for rec in found:
                if rec.lsn != expected:
                    break
                good.append(rec)
                expected += 1
            if len(good) < len(found):  # a sequence break: everything from there on is invalid
                valid_end = _offset_after(data, len(good))
            if valid_end < len(data):
                if i != len(files) - 1:
                    raise CorruptLogError(
                        f"write-ahead log file {path} is damaged at byte {valid_end} of {len(data)} and is not "
                        f"the last file: acknowledged writes after LSN {expected - 1 if expected else 0} are lost; "
                        f"restore the collection from a backup or remove the files after {path.name} to accept "
                        f"the loss")
                with open(path, "r+b") as f:  # a torn tail from a crash mid-append: never acknowledged
                    f.truncate(valid_end)
                    f.flush()
                    os.fsync(f.fileno())
            records.extend(r for r in good if r.lsn > after_lsn)
            if good:
                log.last_lsn = good[-1].lsn
        if records and records[0].lsn > after_lsn + 1:
            raise CorruptLogError(
                f"write-ahead log in {log.directory} starts at LSN {records[0].lsn} but the checkpoint is at LSN "
                f"{after_lsn}: records {after_lsn + 1}..{records[0].lsn - 1} are missing; restore from a backup")
        log.last_lsn = max(log.last_lsn, after_lsn)
        log.durable_lsn = log.last_lsn
        if files and _first_lsn(files[-1]) > log.last_lsn:  # an empty last file: reuse it
            log._open_file(files[-1])
        else:
            log._open_file(log.directory / f"{log.last_lsn + 1:020d}{SUFFIX}")
        if log.fsync_policy == "interval":
            log._flusher = threading.Thread(target=log._flush_loop, name="wal-flusher", daemon=True)
            log._flusher.start()
        return log, records

    def _open_file(self, path: Path) -> None:
        is_new = not path.exists()
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._path = path
        self._bytes = os.fstat(self._fd).st_size
        if is_new and self.fsync_policy != "never":
            fsync_directory(self.directory)

    # ------------------------------------------------------------------------------------------ appends
    def append(self, kind: str, header: dict, blob: bytes = b"") -> int:
        """Write one record and return its LSN; with fsync policy `always` it is on disk when this returns."""
        with self._lock:
            if self._fd is None:
                raise CollectionError("the write-ahead log is closed")
            lsn = self.last_lsn + 1
            frame = encode_record(lsn, kind, header, blob)
            view = memoryview(frame)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
            self._bytes += len(frame)
            self.last_lsn = lsn
            if self.fsync_policy == "always" or (
                    self.fsync_policy == "interval" and time.monotonic() - self._last_sync >= self.interval_s):
                self._sync_locked()
            return lsn

    def sync(self) -> None:
        """fsync everything written so far."""
        with self._lock:
            if self._fd is not None:
                self._sync_locked()

    def _sync_locked(self) -> None:
        if self.durable_lsn < self.last_lsn:
            os.fsync(self._fd)
        self.durable_lsn = self.last_lsn
        self._last_sync = time.monotonic()

    def _flush_loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sync()

    # ------------------------------------------------------------------------------------------ checkpoints
    def checkpoint(self, applied_lsn: int) -> None:
        """Records up to `applied_lsn` are persisted elsewhere: start a new file and delete the files that hold
        only such records."""
        with self._lock:
            if self._fd is None:
                return
            if self._bytes:
                self._sync_locked()
                os.close(self._fd)
                self._open_file(self.directory / f"{self.last_lsn + 1:020d}{SUFFIX}")
            files = _log_files(self.directory)
            removed = False
            for path, nxt in zip(files, files[1:]):
                if _first_lsn(nxt) - 1 <= applied_lsn:
                    path.unlink(missing_ok=True)
                    removed = True
            if removed:
                fsync_directory(self.directory)

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in _log_files(self.directory))

    def close(self) -> None:
        self._stop.set()
        if self._flusher is not None:
            self._flusher.join()
        with self._lock:
            if self._fd is not None:
                if self.fsync_policy != "never":
                    self._sync_locked()
                os.close(self._fd)
                self._fd = None


def _offset_after(data: bytes, n_records: int) -> int:
    offset = 0
    for _ in range(n_records):
        length, _ = _FRAME.unpack_from(data, offset)
        offset += _FRAME.size + length
    return offset


def read_records(directory: Path, after_lsn: int = 0) -> Iterator[Record]:
    """Records after `after_lsn` in a log directory, read-only (stops at the first invalid record)."""
    expected = None
    for path in _log_files(Path(directory)):
        found, _ = _decode_records(path.read_bytes())
        for rec in found:
            if expected is not None and rec.lsn != expected:
                return
            expected = rec.lsn + 1
            if rec.lsn > after_lsn:
                yield rec
