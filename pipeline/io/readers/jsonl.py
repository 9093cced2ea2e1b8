"""JSON Lines, plain or compressed (.gz, .zst), read line by line in binary.

Each line is decoded on its own, so one malformed line or invalid UTF-8 sequence never
poisons its neighbours; a broken compressed stream keeps what came before the break and
reports the rest of the file as one `corrupt_compressed` reject with the line reached.
"""

from __future__ import annotations

import gzip
import io
import json
import zlib
from collections.abc import Iterator

from babelmill.pipeline.io.readers.batching import BatchBuilder, snippet
from babelmill.pipeline.io.readers.options import ReadOptions, WorkUnit


def open_binary(path: str):
    if path.endswith(".gz"):
        return gzip.open(path, "rb")
    if path.endswith(".zst") or path.endswith(".zstd"):
        import zstandard

        fh = open(path, "rb")  # noqa: SIM115 - owned by the returned reader
        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(fh, read_across_frames=True, closefd=True))
    return open(path, "rb")  # noqa: SIM115


def is_compressed(path: str) -> bool:
    return path.endswith((".gz", ".zst", ".zstd"))


def _lines(unit: WorkUnit) -> Iterator[tuple[int, bytes]]:
    """(line number, raw line) for the unit's byte range (whole file if compressed)."""
    f = open_binary(unit.path)
    with f:
        if not is_compressed(unit.path) and unit.start:
            f.seek(unit.start)
        pos = unit.start
        lineno = unit.first_line
        for raw in f:
            if unit.end is not None and not is_compressed(unit.path) and pos >= unit.end:
                break
            pos += len(raw)
            yield lineno, raw
            lineno += 1


def read_jsonl(unit: WorkUnit, opts: ReadOptions) -> Iterator:
    b = BatchBuilder(unit, opts)
    tf, idf = opts.text_field, opts.id_field
    lineno = unit.first_line
    try:
        for lineno, raw in _lines(unit):
            if not raw.strip():
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                b.reject("bad_utf8", f"invalid UTF-8 at byte {e.start} of the line: {e.reason}", lineno, raw=raw)
            else:
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as e:
                    b.reject("bad_json", f"{e.msg} (column {e.colno})", lineno, raw=raw)
                else:
                    if not isinstance(rec, dict):
                        b.reject("not_an_object", f"JSON {type(rec).__name__}, expected an object", lineno, raw=raw)
                    else:
                        rid = rec.get(idf) if idf else None
                        doc_id = str(rid) if rid is not None else f"{unit.source}#L{lineno}"
                        b.add(doc_id, rec.get(tf), lineno, rec)
            if b.full():
                yield b.flush()
    except (OSError, EOFError, zlib.error, ValueError) as e:
        # gzip/zstd stream broken (truncated file, bad CRC, garbage): keep what we have.
        from babelmill.pipeline.io.readers.options import InputError

        if isinstance(e, InputError):
            raise
        b.reject(
            "corrupt_compressed",
            f"stream unreadable after line {lineno}: {type(e).__name__}: {e}; rest of the file skipped",
            lineno + 1,
            raw=snippet(str(e)),
        )
    yield b.flush()
