"""WARC and WET files through warcio.

Documents are WET `conversion` records (text as is) and successful (2xx) HTML `response`
records (main text extracted with trafilatura). Everything else (warcinfo, request, metadata,
resource, redirects, images, scripts) is not a document and is skipped without being counted,
as in Common Crawl-style pipelines. A truncated or corrupt archive keeps the records before
the damage and reports the rest as one `warc_error` reject.
"""

from __future__ import annotations

import codecs
import os
from collections.abc import Callable, Iterator

from babelmill.pipeline.io.readers.batching import BatchBuilder, utf8_error_detail
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
    with open(unit.path, "rb") as fh:
        it = ArchiveIterator(fh)
        records = iter(it)
        broken: tuple[int, BaseException] | None = None
        while True:
            at = it.offset  # where the next record starts
            try:
                rec = next(records, None)
            except Exception as e:  # noqa: BLE001 - warcio signals damage with many types (AttributeError on a cut header)
                broken = (at, e)
                break
            if rec is None:
                break
            try:
                _record(b, it, rec, opts, extract)
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
        elif file_size > it.offset and not _only_whitespace(fh, it.offset):
            # warcio stops quietly at a record cut inside its headers (uncompressed files).
            b.reject(
                "warc_error",
                f"{file_size - it.offset} trailing bytes do not form a complete record (truncated file?)",
                it.offset,
            )
    if b.pending():
        yield b.flush()


def _record(b: BatchBuilder, it, rec, opts: ReadOptions, extract) -> None:
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
        offset = it.get_record_offset()  # (warcio reads the rest of the record to find it)
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
