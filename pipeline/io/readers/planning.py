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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from babelmill.pipeline.io.readers.compression import COMPRESSED_SUFFIXES, is_compressed
from babelmill.pipeline.io.readers.options import InputError, MissingInputError, ReadOptions, WorkUnit
from babelmill.pipeline.io.readers.textdir import is_text_file, is_within, list_text_files

log = logging.getLogger(__name__)

_JSONL_EXT = tuple(b + c for b in (".jsonl", ".json", ".ndjson") for c in ("", *COMPRESSED_SUFFIXES))
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


@dataclass(frozen=True)
class SkippedInput:
    """A file (or directory link) found in an input that is not read, and why."""

    path: str  # absolute path
    reason: str  # short code, see SKIP_REASONS
    detail: str  # human-readable sentence


#: Reasons a found file is not read. All are logged; with `strict`, those in STRICT_SKIPS
#: are an error instead. (Files inside an excluded directory, the run's own output, are not
#: listed one by one: they are ours.)
SKIP_REASONS = (
    "unsupported_format",  # no reader for this file name
    "text_beside_data",  # .txt files next to data files (a folder is either data or text)
    "other_format",  # a data file of another format than the one the input was told to be
    "symlink_outside_input",  # a symlink resolving outside the input folder (symlinks="refuse")
    "broken_symlink",  # a symlink to nothing
    "inside_run_dir",  # a symlink into an excluded (output) directory
)
STRICT_SKIPS = frozenset(
    {"unsupported_format", "text_beside_data", "symlink_outside_input", "broken_symlink"}
)
_LOG_FIRST = 20


@dataclass
class InputPlan:
    units: list[WorkUnit]
    skipped: list[SkippedInput]


@dataclass
class _Input:
    path: str  # absolute
    root: str  # absolute; `source` is relative to it
    fmt: str

    @property
    def source(self) -> str:
        rel = os.path.relpath(self.path, self.root)
        return Path(self.path).name if rel == "." else Path(rel).as_posix()


def plan_units(inputs: list[str], opts: ReadOptions, exclude: Sequence[str] = ()) -> list[WorkUnit]:
    """The work units of `inputs` (see `plan_inputs`, which also says what was skipped)."""
    return plan_inputs(inputs, opts, exclude).units


def plan_inputs(inputs, opts: ReadOptions, exclude: Sequence[str] = ()) -> InputPlan:
    """Work units over `inputs` (files, directories, glob patterns), and every found file that
    will not be read (`skipped`, each logged as a warning; with `opts.strict`, most are an
    InputError instead). Nothing under a directory of `exclude` (the run's own output) is
    planned; an input inside one is an InputError."""
    if isinstance(inputs, str | os.PathLike):
        inputs = [inputs]
    if not inputs:
        raise MissingInputError("<no input>", "input_not_found", "no input given")
    planner = _Planner(opts, exclude)
    found: dict[str, _Input] = {}
    for inp in inputs:
        for x in planner.expand(str(inp)):
            found.setdefault(os.path.realpath(x.path), x)  # the same file twice is read once
    skipped = list({s.path: s for s in planner.skipped}.values())
    _report(skipped, planner.excluded, opts)
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
    return InputPlan(units, skipped)


def _report(skipped: list[SkippedInput], excluded: dict[str, int], opts: ReadOptions) -> None:
    for d, n in excluded.items():
        log.info("%s: %d file(s) not read: this run's own output directory", d, n)
    if opts.strict:
        for s in skipped:
            if s.reason in STRICT_SKIPS:
                raise InputError(s.path, s.reason, f"{s.detail} (strict: every input file must be read)")
    for s in skipped[:_LOG_FIRST]:
        log.warning("input not read: %s: %s: %s", s.path, s.reason, s.detail)
    if len(skipped) > _LOG_FIRST:
        log.warning("... and %d more input file(s) not read", len(skipped) - _LOG_FIRST)


