"""JSON Lines, plain or compressed (.gz, .zst), read line by line in binary.

Each line is decoded on its own, so one malformed line or invalid UTF-8 sequence never
poisons its neighbours; a broken compressed stream keeps what came before the break and
reports the rest of the file as one `corrupt_compressed` reject naming the line reached.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

from babelmill.pipeline.io.readers.batching import (
    SNIPPET,
    BatchBuilder,
    extra_value,
    json_type,
    utf8_error_detail,
)
from babelmill.pipeline.io.readers.compression import corruption_errors, is_compressed, open_binary
from babelmill.pipeline.io.readers.options import ReadOptions, WorkUnit

#: A line longer than this many times max_doc_bytes is not parsed at all (its text cannot be
#: small enough to keep unless other fields dwarf it), so one huge line never sits in memory.
LINE_CAP_FACTOR = 8
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


class _Oversized:
    __slots__ = ("head", "size")

    def __init__(self, head: bytes, size: int):
        self.head, self.size = head, size


class LineSource:
    """The unit's raw lines, one per `next()` (its number in `lineno`); `broken` is set if
    decompression fails. Not a generator, so no frame keeps the previous (maybe 50 MB) line alive.
    """

    def __init__(self, unit: WorkUnit, cap: int):
        self.compressed = is_compressed(unit.path)
        self.f = open_binary(unit.path)
        if not self.compressed and unit.start:
            self.f.seek(unit.start)
        self.pos = unit.start
        self.end = None if self.compressed else unit.end
        self.lineno = unit.first_line - 1
        self.cap = cap
        self.broken: BaseException | None = None
        self._errors = corruption_errors() if self.compressed else ()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()

    def next(self) -> bytes | _Oversized | None:
        if self.end is not None and self.pos >= self.end:
            return None
        try:
            raw = self.f.readline(self.cap)
            if raw and len(raw) == self.cap and raw[-1:] != b"\n":
                size, head = len(raw), raw[: SNIPPET * 4]
                raw = None
                while more := self.f.readline(1 << 20):  # skip the rest without keeping it
                    size += len(more)
                    if more[-1:] == b"\n":
                        break
                raw = _Oversized(head, size)
        except self._errors as e:
            self.broken = e
            return None
        if not raw:
            return None
        self.lineno += 1
        self.pos += raw.size if type(raw) is _Oversized else len(raw)
        return raw


def read_jsonl(unit: WorkUnit, opts: ReadOptions) -> Iterator:
    b = BatchBuilder(unit, opts, tag="L", line_numbers=True)
    tf, idf, extra = opts.text_field, opts.id_field, b.extra
    source, bs = unit.source, opts.batch_size
    quick_max = opts.max_doc_bytes // 4  # texts up to this many characters are surely small enough
    cap = LINE_CAP_FACTOR * opts.max_doc_bytes
    dumps = json.dumps
    with LineSource(unit, cap) as src:
        while (raw := src.next()) is not None:
            lineno = src.lineno
            if type(raw) is _Oversized:
                b.reject(
                    "doc_too_large",
                    f"line is {raw.size} bytes > {LINE_CAP_FACTOR} x max_doc_bytes; not parsed",
                    lineno,
                    raw=raw.head,
                )
                continue
            if raw.isspace():  # blank line, not a record
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                b.reject(
                    "bad_utf8",
                    utf8_error_detail(raw, e, " of the line"),
                    lineno,
                    raw=raw,
                )
                continue
            lone_surrogates = b"\\u" in raw and _SURROGATE_ESCAPE.search(raw) is not None
            raw = None  # only one copy of a big line stays alive while parsing
            if lineno == 1 and line.startswith("\ufeff"):
                line = line[1:]
            rec = _parse(line)
            if type(rec) is _Invalid:
                b.reject("bad_json", rec.detail, lineno, raw=line)
                continue
            if type(rec) is not dict:
                b.reject("not_an_object", f"a JSON {json_type(rec)}, expected an object", lineno, raw=line)
                continue
            rid = rec.get(idf) if idf else None
            doc_id = (
                f"{source}#L{lineno}"
                if rid is None or rid == ""
                else (rid if type(rid) is str else dumps(rid))
            )
            extras = (
                [v if (v := rec.get(f)) is None or type(v) is str else extra_value(v) for f in extra]
                if extra
                else None
            )
            text = rec.get(tf)
            if (
                not lone_surrogates
                and type(text) is str
                and 0 < len(text) <= quick_max
                and not text.isspace()
            ):  # the common case, without a call
                b.ids.append(doc_id)
                b.texts.append(text)
                b.offsets.append(lineno)
                b.extra_rows.append(extras)
            elif lone_surrogates and (bad := _surrogate_field(tf, text, idf, doc_id, extra, extras)):
                b.reject(
                    "bad_utf8",
                    f"field '{bad}' holds a lone UTF-16 surrogate escape (\\ud800-\\udfff)",
                    lineno,
                    raw=line.encode("utf-8", "backslashreplace"),
                    doc_id=doc_id,
                )
            elif tf not in rec:
                keys = ", ".join(list(rec)[:20])
                b.reject(
                    "missing_text",
                    f"field '{tf}' absent (fields: {keys})",
                    lineno,
                    raw=line,
                    doc_id=doc_id,
                    lang=extras[b.lang_pos] if extras and b.lang_pos is not None else None,
                )
            else:
                b.add(doc_id, text, lineno, extras, raw=line)
            if len(b.ids) >= bs or len(b.rejects) >= bs:
                yield b.flush()
        if src.broken is not None:
            e, last = src.broken, src.lineno
            b.reject(
                "corrupt_compressed",
                f"stream broken after line {last}: {type(e).__name__}: {e}; the rest of the file is skipped",
                last + 1,
            )
    if b.pending():
        yield b.flush()


class _Invalid:
    __slots__ = ("detail",)

    def __init__(self, detail: str):
        self.detail = detail


_raw_decode = json.JSONDecoder().raw_decode


def _parse(line: str):
    """json.loads minus its per-call overhead; errors come back as _Invalid, not raised."""
    try:
        obj, end = _raw_decode(line)
        if end == len(line) or line[end:].isspace():
            return obj
    except (ValueError, RecursionError):
        pass
    try:  # slow path for the exact error (and leading whitespace, which raw_decode refuses)
        return json.loads(line)
    except json.JSONDecodeError as e:
        return _Invalid(f"{e.msg}: column {e.colno}")
    except (ValueError, RecursionError) as e:
        return _Invalid(f"{type(e).__name__}: {e}")


def _surrogate_field(tf, text, idf, doc_id, extra, extras) -> str | None:
    """The first output field holding a lone surrogate (Arrow, and UTF-8, cannot store one)."""
    for name, v in ((tf, text), (idf, doc_id), *zip(extra, extras or (), strict=False)):
        if type(v) is str:
            try:
                v.encode("utf-8")
            except UnicodeEncodeError:
                return name
    return None
