"""JSON Lines, plain or compressed (.gz, .zst, .bz2, .xz), read line by line in binary.

Each line is decoded on its own, so one malformed line or invalid UTF-8 sequence never
poisons its neighbours. A compressed file is verified first (see `LineSource`): records of a
member/frame/stream that fails its integrity check are never emitted, but quarantined as one
`corrupt_compressed` reject per unit (`records_lost` = how many more records it held); a cut
stream keeps what came before the break and reports the rest of the file as one reject
naming the line reached (`records_lost` null: unknown).
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Iterator

from babelmill.pipeline.io.readers.batching import (
    SNIPPET,
    BatchBuilder,
    extra_value,
    json_type,
    utf8_error_detail,
)
from babelmill.pipeline.io.readers.compression import (
    UnitEnd,
    codec_of,
    corruption_errors,
    open_binary,
    scan_units,
)
from babelmill.pipeline.io.readers.options import ReadOptions, WorkUnit

#: A line longer than this many times max_doc_bytes is not parsed at all (its text cannot be
#: small enough to keep unless other fields dwarf it), so one huge line never sits in memory.
LINE_CAP_FACTOR = 8
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


class _Oversized:
    __slots__ = ("head", "size")

    def __init__(self, head: bytes, size: int):
        self.head, self.size = head, size


class _Quarantined:
    """Records the line source will not hand out (an untrusted compressed unit, or the end of
    a broken stream), reported as one `corrupt_compressed` reject."""

    __slots__ = ("count", "detail", "head", "line", "lost")

    def __init__(self, line: int, detail: str, head: bytes | None, lost: int | None):
        self.line, self.detail, self.head, self.lost = line, detail, head, lost


class _Group:
    """Lines of one untrusted unit seen so far."""

    __slots__ = ("count", "first", "head", "unit")

    def __init__(self, unit: UnitEnd):
        self.unit, self.count, self.first, self.head = unit, 0, None, None


class LineSource:
    """The unit's raw lines, one per `next()` (its number in `lineno`), and `_Quarantined`
    entries where records are not trusted or the stream breaks. Not a generator, so no frame
    keeps the previous (maybe 50 MB) line alive.

    A compressed file is verified before any of its lines is returned: `scan_units`
    decompresses it once, discarding the data, and finds every member/frame/stream that fails
    its integrity check or cannot be decoded. Reading then skips every line holding a byte of
    such a unit (a line straddling a unit boundary included) and reports them as one reject
    per unit. Why a first pass instead of holding back a member's lines until its CRC passes:
    a single-member gzip (what `gzip` writes) would have to be held whole, unbounded; the
    scan costs one extra decompression in constant memory. Measured on 97 MB of JSONL (120k
    docs, 2-core box): gzip -6, scan 0.45 s, whole read 2.08 s against 1.81 s before (+15%);
    bz2, scan 4.1 s of a 9.1 s read (bz2 decompression is slow, so it nearly doubles).

    - gzip member failing its CRC-32/length check: members are told apart exactly, so only
      that member's records are quarantined, and reading goes on with the next member;
    - undecodable data (any codec) or a failed zstd/bz2/xz check (those libraries cannot say
      where the unit ends): the unit's records decoded before the damage are quarantined,
      and the rest of the file cannot be read (how many records it held is unknown);
    - a cut file: records before the cut are kept (intact data, nothing to check), the rest
      is reported lost, count unknown.
    """

    def __init__(self, unit: WorkUnit, cap: int):
        self.codec = codec_of(unit.path)
        self.compressed = self.codec is not None
        self.bad: list[UnitEnd] = (
            [u for u in scan_units(unit.path) if not u.trusted] if self.compressed else []
        )
        self.f = open_binary(unit.path)
        if not self.compressed and unit.start:
            self.f.seek(unit.start)
        self.pos = unit.start
        self.end = None if self.compressed else unit.end
        self.lineno = unit.first_line - 1
        self.cap = cap
        self.broken: BaseException | None = None
        self._errors = corruption_errors() if self.compressed else ()
        self._k = 0  # next bad unit
        self._group: _Group | None = None
        self._out: deque = deque()
        self._finished = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()

    def next(self) -> bytes | _Oversized | _Quarantined | None:
        while True:
            if self._out:
                return self._out.popleft()
            if self._finished:
                return None
            raw = self._read()
            if raw is None:
                self._finish()
                continue
            if self._k < len(self.bad) and self._tainted(raw):
                continue
            if self._out:  # a unit closed before this line: report it first
                self._out.append(raw)
                continue
            return raw

    def _read(self) -> bytes | _Oversized | None:
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
        self.line_start = self.pos
        self.pos += raw.size if type(raw) is _Oversized else len(raw)
        return raw

    def _tainted(self, raw) -> bool:
        """Whether the line just read [line_start, pos) holds bytes of an untrusted unit
        (closing the groups of units it is past)."""
        s, e = self.line_start, self.pos
        while self._k < len(self.bad):
            u = self.bad[self._k]
            if u.status == "bad_check" and s >= u.dend:
                self._close()
                continue
            if e > u.dstart and (u.status != "bad_check" or s < u.dend):
                g = self._group if self._group is not None and self._group.unit is u else _Group(u)
                self._group = g
                if type(raw) is _Oversized or not raw.isspace():
                    g.count += 1
                    if g.first is None:
                        g.first = self.lineno
                        g.head = raw.head if type(raw) is _Oversized else raw[: SNIPPET * 4]
                return True
            return False
        return False

    def _close(self) -> None:
        u = self.bad[self._k]
        g = self._group if self._group is not None and self._group.unit is u else _Group(u)
        self._group = None
        self._k += 1
        m = g.count
        line = g.first if g.first is not None else self.lineno + 1
        codec, what = u.codec, u.name
        recs = f"its {m} record{'s' if m != 1 else ''}"
        if u.status == "bad_check":
            check = "CRC" if str(u.error).startswith("CRC") else "length"
            detail = (
                f"{codec} {what} ending at byte {u.cend} fails its {check} check ({u.error}): "
                f"{recs} are quarantined, not trusted"
            )
            lost = m - 1 if m >= 1 else None
        else:
            detail = (
                f"{codec} {what} starting at byte {u.cstart} cannot be decoded or verified "
                f"({type(u.error).__name__}: {u.error}): {recs} decoded before the damage "
                "are quarantined, not trusted; the rest of the file cannot be read "
                "(how many records it held: unknown)"
            )
            lost = m or None
            self.broken = None  # this row reports the break
        self._out.append(_Quarantined(line, detail, g.head, lost))

    def _finish(self) -> None:
        self._finished = True
        while self._k < len(self.bad):
            self._close()
        if self.broken is not None:
            e, last = self.broken, self.lineno
            self._out.append(
                _Quarantined(
                    last + 1,
                    f"stream broken after line {last}: {type(e).__name__}: {e}; the rest of the file "
                    "cannot be read (how many records it held: unknown)",
                    None,
                    None,
                )
            )
            self.broken = None


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
            if type(raw) is _Quarantined:
                b.reject("corrupt_compressed", raw.detail, raw.line, raw=raw.head, records_lost=raw.lost)
                if b.full():
                    yield b.flush()
                continue
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
