"""WARC and WET files through warcio. WET `conversion` records are text already; WARC
`response` records with HTML go through trafilatura's main-text extraction. Other record
types (warcinfo, request, metadata) are not documents and are not counted."""

from __future__ import annotations

from collections.abc import Iterator

from babelmill.pipeline.io.readers.batching import BatchBuilder
from babelmill.pipeline.io.readers.options import ReadOptions, WorkUnit


def _extract_html(html: str) -> str | None:
    import trafilatura

    return trafilatura.extract(html, include_comments=False, include_tables=True, favor_recall=True)


def read_warc(unit: WorkUnit, opts: ReadOptions) -> Iterator:
    from warcio.archiveiterator import ArchiveIterator
    from warcio.exceptions import ArchiveLoadFailed

    b = BatchBuilder(unit, opts)
    offset = 0
    with open(unit.path, "rb") as fh:
        it = ArchiveIterator(fh)
        try:
            for rec in it:
                rtype = rec.rec_type
                if rtype not in ("response", "conversion", "resource"):
                    continue
                payload = rec.content_stream().read()
                offset = it.get_record_offset()  # (warcio: only after the payload was read)
                headers = rec.rec_headers
                doc_id = headers.get_header("WARC-Record-ID") or f"{unit.source}#o{offset}"
                meta = {"url": headers.get_header("WARC-Target-URI"), "date": headers.get_header("WARC-Date")}
                if len(payload) > opts.max_doc_bytes * 4:
                    b.reject("doc_too_large", f"record payload {len(payload)} bytes", offset, raw=payload[:1000], doc_id=doc_id, line=False)
                    continue
                if rtype == "conversion" or not _is_html(rec):
                    try:
                        text = payload.decode("utf-8")
                    except UnicodeDecodeError as e:
                        b.reject("bad_utf8", f"invalid UTF-8 at byte {e.start}", offset, raw=payload, doc_id=doc_id, line=False)
                        continue
                else:
                    html = payload.decode(_charset(rec) or "utf-8", errors="replace")
                    try:
                        text = _extract_html(html)
                    except Exception as e:  # noqa: BLE001 - extractor failures are data, not bugs
                        b.reject("html_extract_failed", f"{type(e).__name__}: {e}", offset, raw=payload, doc_id=doc_id, line=False)
                        continue
                    if not text:
                        b.reject("no_text_extracted", "the extractor found no main text", offset, raw=payload, doc_id=doc_id, line=False)
                        continue
                b.add(doc_id, text, offset, meta, line=False)
                if b.full():
                    yield b.flush()
        except (ArchiveLoadFailed, OSError, EOFError, ValueError) as e:
            from babelmill.pipeline.io.readers.options import InputError

            if isinstance(e, InputError):
                raise
            b.reject("warc_error", f"archive unreadable after offset {offset}: {type(e).__name__}: {e}", offset, line=False)
    yield b.flush()


def _is_html(rec) -> bool:
    ctype = (rec.http_headers.get_header("Content-Type") if rec.http_headers else None) or rec.rec_headers.get_header("Content-Type") or ""
    return "html" in ctype.lower()


def _charset(rec) -> str | None:
    ctype = (rec.http_headers.get_header("Content-Type") if rec.http_headers else "") or ""
    for part in ctype.split(";"):
        k, _, v = part.strip().partition("=")
        if k.lower() == "charset" and v:
            import codecs

            try:
                return codecs.lookup(v.strip("\"'")).name
            except LookupError:
                return None
    return None
