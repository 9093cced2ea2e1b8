"""Turn user inputs (files, directories, glob patterns) into deterministic work units.

Plain JSONL is split at line starts every `split_bytes` (one streaming pass also counts
newlines, so every unit knows the true line number it starts at and errors name real lines);
Parquet is split by row groups; compressed and WARC files are one unit each (not seekable);
a text directory is split by files.

`source` is the file's path relative to the input the user gave (a directory or the fixed
part of a glob; a named file's own name), so ids and reports do not depend on where the data
sits on disk. If two inputs would yield the same source, leading directories are added until
they differ: unit ids name output shards and must be unique.
"""

from __future__ import annotations

import glob
import hashlib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from babelmill.pipeline.io.readers.compression import is_compressed
from babelmill.pipeline.io.readers.options import InputError, ReadOptions, WorkUnit
from babelmill.pipeline.io.readers.textdir import is_text_file, list_text_files

log = logging.getLogger(__name__)

_JSONL_EXT = tuple(b + c for b in (".jsonl", ".json", ".ndjson") for c in ("", ".gz", ".zst", ".zstd"))
_EXT = [
    (_JSONL_EXT, "jsonl"),
    ((".parquet", ".pq"), "parquet"),
    ((".warc", ".warc.gz", ".wet", ".wet.gz", ".arc", ".arc.gz"), "warc"),
]
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_SCAN = 8 * 2**20


def detect_format(path: str) -> str | None:
    """Data format from the file name (.txt files are "text" only as a whole directory)."""
    low = path.lower()
    for exts, fmt in _EXT:
        if low.endswith(exts):
            return fmt
    return None


@dataclass
class _Input:
    path: str  # absolute
    root: str  # absolute; `source` is relative to it
    fmt: str

    @property
    def source(self) -> str:
        rel = os.path.relpath(self.path, self.root)
        return Path(self.path).name if rel == "." else Path(rel).as_posix()


def plan_units(inputs: list[str], opts: ReadOptions) -> list[WorkUnit]:
    if isinstance(inputs, str | os.PathLike):
        inputs = [inputs]
    if not inputs:
        raise FileNotFoundError("no input given")
    found: dict[str, _Input] = {}
    for inp in inputs:
        for x in _expand(str(inp), opts.format):
            found.setdefault(os.path.realpath(x.path), x)  # the same file twice is read once
    sources = _unique_sources(list(found.values()))
    units: list[WorkUnit] = []
    for x in found.values():
        units.extend(_units_for(x, sources[x.path], opts))
    units.sort(key=lambda u: (u.source, u.start))
    ids = [u.unit_id.lower() for u in units]  # lower: shard names must differ on macOS too
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        raise InputError(
            str(inputs), "duplicate_unit_id", f"inputs map to the same work unit id(s): {dup[:3]}"
        )
    return units


# -- expansion -------------------------------------------------------------------------------
def _expand(inp: str, fmt: str) -> list[_Input]:
    if glob.has_magic(inp):
        root = _glob_root(inp)
        out: list[_Input] = []
        for m in sorted(glob.glob(inp, recursive=True)):
            if os.path.isdir(m):
                out.extend(_from_dir(m, root, fmt))
            elif os.path.isfile(m):
                out.extend(_from_file(m, root, fmt, named=False))
        if not out:
            raise FileNotFoundError(f"input pattern {inp!r} matches no readable file ({_KNOWN})")
        return out
    if not os.path.exists(inp):
        raise FileNotFoundError(f"input not found: {inp}")
    if os.path.isfile(inp):
        return _from_file(inp, os.path.dirname(os.path.abspath(inp)), fmt, named=True)
    out = _from_dir(inp, os.path.abspath(inp), fmt)
    if not out:
        raise FileNotFoundError(f"input directory {inp!r} holds no readable file ({_KNOWN})")
    return out


_KNOWN = ".jsonl/.json/.ndjson[.gz|.zst], .parquet, .warc/.wet[.gz], or a directory of .txt files"


def _glob_root(pattern: str) -> str:
    parts = Path(pattern).parts
    fixed = []
    for p in parts:
        if glob.has_magic(p):
            break
        fixed.append(p)
    return os.path.abspath(os.path.join(*fixed) if fixed else ".")


def _from_file(path: str, root: str, fmt: str, named: bool) -> list[_Input]:
    detected = detect_format(path) or ("text" if is_text_file(os.path.basename(path)) else None)
    if fmt == "auto":
        if detected is None:
            if named:
                raise InputError(
                    path, "unknown_format", "cannot tell the format from the file name; set the input format"
                )
            return []
        fmt = detected
    elif not named and detected not in (None, fmt):
        return []  # a pattern also matched files of another format
    return [_Input(os.path.abspath(path), os.path.abspath(root), fmt)]


def _from_dir(d: str, root: str, fmt: str) -> list[_Input]:
    d = os.path.abspath(d)
    files = _walk(d)
    data = [f for f in files if (k := detect_format(f)) and (fmt == "auto" or k == fmt)]
    texts = [f for f in files if is_text_file(os.path.basename(f))]
    if fmt == "text" or (fmt == "auto" and not data and texts):
        if not texts:
            return []
        # The directory itself is the input; its name starts the ids ("notes/a.txt").
        return [_Input(d, os.path.dirname(d) if d == root else root, "text")]
    if texts and fmt == "auto":
        log.warning("%s: %d .txt file(s) ignored next to %d data file(s)", d, len(texts), len(data))
    return [_Input(f, root, detect_format(f) if fmt == "auto" else fmt) for f in data]


