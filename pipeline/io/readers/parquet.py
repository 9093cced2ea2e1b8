"""Parquet, streamed by row group; a truncated file or an unreadable row group becomes a
`corrupt_parquet` reject (one per row group, or one for a file whose footer is gone)."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from babelmill.pipeline.io.readers.batching import BatchBuilder
from babelmill.pipeline.io.readers.options import ReadOptions, WorkUnit


def open_parquet(path: str) -> pq.ParquetFile:
    return pq.ParquetFile(path)


def read_parquet(unit: WorkUnit, opts: ReadOptions) -> Iterator:
    b = BatchBuilder(unit, opts)
    try:
        pf = open_parquet(unit.path)
    except (pa.ArrowException, OSError) as e:
        b.reject("corrupt_parquet", f"unreadable file (footer/metadata): {e}", 0, line=False)
        yield b.flush()
        return
    names = pf.schema_arrow.names
    tf, idf = opts.text_field, opts.id_field
    cols = [c for c in dict.fromkeys([tf, idf, *opts.extra_fields]) if c and c in names]
    end = pf.num_row_groups if unit.end is None else unit.end
    row0 = sum(pf.metadata.row_group(i).num_rows for i in range(unit.start))
    for rg in range(unit.start, end):
        n_rows = pf.metadata.row_group(rg).num_rows
        try:
            table = pf.read_row_group(rg, columns=cols)
        except (pa.ArrowException, OSError) as e:
            b.reject("corrupt_parquet", f"row group {rg} ({n_rows} rows from row {row0}) unreadable: {e}", row0, line=False)
            row0 += n_rows
            continue
        texts = table.column(tf).to_pylist() if tf in table.column_names else [None] * table.num_rows
        ids = table.column(idf).to_pylist() if idf and idf in table.column_names else [None] * table.num_rows
        extra = {f: table.column(f).to_pylist() for f in opts.extra_fields if f in table.column_names}
        for i, text in enumerate(texts):
            row = row0 + i
            rid = ids[i]
            doc_id = str(rid) if rid is not None else f"{unit.source}#r{row}"
            rec = {f: v[i] for f, v in extra.items()}
            if text is None and tf not in table.column_names:
                rec = {**rec, "_columns": table.column_names}
            b.add(doc_id, text, row, rec, line=False)
            if b.full():
                yield b.flush()
        row0 += n_rows
    yield b.flush()
