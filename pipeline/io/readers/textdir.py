"""A directory of UTF-8 text files: one document per file, id = relative path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from babelmill.pipeline.io.readers.batching import BatchBuilder
from babelmill.pipeline.io.readers.options import ReadOptions, WorkUnit

TEXT_SUFFIXES = (".txt", ".text", ".md")


def list_text_files(directory: str) -> list[Path]:
    root = Path(directory)
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES)


def read_textdir(unit: WorkUnit, opts: ReadOptions) -> Iterator:
    b = BatchBuilder(unit, opts)
    files = list_text_files(unit.path)
    end = len(files) if unit.end is None else unit.end
    root = Path(unit.path)
    for i in range(unit.start, end):
        p = files[i]
        rel = str(Path(unit.source) / p.relative_to(root)) if unit.source not in ("", ".") else str(p.relative_to(root))
        size = p.stat().st_size
        if size > opts.max_doc_bytes:
            b.reject("doc_too_large", f"{rel}: {size} bytes > max_doc_bytes {opts.max_doc_bytes}", i, doc_id=rel, line=False)
            continue
        raw = p.read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            b.reject("bad_utf8", f"{rel}: invalid UTF-8 at byte {e.start}", i, raw=raw, doc_id=rel, line=False)
            continue
        b.add(rel, text, i, {"path": rel}, line=False)
        if b.full():
            yield b.flush()
    yield b.flush()
