"""Accumulate documents and rejects row-wise, emit Arrow batches column-wise.

Every reader funnels its records through one `BatchBuilder`, so the size/emptiness checks,
strict-mode errors and the output schema are the same for every input format.
"""

from __future__ import annotations

import json

import pyarrow as pa

from babelmill.pipeline.core.schema import DOC_COLUMNS, REJECT_SCHEMA
from babelmill.pipeline.io.readers.options import InputError, ReadOptions, WorkUnit

SNIPPET = 1000


def snippet(raw) -> str:
    if isinstance(raw, bytes | bytearray):
        raw = bytes(raw[: SNIPPET * 4]).decode("utf-8", errors="backslashreplace")
    return str(raw)[:SNIPPET]


def extra_value(v):
    if v is None or isinstance(v, str):
        return v
    return json.dumps(v, ensure_ascii=False)


class BatchBuilder:
    def __init__(self, unit: WorkUnit, opts: ReadOptions):
        self.unit, self.opts = unit, opts
        self.extra = [f for f in opts.extra_fields if f not in DOC_COLUMNS]
        self.schema = pa.schema(
            [pa.field(n, t) for n, t in DOC_COLUMNS.items()] + [pa.field(f, pa.string()) for f in self.extra]
        )
        self._reset()

    def _reset(self):
        self.ids, self.texts, self.offsets = [], [], []
        self.extras = [[] for _ in self.extra]
        self.rejects: list[dict] = []

    def __len__(self):
        return len(self.ids) + len(self.rejects)

    def full(self) -> bool:
        return len(self) >= self.opts.batch_size

    def reject(self, reason: str, detail: str, offset: int, raw=None, doc_id: str | None = None, line: bool = True):
        if self.opts.strict:
            kw = {"line": offset} if line else {"offset": offset}
            raise InputError(self.unit.path, reason, detail, **kw)
        if doc_id is None:  # every reject gets an id that points back to its place in the input
            doc_id = f"{self.unit.source}#{'L' if line else 'o'}{offset}"
        self.rejects.append(
            {"id": doc_id, "source": self.unit.source, "offset": offset, "stage": "read", "reason": reason,
             "detail": detail, "text": None if raw is None else snippet(raw)}
        )

    def add(self, doc_id, text, offset: int, record: dict | None = None, line: bool = True) -> None:
        """Check and add one document; empty/oversized/non-string texts become rejects."""
        if text is None or not isinstance(text, str):
            what = "absent" if text is None else f"not a string ({type(text).__name__})"
            return self.reject("missing_text", f"field '{self.opts.text_field}' {what}", offset, raw=None if record is None else json.dumps(record, ensure_ascii=False, default=str)[:SNIPPET], doc_id=doc_id, line=line)
        try:
            n = len(text.encode("utf-8"))
        except UnicodeEncodeError as e:  # lone surrogates, e.g. from a JSON "\ud800" escape
            return self.reject("bad_utf8", f"text is not valid Unicode: {e.reason} at {e.start}", offset, raw=text.encode("utf-8", "backslashreplace"), doc_id=doc_id, line=line)
        if n > self.opts.max_doc_bytes:
            return self.reject("doc_too_large", f"{n} bytes > max_doc_bytes {self.opts.max_doc_bytes}", offset, raw=text[:SNIPPET], doc_id=doc_id, line=line)
        if not text.strip():
            return self.reject("empty_text", "empty or whitespace-only text", offset, raw=text, doc_id=doc_id, line=line)
        self.ids.append(doc_id)
        self.texts.append(text)
        self.offsets.append(offset)
        for col, f in zip(self.extras, self.extra, strict=True):
            col.append(extra_value(record.get(f)) if record is not None else None)

    def flush(self) -> tuple[pa.RecordBatch, pa.Table]:
        arrays = [
            pa.array(self.ids, pa.string()),
            pa.array(self.texts, pa.large_string()),
            pa.array([self.unit.source] * len(self.ids), pa.string()),
            pa.array(self.offsets, pa.int64()),
            *(pa.array(c, pa.string()) for c in self.extras),
        ]
        docs = pa.RecordBatch.from_arrays(arrays, schema=self.schema)
        cols = {f.name: [r.get(f.name) for r in self.rejects] for f in REJECT_SCHEMA}
        rejects = pa.Table.from_pydict(cols, schema=REJECT_SCHEMA)
        self._reset()
        return docs, rejects
