"""WARC/WET reader: which records are documents, extraction, url field, damaged archives."""

from __future__ import annotations

import io

import pytest
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from babelmill.pipeline.io.readers import InputError

ARTICLE = (
    "<html><head><title>Report</title></head><body><nav>Home | About | Contact</nav>"
    "<article><h1>Water report</h1>"
    + "<p>The committee published its annual report on the quality of water in the northern rivers. </p>" * 4
    + "</article><footer>Copyright</footer></body></html>"
).encode()




def http(ctype="text/html; charset=utf-8", status="200 OK"):
    return StatusAndHeaders(status, [("Content-Type", ctype)], protocol="HTTP/1.1")


def write_warc(path, records, gz=True):
    with open(path, "wb") as f:
        w = WARCWriter(f, gzip=gz)
        for rec in records:
            w.write_record(rec(w))
    return path


def response(url, body=ARTICLE, **kw):
    return lambda w: w.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=http(**kw))


def warcinfo(w):
    return w.create_warcinfo_record("x.warc.gz", {"software": "test"})


def request(w):
    return w.create_warc_record(
        "http://example.org/report", "request", payload=io.BytesIO(b"GET /report HTTP/1.1\r\n\r\n")
    )


def conversion(url, text):
    return lambda w: w.create_warc_record(
        url, "conversion", payload=io.BytesIO(text), warc_content_type="text/plain"
    )


def test_html_response_becomes_one_document_with_url(read_all, tmp_path):
    p = write_warc(
        tmp_path / "x.warc.gz",
        [
            warcinfo,
            request,
            response("http://example.org/report"),
            response("http://example.org/logo.png", body=b"\x89PNG...", ctype="image/png"),
            response("http://example.org/old", body=b"<html>moved</html>", status="301 Moved Permanently"),
        ],
    )
    docs, rejects = read_all(p, extra_fields=("url", "date"))
    assert not rejects  # non-documents (warcinfo, request, image, redirect) are not counted
    (d,) = docs
    assert "annual report on the quality of water" in d["text"]
    assert "Home | About" not in d["text"] and "<p>" not in d["text"]
    assert d["url"] == "http://example.org/report" and d["date"]
    assert d["id"].startswith("<urn:uuid:") and d["source"] == "x.warc.gz"
    assert d["offset"] > 0 and p.read_bytes()[d["offset"] : d["offset"] + 2] == b"\x1f\x8b"  # a record start


def test_wet_conversion_records_are_text_as_is(read_all, tmp_path):
    p = write_warc(
        tmp_path / "y.warc.wet.gz",
        [
            warcinfo,
            conversion("http://a.example/", "Plain extracted text.\nSecond line: ünïcode.".encode()),
            conversion("http://b.example/", b"   \n "),
            conversion("http://c.example/", b"caf\xe9"),
        ],
    )
    docs, rejects = read_all(p, extra_fields=("url",))
    assert [(d["text"], d["url"]) for d in docs] == [
        ("Plain extracted text.\nSecond line: ünïcode.", "http://a.example/")
    ]
    assert [r["reason"] for r in rejects] == ["empty_text", "bad_utf8"]
    assert all(r["id"].startswith("<urn:uuid:") and r["offset"] > 0 for r in rejects)


def test_page_without_main_text_is_no_text_extracted(read_all, tmp_path):
    body = b"<html><head><title>Only a title</title></head><body><script>var x = 1;</script></body></html>"
    p = write_warc(tmp_path / "e.warc", [response("http://e.org/", body=body)], gz=False)
    docs, rejects = read_all(p)
    assert docs == [] and [r["reason"] for r in rejects] == ["no_text_extracted"]
    assert "<script>var x" in rejects[0]["text"]
    with pytest.raises(InputError, match=r"e\.warc:@0: no_text_extracted"):
        read_all(p, strict=True)


@pytest.mark.parametrize("gz", [True, False])
def test_truncated_warc_keeps_records_before_the_damage(read_all, tmp_path, gz):
    p = write_warc(
        tmp_path / ("t.warc.gz" if gz else "t.warc"), [response(f"http://e.org/{i}") for i in range(4)], gz=gz
    )
    full = p.read_bytes()
    docs, _ = read_all(p)
    last = docs[-1]["offset"]
    p.write_bytes(full[: last + 150])  # cut inside the last record's headers/payload
    docs, rejects = read_all(p, extra_fields=("url",))
    assert [d["url"] for d in docs] == [f"http://e.org/{i}" for i in range(3)]
    (r,) = rejects
    assert (r["reason"], r["offset"]) == ("warc_error", last)
    with pytest.raises(InputError) as ei:
        read_all(p, strict=True)
    assert ei.value.reason == "warc_error" and ei.value.offset == last and p.name in str(ei.value)


def test_not_a_warc_at_all(read_all, tmp_path):
    p = tmp_path / "junk.warc"
    p.write_bytes(b"hello world\n" * 10)
    docs, rejects = read_all(p)
    assert docs == [] and [(r["reason"], r["offset"]) for r in rejects] == [("warc_error", 0)]


def test_extractor_crash_is_html_extract_failed(read_all, tmp_path, monkeypatch):
    import trafilatura

    def boom(*a, **k):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(trafilatura, "extract", boom)
    p = write_warc(
        tmp_path / "c.warc.gz", [response("http://e.org/a"), conversion("http://e.org/b", b"wet text")]
    )
    docs, rejects = read_all(p)
    assert [d["text"] for d in docs] == ["wet text"]  # one bad page does not stop the file
    assert [r["reason"] for r in rejects] == ["html_extract_failed"] and "RecursionError" in rejects[0][
        "detail"
    ]


def test_declared_charset_is_honoured(read_all, tmp_path):
    body = ARTICLE.replace(b"committee", "comité".encode("cp1252"))
    p = write_warc(
        tmp_path / "l.warc.gz",
        [response("http://e.org/", body=body, ctype="text/html; charset=windows-1252")],
    )
    (d,), _ = read_all(p)
    assert "comité published" in d["text"]
