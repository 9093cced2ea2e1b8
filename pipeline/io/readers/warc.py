"""WARC and WET files through warcio.

Documents are WET `conversion` records (text as is) and successful (2xx) HTML `response`
records (main text extracted with trafilatura). Everything else (warcinfo, request, metadata,
resource, redirects, images, scripts) is not a document and is skipped without being counted,
as in Common Crawl-style pipelines. A truncated or corrupt archive keeps the records before
the damage and reports the rest as one `warc_error` reject.

A gzip WARC is one gzip member per record. warcio returns a record's content before it reaches
the member's CRC, and after a bad CRC goes on reading garbage (losing the next records too), so
a gzip archive is verified first (`scan_units`, one decompress-and-discard pass): each member
failing its CRC/length check is one `corrupt_compressed` reject (its record is not trusted),
and warcio reads the archive with those members cut out (offsets still name the real file).
"""

from __future__ import annotations

import codecs
import io
import os
import re
import zlib
from collections.abc import Callable, Iterator

from babelmill.pipeline.io.readers.batching import BatchBuilder, utf8_error_detail
from babelmill.pipeline.io.readers.compression import UnitEnd, scan_units
from babelmill.pipeline.io.readers.options import ReadOptions, WorkUnit

#: HTML payloads above this many times max_doc_bytes are not extracted (extraction time grows
#: with page size, and the text could hardly be small enough anyway).
HTML_CAP_FACTOR = 4

#: extra_fields names that map to WARC headers; any other name is looked up as a header.
HEADER_FIELDS = {"url": "WARC-Target-URI", "date": "WARC-Date", "warc_record_id": "WARC-Record-ID"}


def html_extractor(name: str) -> Callable[[str | bytes], str | None]:
    if name != "trafilatura":
        raise ValueError(f"unknown html_extractor {name!r}")
    import trafilatura

    def extract(html: str | bytes) -> str | None:
        # deduplicate=False: trafilatura's dedup cache is process-global, which would make a
        # page's text depend on which pages the same worker happened to see before.
        return trafilatura.extract(
            html, include_comments=False, include_tables=True, favor_precision=True, deduplicate=False
        )

    return extract


class _Broken(Exception):
    """warcio failed inside a record: the archive is unreadable from here."""


def read_warc(unit: WorkUnit, opts: ReadOptions) -> Iterator:
    from warcio.archiveiterator import ArchiveIterator

    b = BatchBuilder(unit, opts, tag="o")
    extract = html_extractor(opts.html_extractor)
    file_size = os.path.getsize(unit.path)
    bad = _bad_members(unit.path)
    for u in bad:
        _reject_member(b, unit.path, u)
    if b.full():
        yield b.flush()
    with open(unit.path, "rb") as raw_fh:
        fh = _Spliced(raw_fh, file_size, [(u.cstart, u.cend) for u in bad]) if bad else raw_fh
        real = fh.real if bad else (lambda v: v)
        it = ArchiveIterator(fh)
        records = iter(it)
        broken: tuple[int, BaseException] | None = None
        while True:
            at = real(it.offset)  # where the next record starts
            try:
                rec = next(records, None)
            except Exception as e:  # noqa: BLE001 - warcio signals damage with many types (AttributeError on a cut header)
                broken = (at, e)
                break
            if rec is None:
                break
            try:
                _record(b, it, rec, opts, extract, real)
            except _Broken as e:
                broken = (at, e.__cause__)
                break
            if b.full():
                yield b.flush()
        if broken is not None:
            at, e = broken
            b.reject(
                "warc_error",
                f"archive unreadable from here: {type(e).__name__}: {str(e)[:300]}; "
                "the rest of the file is skipped",
                at,
            )
        elif real(it.offset) < file_size and not _only_whitespace(fh, it.offset):
            # warcio stops quietly at a record cut inside its headers (uncompressed files).
            b.reject(
                "warc_error",
                f"{file_size - real(it.offset)} trailing bytes do not form a complete record (truncated file?)",
                real(it.offset),
            )
    if b.pending():
        yield b.flush()


