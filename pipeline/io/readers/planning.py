"""Turn user inputs (files, directories, globs) into deterministic work units.

Plain JSONL is split at line starts every `split_bytes` (one streaming pass also counts
newlines, so every unit knows the true line number it starts at and errors name real lines);
Parquet is split by row groups; compressed and WARC files are one unit each (not seekable).
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
from pathlib import Path

from babelmill.pipeline.io.readers.jsonl import is_compressed
from babelmill.pipeline.io.readers.options import InputError, ReadOptions, WorkUnit
from babelmill.pipeline.io.readers.textdir import TEXT_SUFFIXES, list_text_files

_EXT = [
    ((".jsonl", ".json", ".ndjson", ".jsonl.gz", ".json.gz", ".ndjson.gz", ".jsonl.zst", ".json.zst", ".jsonl.zstd"), "jsonl"),
    ((".parquet", ".pq"), "parquet"),
    ((".warc", ".warc.gz", ".wet", ".wet.gz", ".arc", ".arc.gz"), "warc"),
]
_GLOB = re.compile(r"[*?\[]")


def detect_format(path: str) -> str | None:
    low = path.lower()
    for exts, fmt in _EXT:
        if low.endswith(exts):
            return fmt
    return None


def _safe_id(source: str) -> str:
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", source.replace(os.sep, "__")).strip("._") or "input"
    if len(s) > 120:
        s = s[:100] + "-" + hashlib.sha1(source.encode()).hexdigest()[:12]
    return s


def _expand(inp: str, fmt: str) -> list[tuple[str, Path, str]]:
    """(absolute path, root, format) for one user input."""
    if _GLOB.search(inp):
        root = Path(inp.split("*")[0].split("?")[0].split("[")[0])
        root = root if root.is_dir() else root.parent
        paths = sorted(glob.glob(inp, recursive=True))
    else:
        p = Path(inp)
        if not p.exists():
            raise FileNotFoundError(f"input not found: {inp}")
        if p.is_file():
            return [(str(p.resolve()), p.parent.resolve(), fmt if fmt != "auto" else (detect_format(str(p)) or _unknown(p)))]
        root, paths = p, sorted(str(q) for q in p.rglob("*") if q.is_file())
    out = []
    data_files = [q for q in paths if Path(q).is_file() and (fmt != "auto" and fmt != "text" or detect_format(q))]
    if fmt == "text" or (fmt == "auto" and not data_files and any(q.lower().endswith(TEXT_SUFFIXES) for q in paths)):
        return [(str(Path(root).resolve()), Path(root).resolve().parent, "text")]
    for q in data_files:
        out.append((str(Path(q).resolve()), Path(root).resolve(), fmt if fmt != "auto" else detect_format(q)))
    if not out:
        raise FileNotFoundError(f"input {inp!r} matches no readable file (.jsonl[.gz|.zst], .parquet, .warc/.wet[.gz], text dirs)")
    return out


def _unknown(p: Path):
    raise InputError(str(p), "unknown_format", "cannot tell the format from the extension; set input.format")


def _jsonl_split_points(path: str, size: int, split: int) -> list[tuple[int, int]]:
    """[(byte offset, first line number)] of each piece, cut at line starts."""
    points = [(0, 1)]
    pos, lines, target = 0, 0, split
    with open(path, "rb") as f:
        while target < size:
            f.seek(pos)
            remaining = target - pos
            while remaining > 0:
                chunk = f.read(min(remaining, 16 * 2**20))
                if not chunk:
                    break
                lines += chunk.count(b"\n")
                remaining -= len(chunk)
            rest = f.readline()  # finish the line that straddles the target
            boundary = target + len(rest)
            lines += rest.endswith(b"\n")
            if boundary >= size:
                break
            points.append((boundary, lines + 1))
            pos, target = boundary, boundary + split
    return points


def _units_for(path: str, root: Path, fmt: str, opts: ReadOptions) -> list[WorkUnit]:
    source = os.path.relpath(path, root) if fmt != "text" else Path(path).name
    base = _safe_id(source)
    size = os.path.getsize(path) if fmt != "text" else 0
    if fmt == "jsonl" and not is_compressed(path) and size > opts.split_bytes:
        pts = _jsonl_split_points(path, size, opts.split_bytes)
        ends = [p[0] for p in pts[1:]] + [size]
        return [
            WorkUnit(f"{base}-{k:05d}", path, source, fmt, start=s, end=e, first_line=ln, size=e - s)
            for k, ((s, ln), e) in enumerate(zip(pts, ends, strict=True))
        ]
    if fmt == "parquet" and size > opts.split_bytes:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            md = pq.ParquetFile(path).metadata
        except (pa.ArrowException, OSError):
            md = None
        if md is not None and md.num_row_groups > 1:
            groups, cur, cur_bytes = [], [], 0
            for i in range(md.num_row_groups):
                cur.append(i)
                cur_bytes += md.row_group(i).total_byte_size
                if cur_bytes >= opts.split_bytes:
                    groups.append(cur)
                    cur, cur_bytes = [], 0
            if cur:
                groups.append(cur)
            per = size / md.num_row_groups
            return [
                WorkUnit(f"{base}-{k:05d}", path, source, fmt, start=g[0], end=g[-1] + 1, size=int(per * len(g)))
                for k, g in enumerate(groups)
            ]
    if fmt == "text":
        files = list_text_files(path)
        sizes = [f.stat().st_size for f in files]
        units, start, acc = [], 0, 0
        for i, s in enumerate(sizes):
            acc += s
            if acc >= opts.split_bytes or i == len(sizes) - 1:
                units.append(WorkUnit(f"{base}-{len(units):05d}", path, source, fmt, start=start, end=i + 1, size=acc))
                start, acc = i + 1, 0
        return units
    return [WorkUnit(f"{base}-00000", path, source, fmt, size=size)]


def plan_units(inputs: list[str], opts: ReadOptions) -> list[WorkUnit]:
    if not inputs:
        raise FileNotFoundError("no input given")
    seen, units = set(), []
    for inp in inputs:
        for path, root, fmt in _expand(inp, opts.format):
            if path in seen:
                continue
            seen.add(path)
            units.extend(_units_for(path, root, fmt, opts))
    return units
