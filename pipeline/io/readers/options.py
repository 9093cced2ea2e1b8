"""What a reader is asked to do (ReadOptions), on which slice of input (WorkUnit), and the
error it raises in strict mode (InputError, naming file and line)."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Literal

from babelmill.errors import BabelmillError

FORMATS = ("jsonl", "parquet", "warc", "text")
#: What to do with a symlink (file or directory) inside an input folder that resolves outside
#: it: "refuse" (skip it, reported; an error when strict), "warn" (read it, with a warning),
#: "follow" (read it). Links that stay inside the input folder are always fine.
SYMLINK_POLICIES = ("refuse", "warn", "follow")
HTML_EXTRACTORS = ("trafilatura",)

#: Reject reasons a reader can emit (stage "read"), in report order.
READ_REASONS = (
    "bad_json",
    "not_an_object",
    "bad_utf8",
    "missing_text",
    "empty_text",
    "doc_too_large",
    "corrupt_compressed",
    "corrupt_parquet",
    "html_extract_failed",
    "no_text_extracted",
    "warc_error",
)

_MIB = 2**20


@dataclass(frozen=True)
class ReadOptions:
    format: str = "auto"
    text_field: str = "text"
    id_field: str | None = "id"
    extra_fields: tuple[str, ...] = ()
    batch_size: int = 1000
    max_doc_bytes: int = 10_000_000
    split_bytes: int = 64 * _MIB
    strict: bool = False
    html_extractor: str = "trafilatura"
    symlinks: Literal["refuse", "warn", "follow"] = "refuse"

    def __post_init__(self) -> None:
        # A list given by a caller would make the options unhashable and the columns order-unstable.
        object.__setattr__(self, "extra_fields", tuple(dict.fromkeys(self.extra_fields)))
        if self.format not in ("auto", *FORMATS):
            raise ValueError(f"unknown input format {self.format!r} (known: auto, {', '.join(FORMATS)})")
        if self.html_extractor not in HTML_EXTRACTORS:
            raise ValueError(
                f"unknown html_extractor {self.html_extractor!r} (known: {', '.join(HTML_EXTRACTORS)})"
            )
        if self.symlinks not in SYMLINK_POLICIES:
            raise ValueError(
                f"unknown symlinks policy {self.symlinks!r} (known: {', '.join(SYMLINK_POLICIES)})"
            )
        for name in ("batch_size", "max_doc_bytes", "split_bytes"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class WorkUnit:
    """A slice of one input that one worker reads start to end.

    jsonl: byte range [start, end) aligned to line starts, `first_line` its first line number;
    parquet: row groups [start, end); text: file indices [start, end) of the sorted listing.
    """

    unit_id: str
    path: str
    source: str
    format: str
    start: int = 0
    end: int | None = None
    first_line: int = 1
    size: int = 0
    #: text units: whether the directory listing includes symlinks resolving outside it
    follow_links: bool = False

    def fingerprint(self) -> str:
        """Cheap and stable: size, mtime and hashes of the first and last MiB of the covered range
        (no full read, so resuming a run over terabytes stays instant)."""
        h = hashlib.sha256(f"{self.format}|{self.start}|{self.end}|{self.first_line}".encode())
        if self.format == "text":
            from babelmill.pipeline.io.readers.textdir import list_text_files

            root = os.path.abspath(self.path)
            for p in list_text_files(root, self.follow_links)[self.start : self.end]:
                st = p.stat()
                h.update(f"|{os.path.relpath(p, root)}|{st.st_size}|{st.st_mtime_ns}".encode())
            return h.hexdigest()[:24]
        st = os.stat(self.path)
        h.update(f"|{st.st_size}|{st.st_mtime_ns}".encode())
        # Byte ranges are only meaningful for plain JSONL; other units cover the whole file.
        ranged = self.format == "jsonl" and (self.start or self.end is not None)
        lo = self.start if ranged else 0
        hi = min(self.end, st.st_size) if ranged and self.end is not None else st.st_size
        with open(self.path, "rb") as f:
            f.seek(lo)
            h.update(f.read(min(_MIB, hi - lo)))
            if hi - lo > _MIB:
                f.seek(max(lo + _MIB, hi - _MIB))
                h.update(f.read(hi - f.tell()))
        return h.hexdigest()[:24]


class InputError(BabelmillError, ValueError):
    """Bad input (strict mode, or an input that cannot be read at all).

    str(e) == "<path>:<line>: <reason>: <detail>"; a byte offset or row index is written
    "<path>:@<offset>" so it is never mistaken for a line number.
    """

    def __init__(
        self, path: str, reason: str, detail: str = "", line: int | None = None, offset: int | None = None
    ):
        self.path, self.reason, self.detail, self.line, self.offset = path, reason, detail, line, offset
        where = (
            f"{path}:{line}" if line is not None else (f"{path}:@{offset}" if offset is not None else path)
        )
        super().__init__(f"{where}: {reason}: {detail}" if detail else f"{where}: {reason}")

    def __reduce__(self):  # survive pickling across engine workers (Ray, Beam)
        return (type(self), (self.path, self.reason, self.detail, self.line, self.offset))


class MissingInputError(InputError, FileNotFoundError):
    """An input path that does not exist, or that holds nothing readable: an InputError (a
    one-line message, no traceback, from the CLI) that callers catching FileNotFoundError
    still catch."""
