"""A directory of UTF-8 text files: one document per file, id = its path relative to the
input root (e.g. "notes/a.txt"), offset = its index in the sorted listing."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from babelmill.pipeline.io.readers.batching import BatchBuilder, utf8_error_detail
from babelmill.pipeline.io.readers.options import ReadOptions, WorkUnit

TEXT_SUFFIXES = (".txt", ".text")


def is_text_file(name: str) -> bool:
    return name.lower().endswith(TEXT_SUFFIXES) and not name.startswith(".")


def list_text_files(path: str | Path, follow_links: bool = False) -> list[Path]:
    """Text files under `path` (or `path` itself if it is a file), hidden entries skipped,
    sorted by relative path so file indices are the same on every machine.

    Symlinked files resolving outside `path` are left out unless `follow_links` (the planner
    reports them; directory symlinks are never descended, as os.walk does by default)."""
    root = Path(path)
    if root.is_file():
        return [root]
    real = os.path.realpath(root)
    found = []
    for d, dirs, files in os.walk(root):
        dirs[:] = [x for x in dirs if not x.startswith(".")]
        for f in files:
            if not is_text_file(f):
                continue
            p = Path(d, f)
            if not follow_links and p.is_symlink() and not is_within(os.path.realpath(p), real):
                continue
            found.append(p)
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def is_within(path: str, root: str) -> bool:
    """Whether real path `path` is `root` or below it (both already resolved)."""
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def read_textdir(unit: WorkUnit, opts: ReadOptions) -> Iterator:
    b = BatchBuilder(unit, opts, tag="f")
    root = Path(unit.path)
    files = list_text_files(root, unit.follow_links)
    end = len(files) if unit.end is None else min(unit.end, len(files))
    for i in range(unit.start, end):
        p = files[i]
        rel = unit.source if p == root else f"{unit.source}/{p.relative_to(root).as_posix()}"
        where = {"path": str(p)}
        size = p.stat().st_size
        if size > opts.max_doc_bytes:  # decided from the file size, without reading it
            with open(p, "rb") as f:
                head = f.read(4000)
            b.reject(
                "doc_too_large",
                f"text is {size} bytes > max_doc_bytes {opts.max_doc_bytes}",
                i,
                raw=head,
                doc_id=rel,
                where=where,
            )
        else:
            raw = p.read_bytes()
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                b.reject(
                    "bad_utf8",
                    utf8_error_detail(raw, e),
                    i,
                    raw=raw,
                    doc_id=rel,
                    where={**where, "line": raw.count(b"\n", 0, e.start) + 1},
                )
            else:
                b.add(
                    rel,
                    text.removeprefix("\ufeff"),
                    i,
                    [rel if f == "path" else None for f in b.extra],
                    where=where,
                )
        if b.full():
            yield b.flush()
    if b.pending():
        yield b.flush()
