"""Accumulate documents and rejects row-wise, emit Arrow batches column-wise.

Every reader funnels its records through one `BatchBuilder`, so the text checks (missing,
empty, too large), strict-mode errors, reject ids and the output schema are the same for
every input format.
"""

from __future__ import annotations

import json

import pyarrow as pa

from babelmill.pipeline.core.schema import DOC_COLUMNS, REJECT_SCHEMA
from babelmill.pipeline.io.readers.options import InputError, ReadOptions, WorkUnit

#: Characters of the raw record kept in a reject's `text` (enough to see what was wrong).
SNIPPET = 1000


def snippet(raw) -> str | None:
    if raw is None:
        return None
    if isinstance(raw, bytes | bytearray | memoryview):
        return bytes(raw[: SNIPPET * 4]).decode("utf-8", errors="backslashreplace")[:SNIPPET]
    return (raw if isinstance(raw, str) else str(raw))[:SNIPPET]


def extra_value(v):
    """Carried fields are strings: JSON values that are not are stored as their JSON text."""
    if v is None or type(v) is str:
        return v
    return json.dumps(v, ensure_ascii=False, default=str)


def json_type(v) -> str:
    if isinstance(v, dict):
        return "object"
    if isinstance(v, list):
        return "array"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int | float):
        return "number"
    return "null" if v is None else type(v).__name__


def extra_names(opts: ReadOptions) -> list[str]:
    return [f for f in opts.extra_fields if f not in DOC_COLUMNS]


def doc_schema(opts: ReadOptions) -> pa.Schema:
    return pa.schema(
        [pa.field(n, t) for n, t in DOC_COLUMNS.items()]
        + [pa.field(f, pa.string()) for f in extra_names(opts)]
    )


class BatchBuilder:
    """`tag` is the derived-id marker of the format ("L" line, "r" row, "o" byte offset);
    `line_numbers` says whether offsets are line numbers (named so in InputError)."""

    def __init__(self, unit: WorkUnit, opts: ReadOptions, tag: str, line_numbers: bool = False):
        self.unit, self.opts, self.tag, self.line_numbers = unit, opts, tag, line_numbers
        self.source = unit.source
        self.max_bytes = opts.max_doc_bytes
        self.extra = extra_names(opts)
        self.lang_pos = self.extra.index("lang") if "lang" in self.extra else None
        self.schema = doc_schema(opts)
        self._reset()

    def _reset(self) -> None:
        self.ids: list[str] = []
        self.texts: list[str] = []
        self.offsets: list[int] = []
        self.extra_rows: list[list | None] = []  # row-wise (cheaper to append), transposed at flush
        self.rejects: list[dict] = []

    def full(self) -> bool:
        n = self.opts.batch_size
        return len(self.ids) >= n or len(self.rejects) >= n

    def pending(self) -> bool:
        return bool(self.ids or self.rejects)

    # -- rejects ---------------------------------------------------------------------------
    def derived_id(self, offset: int) -> str:
        return f"{self.source}#{self.tag}{offset}"

    def reject(
        self,
        reason: str,
        detail: str,
        offset: int,
        *,
        raw=None,
        doc_id: str | None = None,
        lang: str | None = None,
        where: dict | None = None,
        records_lost: int | None = None,
    ) -> None:
        """Quarantine one record (or, strict, raise). `where` overrides the InputError location
        (e.g. the single file of a text directory); `records_lost`: see REJECT_SCHEMA."""
        if self.opts.strict:
            loc = (
                where
                if where is not None
                else ({"line": offset} if self.line_numbers else {"offset": offset})
            )
            raise InputError(**{"path": self.unit.path, **loc}, reason=reason, detail=detail)
        self.rejects.append(
            {
                "id": doc_id or self.derived_id(offset),
                "source": self.source,
                "offset": offset,
                "stage": "read",
                "reason": reason,
                "detail": detail,
                "lang": lang,
                "text": snippet(raw),
                "records_lost": records_lost,
            }
        )

    # -- documents -------------------------------------------------------------------------
    def add(
        self,
        doc_id: str,
        text,
        offset: int,
        extras: list | None = None,
        *,
        raw=None,
        where: dict | None = None,
    ) -> bool:
        """Check and add one document; a missing, empty or oversized text becomes a reject.
        `raw` (the record as read) is the reject snippet for a missing text."""
        lang = extras[self.lang_pos] if extras is not None and self.lang_pos is not None else None
        if type(text) is not str:
            what = f"field '{self.opts.text_field}' is {json_type(text)}, not a string"
            self.reject("missing_text", what, offset, raw=raw, doc_id=doc_id, lang=lang, where=where)
            return False
        n = len(text)
        # len() counts characters: UTF-8 bytes are n (ASCII, O(1) check) to 4n, so only
        # near-limit non-ASCII texts are encoded to measure them.
        if n > self.max_bytes or (
            4 * n > self.max_bytes
            and not text.isascii()
            and len(text.encode("utf-8", "surrogatepass")) > self.max_bytes
        ):
            size = n if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
            self.reject(
                "doc_too_large",
                f"text is {size} bytes > max_doc_bytes {self.max_bytes}",
                offset,
                raw=text[:SNIPPET],
                doc_id=doc_id,
                lang=lang,
                where=where,
            )
            return False
        if not n or text.isspace():
            self.reject(
                "empty_text",
                "empty text" if not n else f"whitespace-only text ({n} characters)",
                offset,
                raw=text,
                doc_id=doc_id,
                lang=lang,
                where=where,
            )
            return False
        self.ids.append(doc_id)
        self.texts.append(text)
        self.offsets.append(offset)
        self.extra_rows.append(extras)
        return True

    # -- output ----------------------------------------------------------------------------
    def flush(self) -> tuple[pa.RecordBatch, pa.Table]:
        n = len(self.ids)
        none = [None] * len(self.extra)
        cols = list(zip(*(r if r is not None else none for r in self.extra_rows), strict=True)) if n else []
        arrays = [
            pa.array(self.ids, pa.string()),
            pa.array(self.texts, pa.large_string()),
            pa.repeat(pa.scalar(self.source, pa.string()), n),
            pa.array(self.offsets, pa.int64()),
            *(pa.array(c, pa.string()) for c in (cols or [[] for _ in self.extra])),
        ]
        docs = pa.RecordBatch.from_arrays(arrays, schema=self.schema)
        rejects = self.take_rejects()
        self._reset()
        return docs, rejects

    def take_rejects(self) -> pa.Table:
        rows, self.rejects = self.rejects, []
        return pa.Table.from_pydict(
            {f.name: [r.get(f.name) for r in rows] for f in REJECT_SCHEMA}, schema=REJECT_SCHEMA
        )


def utf8_error_detail(raw: bytes, e: UnicodeDecodeError, what: str = "") -> str:
    """`invalid UTF-8 at byte N<what> (reason): b'...around it...'` for a bad_utf8 reject."""
    around = raw[max(0, e.start - 20) : e.start + 20]
    return f"invalid UTF-8 at byte {e.start}{what} ({e.reason}): {around!r}"