# -- expansion -------------------------------------------------------------------------------
class _Planner:
    def __init__(self, opts: ReadOptions, exclude: Sequence[str]):
        self.opts = opts
        self.fmt = opts.format
        self.exclude = [os.path.realpath(e) for e in exclude]
        self.skipped: list[SkippedInput] = []
        self.excluded: dict[str, int] = {}  # excluded dir met -> files not planned under it

    def skip(self, path: str, reason: str, detail: str) -> None:
        self.skipped.append(SkippedInput(os.path.abspath(path), reason, detail))

    def _excluded_dir(self, real: str) -> str | None:
        return next((e for e in self.exclude if is_within(real, e)), None)

    def _check_not_excluded(self, inp: str, real: str) -> None:
        for e in self.exclude:
            if is_within(real, e):
                raise InputError(
                    inp,
                    "input_inside_output",
                    f"this input is inside the run's output directory {e}: a run must not read its own output",
                )

    def expand(self, inp: str) -> list[_Input]:
        if glob.has_magic(inp):
            root = _glob_root(inp)
            self._check_not_excluded(inp, os.path.realpath(root))
            out: list[_Input] = []
            n_skipped = len(self.skipped)
            for m in sorted(glob.glob(inp, recursive=True)):
                real = os.path.realpath(m)
                if (e := self._excluded_dir(real)) is not None:
                    if os.path.isfile(m):
                        self.excluded[e] = self.excluded.get(e, 0) + 1
                    continue
                if not self._link_ok(m, real, root):
                    continue
                if os.path.isdir(m):
                    out.extend(self.from_dir(m, root))
                elif os.path.isfile(m):
                    out.extend(self.from_file(m, root, named=False))
            if not out:
                raise MissingInputError(
                    inp,
                    "input_not_found",
                    f"pattern matches no readable file ({_KNOWN}){self._why(n_skipped)}",
                )
            return out
        if not os.path.lexists(inp):
            raise MissingInputError(inp, "input_not_found", "no such file or directory")
        if not os.path.exists(inp):
            raise MissingInputError(inp, "input_not_found", f"broken symlink (to {os.readlink(inp)})")
        self._check_not_excluded(inp, os.path.realpath(inp))
        if os.path.isfile(inp):
            return self.from_file(inp, os.path.dirname(os.path.abspath(inp)), named=True)
        n_skipped = len(self.skipped)
        out = self.from_dir(inp, os.path.abspath(inp))
        if not out:
            raise MissingInputError(
                inp, "input_not_found", f"directory holds no readable file ({_KNOWN}){self._why(n_skipped)}"
            )
        return out

    def _why(self, n_skipped: int) -> str:
        new = self.skipped[n_skipped:]
        if not new:
            return ""
        names = ", ".join(Path(s.path).name for s in new[:5]) + (", ..." if len(new) > 5 else "")
        return f"; {len(new)} file(s) not read: {names}"

    def _link_ok(self, path: str, real: str, root: str) -> bool:
        """Whether a found path (maybe reached through symlinks) may be read; reports it if not."""
        root_real = os.path.realpath(root)
        if is_within(real, root_real):
            return True
        if not os.path.exists(path):
            self.skip(path, "broken_symlink", f"symlink to {os.readlink(path)}, which does not exist")
            return False
        what = "directory symlink" if os.path.isdir(path) else "symlink"
        if self.opts.symlinks == "refuse":
            self.skip(
                path,
                "symlink_outside_input",
                f"{what} to {real}, outside the input folder {root_real}: not followed "
                "(input.symlinks: warn or follow to read it)",
            )
            return False
        if self.opts.symlinks == "warn":
            log.warning("%s: %s to %s, outside the input folder %s: followed", path, what, real, root_real)
        return True

    def from_file(self, path: str, root: str, named: bool) -> list[_Input]:
        fmt = self.fmt
        name = os.path.basename(path)
        detected = detect_format(path) or ("text" if is_text_file(name) else None)
        if fmt == "auto":
            if detected is None:
                if named:
                    raise InputError(
                        path,
                        "unknown_format",
                        f"cannot tell the format from the file name; set the input format ({_KNOWN})",
                    )
                if not name.startswith((".", "_")):
                    self.skip(path, "unsupported_format", _unsupported(name))
                return []
            fmt = detected
        elif not named and detected not in (None, fmt):
            self.skip(path, "other_format", f"a {detected} file; the input format is set to {fmt}")
            return []  # a pattern also matched files of another format
        return [_Input(os.path.abspath(path), os.path.abspath(root), fmt)]

    def from_dir(self, d: str, root: str) -> list[_Input]:
        fmt = self.fmt
        d = os.path.abspath(d)
        files = self.walk(d, root)
        kinds = {f: detect_format(f) for f in files}
        texts = [f for f in files if is_text_file(os.path.basename(f))]
        data = [f for f in files if kinds[f] and (fmt == "auto" or kinds[f] == fmt)]
        text_mode = fmt == "text" or (fmt == "auto" and not data and texts)
        for f in files:
            name = os.path.basename(f)
            if f in data or (text_mode and f in texts):
                continue
            if kinds[f]:
                self.skip(f, "other_format", f"a {kinds[f]} file; the input format is set to {fmt}")
            elif f in texts:
                self.skip(
                    f,
                    "text_beside_data",
                    f"a text file next to {len(data)} data file(s): a folder is read as data files "
                    "or, holding only .txt files, as one document per file",
                )
            else:
                self.skip(f, "unsupported_format", _unsupported(name))
        if text_mode:
            if not texts:
                return []
            # The directory itself is the input; its name starts the ids ("notes/a.txt").
            return [_Input(d, os.path.dirname(d) if d == root else root, "text")]
        return [_Input(f, root, kinds[f] if fmt == "auto" else fmt) for f in data]

    def walk(self, d: str, root: str) -> list[str]:
        """Files below d; names starting with "." or "_" are bookkeeping (hidden files, _SUCCESS,
        a balanced run's _counts/), skipped as Spark and Hive do. Symlinks resolving outside
        `root` follow `symlinks` (os.walk itself never descends a directory symlink: links to
        directories inside the root are not descended, their files being found where they are);
        excluded directories are pruned."""
        out: list[str] = []
        seen: set[str] = set()
        self._walk(d, os.path.realpath(root), out, seen)
        return sorted(out)

    def _walk(self, d: str, root_real: str, out: list[str], seen: set[str]) -> None:
        real_d = os.path.realpath(d)
        if real_d in seen:
            return  # a link cycle
        seen.add(real_d)
        for cur, dirs, files in os.walk(d):
            keep = []
            for x in sorted(dirs):
                if x.startswith((".", "_")):
                    continue
                p = os.path.join(cur, x)
                real = os.path.realpath(p)
                if (e := self._excluded_dir(real)) is not None:
                    if not os.path.islink(p):
                        self.excluded[e] = self.excluded.get(e, 0) + sum(len(fs) for _, _, fs in os.walk(p))
                    else:
                        self.skip(
                            p, "inside_run_dir", f"directory symlink into this run's output directory {e}"
                        )
                    continue
                if os.path.islink(p):
                    if not is_within(real, root_real) and self._link_ok(p, real, root_real):
                        self._walk(p, root_real, out, seen)  # os.walk would not descend it
                    continue
                keep.append(x)
            dirs[:] = keep
            for f in files:
                if f.startswith((".", "_")):
                    continue
                p = os.path.join(cur, f)
                real = os.path.realpath(p)
                if (e := self._excluded_dir(real)) is not None:
                    if os.path.islink(p):
                        self.skip(p, "inside_run_dir", f"symlink into this run's output directory {e}")
                    else:
                        self.excluded[e] = self.excluded.get(e, 0) + 1
                    continue
                if os.path.islink(p) and not self._link_ok(p, real, root_real):
                    continue
                out.append(p)


