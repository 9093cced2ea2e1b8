"""Readers: every format, split planning, and every kind of bad input, quarantined or strict."""

from __future__ import annotations

import gzip
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from babelmill.pipeline.io.readers import InputError, ReadOptions, plan_units, read_unit


def read_all(path, **kw):
    opts = ReadOptions(**kw)
    docs, rejects = [], []
    for unit in plan_units([str(path)], opts):
        for d, r in read_unit(unit, opts):
            docs.extend(d.to_pylist())
            rejects.extend(r.to_pylist())
    return docs, rejects


def lines_file(path, rows, opener=open):
    with opener(path, "wb") as f:
        for r in rows:
            f.write(r if isinstance(r, bytes) else (json.dumps(r, ensure_ascii=False) + "\n").encode())
    return path


def test_jsonl_round_trip_ids_offsets_extras(tmp_path):
    p = lines_file(tmp_path / "a.jsonl", [{"id": 7, "text": "one", "lang": "en", "n": 3},
                                          b"\n", {"text": "two", "lang": None}])
    docs, rejects = read_all(p, extra_fields=("lang", "n"))
    assert rejects == []
    assert [d["id"] for d in docs] == ["7", "a.jsonl#L3"]  # ids as strings; derived from line
    assert [d["offset"] for d in docs] == [1, 3]
    assert docs[0]["lang"] == "en" and docs[0]["n"] == "3" and docs[1]["lang"] is None
    assert {d["source"] for d in docs} == {"a.jsonl"}


@pytest.mark.parametrize("suffix,opener", [(".jsonl.gz", gzip.open), (".jsonl.zst", None)])
def test_compressed_jsonl(tmp_path, suffix, opener):
    rows = [{"id": str(i), "text": f"document {i}"} for i in range(50)]
    path = tmp_path / f"c{suffix}"
    if opener is None:
        raw = b"".join((json.dumps(r) + "\n").encode() for r in rows)
        path.write_bytes(zstandard.ZstdCompressor().compress(raw[:400]) + zstandard.ZstdCompressor().compress(raw[400:]))
    else:
        lines_file(path, rows, opener)
    docs, rejects = read_all(path)
    assert [d["id"] for d in docs] == [str(i) for i in range(50)] and not rejects


def test_split_jsonl_gives_same_documents_and_line_numbers(tmp_path):
    rows = [{"text": f"line {i} " + "x" * (i % 17)} for i in range(500)]
    rows.insert(123, b'{"broken": \n')
    p = lines_file(tmp_path / "big.jsonl", rows)
    whole = read_all(p, split_bytes=10**9)
    units = plan_units([str(p)], ReadOptions(split_bytes=2000))
    assert len(units) > 3
    assert units[0].start == 0 and all(a.end == b.start for a, b in zip(units, units[1:], strict=False))
    split = read_all(p, split_bytes=2000)
    assert split == whole
    assert [r["offset"] for r in split[1]] == [124]


def test_parquet_row_group_split_and_derived_ids(tmp_path):
    t = pa.table({"text": [f"doc {i}" for i in range(1000)], "lang": ["en"] * 1000})
    p = tmp_path / "d.parquet"
    pq.write_table(t, p, row_group_size=100)
    units = plan_units([str(p)], ReadOptions(split_bytes=500))
    assert len(units) > 1
    docs, rejects = read_all(p, split_bytes=500, extra_fields=("lang",))
    assert not rejects and len(docs) == 1000
    assert docs[0]["id"] == "d.parquet#r0" and docs[999]["offset"] == 999
    assert docs == read_all(p, extra_fields=("lang",))[0]


def test_text_directory(tmp_path):
    (tmp_path / "t" / "sub").mkdir(parents=True)
    (tmp_path / "t" / "a.txt").write_text("alpha text")
    (tmp_path / "t" / "sub" / "b.txt").write_text("beta text")
    (tmp_path / "t" / "bad.txt").write_bytes(b"\xff\xfe broken")
    docs, rejects = read_all(tmp_path / "t")
    assert sorted(d["id"] for d in docs) == ["t/a.txt", "t/sub/b.txt"]
    assert [r["reason"] for r in rejects] == ["bad_utf8"] and rejects[0]["id"] == "t/bad.txt"


def test_warc_and_wet(tmp_path):
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    html = ("<html><head><title>t</title></head><body><nav>menu</nav><article><h1>Water report</h1>"
            + "<p>The committee published its annual report on the quality of water in the rivers. " * 5
            + "</p></article></body></html>").encode()
    p = tmp_path / "x.warc.gz"
    with open(p, "wb") as f:
        w = WARCWriter(f, gzip=True)
        w.write_record(w.create_warcinfo_record("x.warc.gz", {"software": "test"}))
        w.write_record(w.create_warc_record("http://example.org/", "request", payload=io.BytesIO(b"GET / HTTP/1.1\r\n\r\n")))
        hdr = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
        w.write_record(w.create_warc_record("http://example.org/report", "response", payload=io.BytesIO(html), http_headers=hdr))
        w.write_record(w.create_warc_record("http://example.org/wet", "conversion",
                                            payload=io.BytesIO(b"plain extracted text")))
    docs, rejects = read_all(p, extra_fields=("url",))
    assert not rejects and len(docs) == 2
    assert "annual report" in docs[0]["text"] and "menu" not in docs[0]["text"]
    assert docs[0]["url"] == "http://example.org/report" and docs[0]["id"].startswith("<urn:uuid:")
    assert docs[1]["text"] == "plain extracted text"


