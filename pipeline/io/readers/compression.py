"""Decompression of .gz / .zst / .bz2 / .xz inputs that reports a broken or failing stream
instead of hiding it, and that can verify a file before anything of it is trusted.

Every codec is decoded here, unit by unit (a gzip *member*, a zstd *frame*, a bz2 or xz
*stream*; files may concatenate several), by `decode_units`, which never raises for bad data:
it yields the decompressed bytes and, after each unit, a `UnitEnd` saying where the unit lies
(compressed and decompressed byte ranges) and how it ended:

- "ok": complete, and its integrity check (gzip CRC-32 + ISIZE, zstd content checksum when
  the frame has one, bz2 block/stream CRCs, xz check) passed;
- "bad_check": gzip only: the member's deflate data is complete but its CRC-32 or length does
  not match. The member's end is known exactly (gzip members are parsed here, not by the
  `gzip` module), so decoding goes on with the next member;
- "corrupt": the decompressor rejected the data (or a zstd/bz2/xz check failed: those
  libraries report it as an error from which the unit end cannot be found): nothing after it
  can be decoded;
- "truncated": the file ends inside the unit (a cut download): what came before is intact
  data as far as anyone can tell, and nothing follows.

Why decode gzip by hand: the stdlib `gzip` module checks a member's CRC only at its end, after
it has already returned the member's data, and cannot go on past a bad member; zstandard's own
`stream_reader` returns a clean EOF for a file cut in the middle of a frame. Both would turn
damage into silently wrong or shorter data.

A reader that must not emit data of a unit before the unit is verified scans the file first
(`scan_units`, decompress-and-discard, about as fast as one decompression: see the JSONL
reader) and then decodes it again, knowing which decompressed ranges are not to be trusted.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

GZIP_SUFFIXES = (".gz",)
ZSTD_SUFFIXES = (".zst", ".zstd")
BZ2_SUFFIXES = (".bz2",)
XZ_SUFFIXES = (".xz",)
COMPRESSED_SUFFIXES = GZIP_SUFFIXES + ZSTD_SUFFIXES + BZ2_SUFFIXES + XZ_SUFFIXES
_CHUNK = 256 * 1024
_OUT = 1 << 20  # most bytes one decompress call may return (bounded memory on compression bombs)

UNIT_NAME = {"gzip": "member", "zstd": "frame", "bz2": "stream", "xz": "stream"}


class TruncatedStream(EOFError):
    """The compressed stream ended in the middle of a frame/member."""


class CorruptStream(ValueError):
    """The decompressor rejected the data (or an integrity check failed)."""


def codec_of(path: str) -> str | None:
    low = path.lower()
    for suffixes, codec in (
        (GZIP_SUFFIXES, "gzip"),
        (ZSTD_SUFFIXES, "zstd"),
        (BZ2_SUFFIXES, "bz2"),
        (XZ_SUFFIXES, "xz"),
    ):
        if low.endswith(suffixes):
            return codec
    return None


def is_compressed(path: str) -> bool:
    return codec_of(path) is not None


def corruption_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean "the compressed stream is broken from here on" (a plain OSError,
    e.g. a failing disk, is not one of them: it must fail the run, not quarantine the file)."""
    return (EOFError, CorruptStream)


@dataclass
class UnitEnd:
    """One gzip member / zstd frame / bz2 or xz stream, as decoded (see the module doc)."""

    codec: str
    index: int
    cstart: int  # compressed byte offset where the unit starts
    cend: int | None  # compressed offset just past its end (None: not found)
    dstart: int  # decompressed offset of its first byte
    dend: int  # decompressed offset past the last byte it produced
    status: str  # "ok" | "bad_check" | "corrupt" | "truncated"
    error: BaseException | None = None

    @property
    def name(self) -> str:
        return UNIT_NAME[self.codec]

    @property
    def trusted(self) -> bool:
        """Data of this unit may be used ("truncated": intact up to the cut, nothing to check)."""
        return self.status in ("ok", "truncated")