def _walk(d: str) -> list[str]:
    """Files below d; names starting with "." or "_" are bookkeeping (hidden files, _SUCCESS,
    a balanced run's _counts/), skipped as Spark and Hive do."""
    out = []
    for cur, dirs, files in os.walk(d):
        dirs[:] = sorted(x for x in dirs if not x.startswith((".", "_")))
        out.extend(os.path.join(cur, f) for f in files if not f.startswith((".", "_")))
    return sorted(out)


def _unique_sources(inputs: list[_Input]) -> dict[str, str]:
    """path -> source; colliding sources get leading directories of their path added."""
    src = {x.path: x.source for x in inputs}
    for _ in range(64):
        by: dict[str, list[str]] = {}
        for p, s in src.items():
            by.setdefault(s.lower(), []).append(p)
        clashes = [ps for ps in by.values() if len(ps) > 1]
        if not clashes:
            break
        for ps in clashes:
            for p in ps:
                parts = Path(p).parts
                n = len(Path(src[p]).parts) + 1
                src[p] = Path(*parts[-n:]).as_posix() if n < len(parts) else Path(p).as_posix()
    return src


def _safe_id(source: str) -> str:
    """Filesystem-safe, readable shard name; a hash keeps lossy or long names unique."""
    s = _UNSAFE.sub("_", source.replace("/", "__")).lstrip(".-")
    if s != source.replace("/", "__") or len(s) > 120 or not s:
        s = f"{s[:100]}-{hashlib.sha1(source.encode()).hexdigest()[:10]}".lstrip("-")
    return s


# -- units -----------------------------------------------------------------------------------
def _units_for(x: _Input, source: str, opts: ReadOptions) -> list[WorkUnit]:
    base = _safe_id(source)
    if x.fmt == "text":
        files = list_text_files(x.path)
        units, start, acc = [], 0, 0
        for i, f in enumerate(files):
            acc += f.stat().st_size
            if acc >= opts.split_bytes or i == len(files) - 1:
                units.append(
                    WorkUnit(
                        f"{base}-{len(units):05d}", x.path, source, "text", start=start, end=i + 1, size=acc
                    )
                )
                start, acc = i + 1, 0
        return units
    size = os.path.getsize(x.path)
    if x.fmt == "jsonl" and size > opts.split_bytes and not is_compressed(x.path):
        pts = _jsonl_split_points(x.path, size, opts.split_bytes)
        ends = [p[0] for p in pts[1:]] + [size]
        return [
            WorkUnit(f"{base}-{k:05d}", x.path, source, "jsonl", start=s, end=e, first_line=line, size=e - s)
            for k, ((s, line), e) in enumerate(zip(pts, ends, strict=True))
        ]
    if x.fmt == "parquet" and size > opts.split_bytes:
        groups = _parquet_groups(x.path, opts.split_bytes)
        if len(groups) > 1:
            return [
                WorkUnit(f"{base}-{k:05d}", x.path, source, "parquet", start=a, end=b, size=nbytes)
                for k, (a, b, nbytes) in enumerate(groups)
            ]
    return [WorkUnit(f"{base}-00000", x.path, source, x.fmt, size=size)]


def _jsonl_split_points(path: str, size: int, split: int) -> list[tuple[int, int]]:
    """[(byte offset, first line number)] of each piece, every cut at a line start."""
    points = [(0, 1)]
    pos, newlines = 0, 0  # newlines counted in [0, pos)
    with open(path, "rb") as f:
        while pos + split < size:
            target, last = pos + split, b"\n"
            while pos < target:
                chunk = f.read(min(target - pos, _SCAN))
                newlines += chunk.count(b"\n")
                pos += len(chunk)
                last = chunk[-1:]
            if last != b"\n":  # finish the line that straddles the target
                while True:
                    chunk = f.read(min(2**20, size - pos))
                    if not chunk:
                        return points
                    i = chunk.find(b"\n")
                    if i >= 0:
                        pos += i + 1
                        newlines += 1
                        f.seek(pos)
                        break
                    pos += len(chunk)
            if pos >= size:
                break
            points.append((pos, newlines + 1))
    return points


def _parquet_groups(path: str, split: int) -> list[tuple[int, int, int]]:
    """[(first row group, end row group, compressed bytes)] of about `split` bytes each."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from babelmill.pipeline.io.readers.parquet import row_group_sizes

    try:
        sizes = row_group_sizes(pq.ParquetFile(path).metadata)
    except (pa.ArrowException, OSError):
        return []  # unreadable footer: one unit, whose reader reports corrupt_parquet
    groups, start, acc = [], 0, 0
    for i, s in enumerate(sizes):
        acc += s
        if acc >= split or i == len(sizes) - 1:
            groups.append((start, i + 1, acc))
            start, acc = i + 1, 0
    return groups