# -- bad input: quarantine by default, InputError naming file and line with strict ------------------

BAD_CASES = {
    "bad_json": b'{"id": "x", "text": \n',
    "not_an_object": b'["a", "list"]\n',
    "bad_utf8": b'{"id": "x", "text": "caf\xe9"}\n',
    "missing_text": b'{"id": "x", "body": "no text field"}\n',
    "empty_text": b'{"id": "x", "text": "  \\n "}\n',
}


@pytest.mark.parametrize("reason", sorted(BAD_CASES))
def test_bad_jsonl_line_quarantined_or_strict(tmp_path, reason):
    good = b'{"id": "ok", "text": "fine"}\n'
    p = tmp_path / "bad.jsonl"
    p.write_bytes(good + BAD_CASES[reason] + good)
    docs, rejects = read_all(p)
    assert len(docs) == 2 and len(rejects) == 1
    r = rejects[0]
    assert (r["reason"], r["offset"], r["source"], r["stage"]) == (reason, 2, "bad.jsonl", "read")
    assert r["detail"] and r["id"]
    with pytest.raises(InputError) as e:
        read_all(p, strict=True)
    assert f"{p}:2: {reason}" in str(e.value) and e.value.line == 2


def test_lone_surrogate_is_bad_utf8(tmp_path):
    p = tmp_path / "s.jsonl"
    p.write_bytes(b'{"text": "a \\ud800 b"}\n')
    _, rejects = read_all(p)
    assert [r["reason"] for r in rejects] == ["bad_utf8"]


def test_50mb_document(tmp_path):
    p = tmp_path / "huge.jsonl"
    with open(p, "w") as f:
        f.write(json.dumps({"id": "small", "text": "fine"}) + "\n")
        f.write('{"id": "huge", "text": "' + "a" * (50 * 2**20) + '"}\n')
    docs, rejects = read_all(p)
    assert [d["id"] for d in docs] == ["small"]
    assert rejects[0]["reason"] == "doc_too_large" and rejects[0]["id"] == "huge"
    assert len(rejects[0]["text"]) <= 1000 and "52428800 bytes" in rejects[0]["detail"]
    with pytest.raises(InputError, match=rf"{p.name}:2: doc_too_large"):
        read_all(p, strict=True)


def test_corrupt_gzip_keeps_documents_before_the_break(tmp_path):
    rows = "".join(json.dumps({"id": str(i), "text": f"doc {i} " * 20}) + "\n" for i in range(2000)).encode()
    blob = gzip.compress(rows)
    p = tmp_path / "cut.jsonl.gz"
    p.write_bytes(blob[: len(blob) // 2])  # truncated mid-stream
    docs, rejects = read_all(p)
    assert 0 < len(docs) < 2000
    assert [d["id"] for d in docs] == [str(i) for i in range(len(docs))]
    assert len(rejects) == 1 and rejects[0]["reason"] == "corrupt_compressed"
    assert f"after line {len(docs)}" in rejects[0]["detail"]
    with pytest.raises(InputError, match="corrupt_compressed"):
        read_all(p, strict=True)


def test_truncated_parquet(tmp_path):
    p = tmp_path / "t.parquet"
    pq.write_table(pa.table({"text": ["a", "b"]}), p)
    p.write_bytes(p.read_bytes()[:-20])
    docs, rejects = read_all(p)
    assert docs == [] and [r["reason"] for r in rejects] == ["corrupt_parquet"]
    with pytest.raises(InputError, match="t.parquet:@0: corrupt_parquet"):
        read_all(p, strict=True)


def test_parquet_null_and_missing_text_column(tmp_path):
    p = tmp_path / "n.parquet"
    pq.write_table(pa.table({"text": ["ok", None, ""]}), p)
    docs, rejects = read_all(p)
    assert len(docs) == 1 and sorted(r["reason"] for r in rejects) == ["empty_text", "missing_text"]
    q = tmp_path / "m.parquet"
    pq.write_table(pa.table({"body": ["x", "y"]}), q)
    docs, rejects = read_all(q)
    assert docs == [] and [r["reason"] for r in rejects] == ["missing_text", "missing_text"]


def test_missing_input_and_unknown_format(tmp_path):
    with pytest.raises(FileNotFoundError, match="input not found"):
        plan_units([str(tmp_path / "nope.jsonl")], ReadOptions())
    (tmp_path / "x.bin").write_bytes(b"?")
    with pytest.raises(InputError, match="unknown_format"):
        plan_units([str(tmp_path / "x.bin")], ReadOptions())
