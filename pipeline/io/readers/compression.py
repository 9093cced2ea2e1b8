"""Transparent .gz / .zst decompression that reports a broken stream instead of hiding it.

zstandard's own `stream_reader` returns a clean EOF for a file cut in the middle of a frame,
which would turn a truncated download into a silently shorter dataset; the frame-by-frame
reader below raises `TruncatedStream` instead (and handles concatenated frames).
"""

from __future__ import annotations

import gzip
import io
import zlib

GZIP_SUFFIXES = (".gz",)
ZSTD_SUFFIXES = (".zst", ".zstd")
_CHUNK = 64 * 1024


class TruncatedStream(EOFError):
    """The compressed stream ended in the middle of a frame/member."""


def is_compressed(path: str) -> bool:
    return path.lower().endswith(GZIP_SUFFIXES + ZSTD_SUFFIXES)


def corruption_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean "the compressed stream is broken from here on" (a plain OSError,
    e.g. a failing disk, is not one of them: it must fail the run, not quarantine the file)."""
    import zstandard

    return (EOFError, gzip.BadGzipFile, zlib.error, zstandard.ZstdError)


class _ZstdFrames(io.RawIOBase):
    def __init__(self, fh):
        import zstandard

        self._fh = fh
        self._dctx = zstandard.ZstdDecompressor()
        self._obj = None
        self._pending = b""
        self._buf = memoryview(b"")
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        while not self._buf:
            if self._done:
                return 0
            self._fill()
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n

    def _fill(self) -> None:
        data, self._pending = (self._pending or self._fh.read(_CHUNK)), b""
        if not data:
            if self._obj is not None and not self._obj.eof:
                raise TruncatedStream("zstd stream ends in the middle of a frame (truncated file?)")
            self._done = True
            return
        if self._obj is None or self._obj.eof:  # next (concatenated) frame
            self._obj = self._dctx.decompressobj()
        out = self._obj.decompress(data)
        if self._obj.eof:
            self._pending = self._obj.unused_data
        self._buf = memoryview(out)

    def close(self) -> None:
        if not self.closed:
            self._fh.close()
        super().close()


def open_binary(path: str) -> io.BufferedIOBase:
    """A binary, line-iterable reader over the decompressed content of `path`."""
    low = path.lower()
    if low.endswith(GZIP_SUFFIXES):
        return gzip.open(path, "rb")
    if low.endswith(ZSTD_SUFFIXES):
        return io.BufferedReader(_ZstdFrames(open(path, "rb")), buffer_size=1 << 20)  # noqa: SIM115
    return open(path, "rb", buffering=1 << 20)  # noqa: SIM115
