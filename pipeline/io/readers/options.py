"""What a reader is asked to do (ReadOptions), on which slice of input (WorkUnit), and the
error it raises in strict mode (InputError, naming file and line)."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

FORMATS = ("jsonl", "parquet", "warc", "text")


@dataclass(frozen=True)
class ReadOptions:
    format: str = "auto"
    text_field: str = "text"
    id_field: str | None = "id"
    extra_fields: tuple[str, ...] = ()
    batch_size: int = 1000
    max_doc_bytes: int = 10_000_000
    split_bytes: int = 64 * 2**20
    strict: bool = False
    html_extractor: str = "trafilatura"


@dataclass(frozen=True)
class WorkUnit:
    """A slice of one input that one worker reads start to end.

    jsonl: byte range [start, end) aligned to line starts, `first_line` its first line number;
    parquet: row groups [start, end); text: file indices [start, end) of a directory listing.
    """

    unit_id: str
    path: str
    source: str
    format: str
    start: int = 0
    end: int | None = None
    first_line: int = 1
    size: int = 0

    def fingerprint(self) -> str:
        """Cheap and stable: size, mtime and hashes of the first and last MiB of the range."""
        h = hashlib.sha256()
        st = os.stat(self.path)
        h.update(f"{self.format}|{self.start}|{self.end}|{st.st_size}|{st.st_mtime_ns}".encode())
        if os.path.isfile(self.path):
            lo = self.start if self.format == "jsonl" else 0
            hi = (self.end if (self.format == "jsonl" and self.end is not None) else st.st_size)
            with open(self.path, "rb") as f:
                f.seek(lo)
                h.update(f.read(min(2**20, hi - lo)))
                if hi - lo > 2**20:
                    f.seek(max(lo, hi - 2**20))
                    h.update(f.read(min(2**20, hi - lo)))
        else:  # a directory of text files: names and sizes
            for name in sorted(os.listdir(self.path)):
                p = os.path.join(self.path, name)
                if os.path.isfile(p):
                    s = os.stat(p)
                    h.update(f"{name}|{s.st_size}|{s.st_mtime_ns}".encode())
        return h.hexdigest()[:24]


class InputError(ValueError):
    """Bad input in strict mode. str(e) == "<path>:<line or offset>: <reason>: <detail>"."""

    def __init__(self, path: str, reason: str, detail: str = "", line: int | None = None, offset: int | None = None):
        self.path, self.reason, self.detail, self.line, self.offset = path, reason, detail, line, offset
        where = f"{path}:{line}" if line is not None else (f"{path}:@{offset}" if offset is not None else path)
        super().__init__(f"{where}: {reason}: {detail}" if detail else f"{where}: {reason}")