class _In:
    """Compressed input with a position, and push-back of bytes a decompressor did not use."""

    def __init__(self, fh):
        self.fh = fh
        self.buf = b""
        self.pos = 0  # file offset of the next byte `take` returns

    def take(self, n: int = _CHUNK) -> bytes:
        if self.buf:
            data, self.buf = self.buf[:n], self.buf[n:]
        else:
            data = self.fh.read(n)
        self.pos += len(data)
        return data

    def take_exact(self, n: int) -> bytes:
        out = b""
        while len(out) < n and (more := self.take(n - len(out))):
            out += more
        return out

    def push(self, data: bytes) -> None:
        if data:
            self.buf = data + self.buf
            self.pos -= len(data)

    def skip_zeros(self) -> None:
        """Skip NUL padding (allowed after gzip members and between xz streams)."""
        while True:
            data = self.take()
            if not data:
                return
            rest = data.lstrip(b"\x00")
            if rest:
                self.push(rest)
                return


def decode_units(fh, codec: str) -> Iterator[bytes | UnitEnd]:
    """Decompressed chunks of a binary file object, each unit followed by its `UnitEnd`.
    Bad data never raises: it ends the unit with status "bad_check"/"corrupt"/"truncated"."""
    inp = _In(fh)
    dpos = 0
    index = 0
    while True:
        if index and codec in ("gzip", "xz"):
            inp.skip_zeros()
        head = inp.take(1)
        if not head:
            return
        inp.push(head)
        start, dstart = inp.pos, dpos
        end: list = []  # [status, error] set by the unit decoder
        unit = _UNIT_DECODERS[codec](inp, end)
        for chunk in unit:
            dpos += len(chunk)
            yield chunk
        status, error = end
        yield UnitEnd(
            codec,
            index,
            start,
            inp.pos if status in ("ok", "bad_check") else None,
            dstart,
            dpos,
            status,
            error,
        )
        if status not in ("ok", "bad_check"):
            return
        index += 1


# -- gzip: header parsed here, raw deflate, CRC-32 and ISIZE checked here --------------------
_FTEXT, _FHCRC, _FEXTRA, _FNAME, _FCOMMENT = 1, 2, 4, 8, 16


def _gzip_header(inp: _In) -> str | None:
    """Consume one member header; None if fine, else why not ("truncated" or a message)."""
    fixed = inp.take_exact(10)
    if len(fixed) < 10:
        return (
            "truncated" if fixed[:2] == b"\x1f\x8b"[: len(fixed)] else "not a gzip member (bad magic number)"
        )
    if fixed[:2] != b"\x1f\x8b":
        return f"not a gzip member (bad magic number {fixed[:2]!r})"
    if fixed[2] != 8:
        return f"unknown gzip compression method {fixed[2]}"
    flags = fixed[3]
    if flags & _FEXTRA:
        n = inp.take_exact(2)
        if len(n) < 2:
            return "truncated"
        xlen = struct.unpack("<H", n)[0]
        if len(inp.take_exact(xlen)) < xlen:
            return "truncated"
    for flag in (_FNAME, _FCOMMENT):
        if flags & flag:
            while True:
                data = inp.take()
                if not data:
                    return "truncated"
                i = data.find(b"\x00")
                if i >= 0:
                    inp.push(data[i + 1 :])
                    break
    if flags & _FHCRC and len(inp.take_exact(2)) < 2:
        return "truncated"
    return None


def _gzip_member(inp: _In, end: list) -> Iterator[bytes]:
    problem = _gzip_header(inp)
    if problem == "truncated":
        end[:] = ["truncated", EOFError("Compressed file ended before the end-of-stream marker was reached")]
        return
    if problem is not None:
        end[:] = ["corrupt", CorruptStream(problem)]
        return
    d = zlib.decompressobj(-zlib.MAX_WBITS)
    crc = size = 0
    while not d.eof:
        data = d.unconsumed_tail or inp.take()
        if not data:
            end[:] = [
                "truncated",
                EOFError("Compressed file ended before the end-of-stream marker was reached"),
            ]
            return
        try:
            out = d.decompress(data, _OUT)
        except zlib.error as e:
            end[:] = ["corrupt", CorruptStream(f"zlib.error: {e}")]
            return
        if d.eof:
            inp.push(d.unused_data)
        if out:
            crc = zlib.crc32(out, crc)
            size += len(out)
            yield out
    trailer = inp.take_exact(8)
    if len(trailer) < 8:
        end[:] = ["truncated", EOFError("Compressed file ended before the end-of-stream marker was reached")]
        return
    want_crc, want_size = struct.unpack("<II", trailer)
    if want_crc != crc:
        end[:] = ["bad_check", CorruptStream(f"CRC-32 {crc:08x} != {want_crc:08x} stored in the member")]
    elif want_size != size & 0xFFFFFFFF:
        end[:] = ["bad_check", CorruptStream(f"length {size} != {want_size} stored in the member (mod 2^32)")]
    else:
        end[:] = ["ok", None]


