"""Parquet, streamed in batches over the unit's row groups, reading only the needed columns.

Text checks are vectorised (null, empty/whitespace, too large); only the rejected rows are
touched in Python. A file whose footer is unreadable is one `corrupt_parquet` reject (rows
lost: unknown); a row group that fails to decode is one reject for the rows of it that were
not read, `records_lost` = those rows but the one the reject row stands for.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from babelmill.pipeline.io.readers.batching import SNIPPET, BatchBuilder, extra_value
from babelmill.pipeline.io.readers.options import ReadOptions, WorkUnit

_STRINGS = (pa.types.is_string, pa.types.is_large_string, pa.types.is_string_view)
_BINARY = (pa.types.is_binary, pa.types.is_large_binary, pa.types.is_binary_view)


def _is(t: pa.DataType, preds) -> bool:
    if pa.types.is_dictionary(t):
        t = t.value_type
    return any(p(t) for p in preds)


def _castable_to_str(t: pa.DataType) -> bool:
    return _is(t, _STRINGS) or pa.types.is_integer(t) or pa.types.is_boolean(t)


def _as_strings(arr: pa.Array) -> pa.Array:
    """A column as strings: cast where the text is the JSON text anyway, else json.dumps."""
    if _castable_to_str(arr.type):
        return pc.cast(arr, pa.string())
    return pa.array([extra_value(v) for v in arr.to_pylist()], pa.string())


def row_group_sizes(md: pq.FileMetaData) -> list[int]:
    """Compressed bytes of each row group (what a unit really reads from disk)."""
    out = []
    for i in range(md.num_row_groups):
        rg = md.row_group(i)
        out.append(sum(rg.column(j).total_compressed_size for j in range(rg.num_columns)))
    return out


def read_parquet(unit: WorkUnit, opts: ReadOptions) -> Iterator:
    b = BatchBuilder(unit, opts, tag="r")
    try:
        pf = pq.ParquetFile(unit.path)
        md = pf.metadata
        schema = pf.schema_arrow
    except (pa.ArrowException, OSError) as e:
        b.reject(
            "corrupt_parquet",
            f"file unreadable (footer/metadata): {e}; how many rows it held: unknown",
            0,
        )
        yield b.flush()
        return
    tf, idf = opts.text_field, opts.id_field
    names = schema.names
    cols = [c for c in dict.fromkeys([tf, idf, *b.extra]) if c and c in names]
    end = md.num_row_groups if unit.end is None else min(unit.end, md.num_row_groups)
    row0 = sum(md.row_group(i).num_rows for i in range(unit.start))
    for rg in range(unit.start, end):
        n_rows = md.row_group(rg).num_rows
        done = 0
        batches = pf.iter_batches(
            batch_size=opts.batch_size, row_groups=[rg], columns=cols, use_threads=False
        )
        while True:
            try:  # only decoding is guarded: a bug in _convert must not pass for a corrupt file
                batch = next(batches, None)
            except (pa.ArrowException, OSError) as e:
                lost = n_rows - done  # from the footer: exact
                b.reject(
                    "corrupt_parquet",
                    f"row group {rg} unreadable from row {row0 + done} ({lost} of its {n_rows} rows lost): {e}",
                    row0 + done,
                    records_lost=lost - 1 if lost > 1 else None,
                )
                yield b.flush()
                break
            if batch is None:
                break
            yield _convert(b, batch, row0 + done, rg, names)
            done += batch.num_rows
        row0 += n_rows


def _convert(b: BatchBuilder, batch: pa.RecordBatch, first: int, rg: int, names: list[str]):
    opts, source = b.opts, b.source
    tf, idf = opts.text_field, opts.id_field
    n = batch.num_rows
    rows = pa.array(np.arange(first, first + n, dtype=np.int64))
    got = batch.schema.names

    ids = _as_strings(batch.column(idf)) if idf and idf in got else pa.nulls(n, pa.string())
    derived = pc.binary_join_element_wise(f"{source}#r", pc.cast(rows, pa.string()), "")
    no_id = pc.fill_null(pc.or_kleene(pc.is_null(ids), pc.equal(ids, "")), True)
    ids = pc.if_else(no_id, derived, ids)
    extras = [_as_strings(batch.column(f)) if f in got else pa.nulls(n, pa.string()) for f in b.extra]
    langs = extras[b.lang_pos] if b.lang_pos is not None else None

    # Per-row verdicts: None = keep, else (reason, detail, snippet source).
    bad: dict[int, tuple[str, str, object]] = {}
    if tf not in got:
        text = pa.nulls(n, pa.large_string())
        what = f"column '{tf}' absent (columns: {', '.join(names[:20])})"
        bad = {i: ("missing_text", what, None) for i in range(n)}
    else:
        text = batch.column(tf)
        if _is(text.type, _BINARY):
            text, bad = _decode_binary(text)
        elif not _is(text.type, _STRINGS):
            what = f"column '{tf}' is {text.type}, not a string"
            bad = {i: ("missing_text", what, None) for i in range(n)}
            text = pa.nulls(n, pa.large_string())
        text = pc.cast(text, pa.large_string())
        nbytes = pc.binary_length(text)
        null = pc.is_null(text)
        too_large = pc.fill_null(pc.greater(nbytes, opts.max_doc_bytes), False)
        empty = pc.fill_null(pc.or_(pc.equal(nbytes, 0), pc.utf8_is_space(text)), False)
        flagged = pc.or_(pc.or_(null, too_large), empty).to_numpy(zero_copy_only=False)
        for i in np.flatnonzero(flagged).tolist():
            if i in bad:
                continue
            if null[i].as_py():
                bad[i] = ("missing_text", f"column '{tf}' is null", None)
            elif too_large[i].as_py():
                bad[i] = (
                    "doc_too_large",
                    f"text is {nbytes[i].as_py()} bytes > max_doc_bytes {opts.max_doc_bytes}",
                    pc.utf8_slice_codeunits(text.slice(i, 1), 0, SNIPPET)[0].as_py(),
                )
            else:
                t = text[i].as_py()
                bad[i] = (
                    "empty_text",
                    "empty text" if not t else f"whitespace-only text ({len(t)} characters)",
                    t,
                )
    if bad:
        for i in sorted(bad):
            reason, detail, raw = bad[i]
            b.reject(
                reason,
                f"{detail} (row group {rg})",
                first + i,
                raw=raw,
                doc_id=ids[i].as_py(),
                lang=langs[i].as_py() if langs is not None else None,
            )
        keep = np.ones(n, dtype=bool)
        keep[list(bad)] = False
        mask = pa.array(keep)
        ids, text, rows = ids.filter(mask), text.filter(mask), rows.filter(mask)
        extras = [e.filter(mask) for e in extras]
    k = len(ids)
    docs = pa.RecordBatch.from_arrays(
        [ids, text, pa.repeat(pa.scalar(source, pa.string()), k), rows, *extras], schema=b.schema
    )
    return docs, b.take_rejects()


def _decode_binary(arr: pa.Array) -> tuple[pa.Array, dict]:
    """Binary text columns: decode row by row so one invalid row is one bad_utf8 reject."""
    out, bad = [], {}
    for i, v in enumerate(arr.to_pylist()):
        if v is None:
            out.append(None)
            continue
        try:
            out.append(v.decode("utf-8"))
        except UnicodeDecodeError as e:
            around = v[max(0, e.start - 20) : e.start + 20]
            bad[i] = ("bad_utf8", f"invalid UTF-8 at byte {e.start} ({e.reason}): {around!r}", v)
            out.append(None)
    return pa.array(out, pa.large_string()), bad