def _record(b: BatchBuilder, it, rec, opts: ReadOptions, extract, real) -> None:
    rtype = rec.rec_type
    if rtype == "response":
        http = rec.http_headers
        if http is None or not (http.get_statuscode() or "").startswith("2"):
            return
        ctype = (
            http.get_header("Content-Type")
            or rec.rec_headers.get_header("WARC-Identified-Payload-Type")
            or ""
        ).lower()
        if ctype and "html" not in ctype:
            return
        cap = HTML_CAP_FACTOR * opts.max_doc_bytes
    elif rtype == "conversion":
        ctype, cap = "", opts.max_doc_bytes
    else:
        return
    try:
        payload = rec.content_stream().read(cap + 1)
        offset = real(it.get_record_offset())  # (warcio reads the rest of the record to find it)
    except Exception as e:  # noqa: BLE001 - damage inside the record (bad gzip member, chunking...)
        raise _Broken from e
    oversized = len(payload) > cap
    headers = rec.rec_headers
    doc_id = headers.get_header("WARC-Record-ID") or b.derived_id(offset)
    if getattr(rec.raw_stream, "limit", 0) > 0:  # fewer bytes than Content-Length: cut file
        b.reject(
            "warc_error",
            f"record truncated: {rec.raw_stream.limit} of {rec.length} bytes missing",
            offset,
            raw=payload,
            doc_id=doc_id,
        )
        return
    if rtype == "response" and not ctype and not _looks_like_html(payload):
        return
    if oversized:
        what = "HTML payload" if rtype == "response" else "text"
        b.reject(
            "doc_too_large",
            f"{what} is > {cap} bytes (record length {rec.length})",
            offset,
            raw=payload[:4000],
            doc_id=doc_id,
        )
        return
    extras = [_header(headers, f) for f in b.extra] if b.extra else None
    if rtype == "conversion":
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError as e:
            b.reject(
                "bad_utf8",
                utf8_error_detail(payload, e),
                offset,
                raw=payload,
                doc_id=doc_id,
            )
            return
    else:
        html = _decode_declared(payload, ctype)
        try:
            text = extract(html)
        except Exception as e:  # noqa: BLE001 - an extractor crash on one page is data, not a bug
            b.reject(
                "html_extract_failed",
                f"{type(e).__name__}: {str(e)[:300]}",
                offset,
                raw=payload,
                doc_id=doc_id,
            )
            return
        if not text or text.isspace():
            b.reject(
                "no_text_extracted",
                f"the extractor found no main text in {len(payload)} bytes of HTML",
                offset,
                raw=payload,
                doc_id=doc_id,
            )
            return
    b.add(doc_id, text, offset, extras, raw=payload)


def _header(headers, field: str) -> str | None:
    return headers.get_header(HEADER_FIELDS.get(field, field))


def _decode_declared(payload: bytes, ctype: str) -> str | bytes:
    """Decode with the charset the server declared; otherwise (or if it lies) hand the bytes
    to the extractor, which sniffs <meta charset> and guesses."""
    for part in ctype.split(";")[1:]:
        k, _, v = part.strip().partition("=")
        if k == "charset" and v:
            try:
                return payload.decode(codecs.lookup(v.strip("\"' ")).name)
            except (LookupError, UnicodeDecodeError):
                break
    return payload


def _looks_like_html(payload: bytes) -> bool:
    head = payload[:1024].lstrip().lower()
    return head.startswith(b"<!doctype html") or b"<html" in head


def _only_whitespace(fh, offset: int) -> bool:
    fh.seek(offset)
    while chunk := fh.read(1 << 16):
        if chunk.strip():
            return False
    return True


# -- gzip members failing their check --------------------------------------------------------
def _bad_members(path: str) -> list[UnitEnd]:
    with open(path, "rb") as f:
        if f.read(2) != b"\x1f\x8b":
            return []
    # gzip whatever the name says: warcio sniffs gzip by its magic number too
    return [u for u in scan_units(path, "gzip") if u.status == "bad_check"]


_HEADER = re.compile(rb"^(WARC-Type|WARC-Record-ID|WARC-Target-URI):[ \t]*(.*?)\r?$", re.M | re.I)


def _reject_member(b: BatchBuilder, path: str, u: UnitEnd) -> None:
    """One reject for a member failing its check, named by its record's (untrusted) headers."""
    with open(path, "rb") as f:
        f.seek(u.cstart)
        comp = f.read(min(u.cend - u.cstart - 8, 1 << 16))  # without the trailer: no check raised
    try:
        head = zlib.decompressobj(31).decompress(comp, 1 << 16)
    except zlib.error:
        head = b""
    headers = {k.decode().lower(): v.decode("utf-8", "replace") for k, v in _HEADER.findall(head[:8192])}
    what = ", ".join(f"{k} {headers[k]}" for k in ("warc-type", "warc-target-uri") if k in headers)
    b.reject(
        "corrupt_compressed",
        f"gzip member ending at byte {u.cend} fails its {'CRC' if str(u.error).startswith('CRC') else 'length'} "
        f"check ({u.error}): its WARC record ({what or 'headers unreadable'}) is quarantined, not trusted",
        u.cstart,
        raw=head[:4000],
        doc_id=headers.get("warc-record-id") or None,
    )


class _Spliced(io.RawIOBase):
    """The file with some byte ranges cut out (seekable); `real(v)` maps a position back."""

    def __init__(self, fh, size: int, cuts: list[tuple[int, int]]):
        self._fh = fh
        self._segs: list[tuple[int, int, int]] = []  # (virtual start, real start, length)
        v = r = 0
        for a, z in sorted(cuts):
            if a > r:
                self._segs.append((v, r, a - r))
                v += a - r
            r = z
        if size > r:
            self._segs.append((v, r, size - r))
            v += size - r
        self._size = v
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._size}[whence]
        self._pos = max(0, base + pos)
        return self._pos

    def real(self, v: int) -> int:
        for vs, rs, n in self._segs:
            if vs <= v < vs + n:
                return rs + v - vs
        return self._segs[-1][1] + self._segs[-1][2] if self._segs else 0

    def readinto(self, buf) -> int:
        for vs, rs, n in self._segs:
            if vs <= self._pos < vs + n:
                k = min(len(buf), vs + n - self._pos)
                self._fh.seek(rs + self._pos - vs)
                data = self._fh.read(k)
                buf[: len(data)] = data
                self._pos += len(data)
                return len(data)
        return 0