# -- zstd, bz2, xz: the library checks; a failed check is an error like any other ------------
def _zstd_frame(inp: _In, end: list) -> Iterator[bytes]:
    import zstandard

    obj = zstandard.ZstdDecompressor().decompressobj()
    while not obj.eof:
        data = inp.take()
        if not data:
            end[:] = [
                "truncated",
                TruncatedStream("zstd stream ends in the middle of a frame (truncated file?)"),
            ]
            return
        try:
            out = obj.decompress(data)
        except zstandard.ZstdError as e:
            end[:] = ["corrupt", CorruptStream(f"ZstdError: {e}")]
            return
        if obj.eof:
            inp.push(obj.unused_data)
        if out:
            yield out
    end[:] = ["ok", None]


def _stdlib_stream(new, errors, what: str):
    def stream(inp: _In, end: list) -> Iterator[bytes]:
        d = new()
        while not d.eof:
            if d.needs_input:
                data = inp.take()
                if not data:
                    end[:] = [
                        "truncated",
                        EOFError("Compressed file ended before the end-of-stream marker was reached"),
                    ]
                    return
            else:
                data = b""
            try:
                out = d.decompress(data, _OUT)
            except errors as e:
                end[:] = ["corrupt", CorruptStream(f"{what}: {e}")]
                return
            if d.eof:
                inp.push(d.unused_data)
            if out:
                yield out
        end[:] = ["ok", None]

    return stream


def _bz2_new():
    import bz2

    return bz2.BZ2Decompressor()


def _xz_new():
    import lzma

    return lzma.LZMADecompressor()


def _xz_errors():
    import lzma

    return lzma.LZMAError


_UNIT_DECODERS = {
    "gzip": _gzip_member,
    "zstd": _zstd_frame,
    # bz2 reports a bad CRC or bad data as a bare OSError from the decompressor (a disk error
    # surfaces from fh.read, outside this try, so it is not mistaken for one).
    "bz2": _stdlib_stream(_bz2_new, (OSError, ValueError), "bz2"),
    "xz": _stdlib_stream(_xz_new, (_xz_errors(), ValueError), "xz"),
}


def scan_units(path: str, codec: str | None = None) -> list[UnitEnd]:
    """Decompress `path` once (as `codec`, default: from its name), discarding the data: where
    every unit lies and how it ended. Constant memory."""
    codec = codec or codec_of(path)
    if codec is None:
        raise ValueError(f"{path}: not a compressed file name")
    with open(path, "rb") as fh:
        return [u for u in decode_units(fh, codec) if type(u) is UnitEnd]


class _Decoded(io.RawIOBase):
    """Raw, readable view of `decode_units`; raises (EOFError / CorruptStream) after the data of
    a unit that ends the stream badly, so a line reader stops there. `units` lists the units
    decoded so far; a "bad_check" unit's data is returned like any other (its reader knows)."""

    def __init__(self, fh, codec: str):
        self._fh = fh
        self._it = decode_units(fh, codec)
        self._buf = memoryview(b"")
        self.units: list[UnitEnd] = []
        self._error: BaseException | None = None
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        while not self._buf:
            if self._error is not None:
                raise self._error
            if self._done:
                return 0
            item = next(self._it, None)
            if item is None:
                self._done = True
            elif type(item) is UnitEnd:
                self.units.append(item)
                if item.status in ("corrupt", "truncated"):
                    self._error = item.error
            else:
                self._buf = memoryview(item)
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n

    def close(self) -> None:
        if not self.closed:
            self._fh.close()
        super().close()


def open_binary(path: str) -> io.BufferedIOBase:
    """A binary, line-iterable reader over the decompressed content of `path` (a bad unit's
    data is returned; the stream raises where decoding cannot go on)."""
    codec = codec_of(path)
    if codec is None:
        return open(path, "rb", buffering=1 << 20)  # noqa: SIM115
    return io.BufferedReader(_Decoded(open(path, "rb"), codec), buffer_size=1 << 20)  # noqa: SIM115
