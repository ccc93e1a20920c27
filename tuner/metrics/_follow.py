"""Following a file that another process is still writing, resumable from a byte offset."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

DEFAULT_CHUNK_BYTES = 64 * 1024


class LogFollower:
    """Reads what was appended to ``path`` since the last read, in bounded chunks.

    The file may not exist yet (the trial has not started): reads then return ``b""``.
    ``offset`` is where the next read starts; pass a stored one to resume after a restart.
    Not thread-safe; close it (or use ``with``) to release the file.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        offset: int = 0,
        *,
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    ) -> None:
        if offset < 0 or chunk_bytes < 1:
            raise ValueError(f"offset {offset!r} / chunk_bytes {chunk_bytes!r} out of range")
        self.path = Path(path)
        self.chunk_bytes = chunk_bytes
        self._offset = offset
        self._fd: int | None = None

    @property
    def offset(self) -> int:
        return self._offset

    def read_new(self, max_bytes: int | None = None) -> bytes:
        """Up to ``max_bytes`` (default ``chunk_bytes``) new bytes; ``b""`` if none yet."""
        if self._fd is None:
            try:
                self._fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                return b""
        data = os.pread(self._fd, max_bytes or self.chunk_bytes, self._offset)
        self._offset += len(data)
        return data

    def chunks(self) -> Iterator[bytes]:
        """The new bytes up to the current end of the file, chunk by chunk."""
        while chunk := self.read_new():
            yield chunk

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> LogFollower:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
