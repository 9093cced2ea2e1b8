"""Shard writers that never leave a half-written file under a final name.

Each shard is written to a temporary name in the same directory and renamed into place with
`os.replace` (atomic on POSIX), so a run killed at any point leaves either the complete shard
or only a `*.tmp-*` file that the next run ignores and cleans up.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

TMP_MARK = ".tmp-"


def tmp_name(path: Path) -> Path:
    return path.with_name(f"{path.name}{TMP_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}")


def atomic_write_bytes(path: str | Path, data: bytes, fsync: bool = True) -> None:
    """Write to a temp name, then rename. `fsync=False` for intermediate files that a rerun
    recomputes anyway (shuffle partitions): the rename still makes them all-or-nothing."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_name(path)
    with open(tmp, "wb") as f:
        f.write(data)
        if fsync:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_write_parquet(path: str | Path, table: pa.Table, compression: str = "snappy", fsync: bool = True,
                         use_dictionary: bool | list[str] = True) -> None:
    """A whole table as one Parquet file, written atomically (see atomic_write_bytes)."""
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression=compression, use_dictionary=use_dictionary)
    atomic_write_bytes(path, sink.getvalue().to_pybytes(), fsync=fsync)


def atomic_write_json(path: str | Path, obj) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode())


def clean_tmp_files(directory: str | Path) -> int:
    """Remove leftovers of killed writers; returns how many were removed."""
    n = 0
    d = Path(directory)
    if d.is_dir():
        for p in d.rglob(f"*{TMP_MARK}*"):
            p.unlink(missing_ok=True)
            n += 1
    return n


class ShardWriter:
    """Streams record batches into one Parquet (zstd by default) or JSONL shard, atomically."""

    def __init__(self, path: str | Path, schema: pa.Schema, fmt: str = "parquet", compression: str = "zstd",
                 use_dictionary: bool | list[str] = True):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.schema = schema
        self.fmt = fmt
        self.rows = 0
        self._tmp = tmp_name(self.path)
        if fmt == "parquet":
            self._w = pq.ParquetWriter(self._tmp, schema, compression=None if compression == "none" else compression,
                                       use_dictionary=use_dictionary)
        elif fmt == "jsonl":
            self._f = open(self._tmp, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
        else:
            raise ValueError(f"unknown output format {fmt!r}")

    def write(self, data: pa.RecordBatch | pa.Table) -> None:
        if data.num_rows == 0:
            return
        if data.schema != self.schema:
            data = data.select(self.schema.names).cast(self.schema)
        self.rows += data.num_rows
        if self.fmt == "parquet":
            self._w.write(data if isinstance(data, pa.Table) else pa.Table.from_batches([data]))
        else:
            for row in data.to_pylist():
                self._f.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")

    def close(self) -> None:
        if self.fmt == "parquet":
            self._w.close()
        else:
            self._f.flush()
            os.fsync(self._f.fileno())
            self._f.close()
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        try:
            if self.fmt == "parquet":
                self._w.close()
            else:
                self._f.close()
        finally:
            Path(self._tmp).unlink(missing_ok=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *_):
        if exc_type is None:
            self.close()
        else:
            self.abort()