_KNOWN = (
    ".jsonl/.json/.ndjson[.gz|.zst|.bz2|.xz], .parquet/.pq, .warc/.wet/.arc[.gz], "
    "or a directory of .txt files"
)


def _unsupported(name: str) -> str:
    low = name.lower()
    if low.endswith((".warc", ".wet", ".arc")) or re.search(r"\.(warc|wet|arc)\.(bz2|xz|zst|zstd)$", low):
        return "WARC/WET files are read plain or gzip-compressed only (warcio): recompress it as .gz"
    return f"no reader for this file name (readable: {_KNOWN})"


def _glob_root(pattern: str) -> str:
    parts = Path(pattern).parts
    fixed = []
    for p in parts:
        if glob.has_magic(p):
            break
        fixed.append(p)
    return os.path.abspath(os.path.join(*fixed) if fixed else ".")


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
        follow = opts.symlinks != "refuse"
        files = list_text_files(x.path, follow)
        units, start, acc = [], 0, 0
        for i, f in enumerate(files):
            acc += f.stat().st_size
            if acc >= opts.split_bytes or i == len(files) - 1:
                units.append(
                    WorkUnit(
                        f"{base}-{len(units):05d}",
                        x.path,
                        source,
                        "text",
                        start=start,
                        end=i + 1,
                        size=acc,
                        follow_links=follow,
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
