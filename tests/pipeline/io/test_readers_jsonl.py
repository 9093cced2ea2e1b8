"""JSONL reader: round trip, compression, and every kind of bad line, quarantined or strict."""

from __future__ import annotations

import gzip
import json
import tracemalloc

import pyarrow as pa
import pytest
import zstandard

from babelmill.pipeline.core.schema import DOC_COLUMNS
from babelmill.pipeline.io.readers import InputError, ReadOptions, plan_units, read_unit


def jl(*rows) -> bytes:
    return b"".join(
        r if isinstance(r, bytes) else (json.dumps(r, ensure_ascii=False) + "\n").encode() for r in rows
    )


def test_round_trip_ids_offsets_extra_fields_and_schema(tmp_path):
    p = tmp_path / "a.jsonl"
    p.write_bytes(
        jl(
            {"id": "x1", "text": "first", "lang": "en", "url": "http://a"},
            b"\n   \n",  # blank lines: not documents, but they count for line numbers
            {"text": "héllo wörld", "lang": None, "n": 3, "meta": {"k": [1, 2]}},
            {"id": 42, "text": "third", "lang": "fr", "n": True},
        )
    )
    opts = ReadOptions(extra_fields=("lang", "n", "meta", "absent"))
    (unit,) = plan_units([str(p)], opts)
    ((docs, rejects),) = list(read_unit(unit, opts))
    assert docs.schema.names == [*DOC_COLUMNS, "lang", "n", "meta", "absent"]
    assert [docs.schema.field(c).type for c in DOC_COLUMNS] == list(DOC_COLUMNS.values())
    assert all(docs.schema.field(c).type == pa.string() for c in ("lang", "n", "meta", "absent"))
    assert rejects.num_rows == 0
    rows = docs.to_pylist()
    assert [r["id"] for r in rows] == ["x1", "a.jsonl#L4", "42"]  # derived id names source and line
    assert [r["offset"] for r in rows] == [1, 4, 5]
    assert [r["text"] for r in rows] == ["first", "héllo wörld", "third"]
    assert {r["source"] for r in rows} == {"a.jsonl"}
    assert [r["lang"] for r in rows] == ["en", None, "fr"]
    assert [r["n"] for r in rows] == [None, "3", "true"]  # non-strings as their JSON text
    assert rows[1]["meta"] == '{"k": [1, 2]}' and rows[0]["absent"] is None


def test_id_field_none_derives_ids_and_custom_text_field(read_all, tmp_path):
    p = tmp_path / "b.jsonl"
    p.write_bytes(jl({"id": "ignored", "content": "c1"}, {"id": "", "content": "c2"}))
    docs, rejects = read_all(p, id_field=None, text_field="content")
    assert [d["id"] for d in docs] == ["b.jsonl#L1", "b.jsonl#L2"] and not rejects
    docs, _ = read_all(p, text_field="content")
    assert [d["id"] for d in docs] == ["ignored", "b.jsonl#L2"]  # an empty id is no id


def test_crlf_bom_and_missing_final_newline(read_all, tmp_path):
    p = tmp_path / "w.jsonl"
    p.write_bytes(b'\xef\xbb\xbf{"text": "one"}\r\n\r\n{"text": "two"}\r\n{"text": "three"}')
    docs, rejects = read_all(p)
    assert [(d["text"], d["offset"]) for d in docs] == [("one", 1), ("two", 3), ("three", 4)] and not rejects


def test_batches_are_bounded_by_batch_size(tmp_path):
    p = tmp_path / "many.jsonl"
    p.write_bytes(jl(*({"text": f"t{i}"} for i in range(25))))
    opts = ReadOptions(batch_size=10)
    sizes = [d.num_rows for u in plan_units([str(p)], opts) for d, _ in read_unit(u, opts)]
    assert sizes == [10, 10, 5]


@pytest.mark.parametrize("kind", ["gz", "zst"])
def test_compressed_jsonl_multi_member_and_multi_frame(read_all, tmp_path, kind):
    rows = [{"id": str(i), "text": f"document {i}"} for i in range(300)]
    raw = jl(*rows)
    comp = gzip.compress if kind == "gz" else zstandard.ZstdCompressor().compress
    p = tmp_path / f"c.jsonl.{kind}"
    p.write_bytes(comp(raw[:1001]) + comp(raw[1001:]))  # concatenated, cut mid-line
    docs, rejects = read_all(p)
    assert [d["id"] for d in docs] == [str(i) for i in range(300)] and not rejects
    assert docs[-1]["offset"] == 300


# -- bad lines ----------------------------------------------------------------------------------

BAD_LINES = {
    "bad_json": (b'{"id": "b", "text": }\n', "Expecting value: column 21"),
    "not_an_object": (b'["a", "list"]\n', "JSON array"),
    "bad_utf8": (b'{"id": "b", "text": "caf\xe9 au lait"}\n', "invalid UTF-8 at byte"),
    "missing_text": (b'{"id": "b", "body": "no text field"}\n', "field 'text' absent"),
    "empty_text": (b'{"id": "b", "text": " \\n\\t "}\n', "whitespace-only"),
}


@pytest.mark.parametrize("reason", sorted(BAD_LINES))
def test_bad_line_is_quarantined_with_file_line_reason(read_all, tmp_path, reason):
    bad, detail = BAD_LINES[reason]
    p = tmp_path / "bad.jsonl"
    p.write_bytes(jl({"id": "g1", "text": "good one"}) + bad + jl({"id": "g2", "text": "good two"}))
    docs, rejects = read_all(p)
    assert [d["id"] for d in docs] == ["g1", "g2"]
    (r,) = rejects
    assert (r["source"], r["offset"], r["stage"], r["reason"]) == ("bad.jsonl", 2, "read", reason)
    assert detail in r["detail"]
    assert r["id"] in ("b", "bad.jsonl#L2")
    assert r["text"]  # a snippet of what was there, for a human to look at


@pytest.mark.parametrize("reason", sorted(BAD_LINES))
def test_bad_line_in_strict_mode_raises_naming_file_and_line(read_all, tmp_path, reason):
    p = tmp_path / "bad.jsonl"
    p.write_bytes(jl({"text": "good"}) + BAD_LINES[reason][0])
    with pytest.raises(InputError) as ei:
        read_all(p, strict=True)
    e = ei.value
    assert str(e).startswith(f"{p}:2: {reason}: ")
    assert (e.path, e.line, e.reason) == (str(p), 2, reason)


def test_bad_utf8_keeps_a_repr_snippet(read_all, tmp_path):
    p = tmp_path / "u.jsonl"
    p.write_bytes(b'{"text": "caf\xe9"}\n')
    _, (r,) = read_all(p)
    assert "b'" in r["detail"] and "\\xe9" in r["detail"] and "\\xe9" in r["text"]


def test_null_or_non_string_text_is_missing_text(read_all, tmp_path):
    p = tmp_path / "t.jsonl"
    p.write_bytes(jl({"text": None, "lang": "de"}, {"text": 12}, {"text": ["a"]}, {"text": ""}))
    docs, rejects = read_all(p, extra_fields=("lang",))
    assert docs == []
    assert [(r["reason"], r["offset"]) for r in rejects] == [
        ("missing_text", 1),
        ("missing_text", 2),
        ("missing_text", 3),
        ("empty_text", 4),
    ]
    assert (
        "null" in rejects[0]["detail"]
        and "number" in rejects[1]["detail"]
        and "array" in rejects[2]["detail"]
    )
    assert rejects[0]["lang"] == "de"  # known language travels with the reject


def test_lone_surrogate_escape_is_bad_utf8_but_pairs_are_fine(read_all, tmp_path):
    p = tmp_path / "s.jsonl"
    p.write_bytes(b'{"text": "a \\ud800 b"}\n{"text": "emoji \\ud83d\\ude00"}\n')
    docs, rejects = read_all(p)
    assert [d["text"] for d in docs] == ["emoji \U0001f600"]
    assert [(r["reason"], r["offset"]) for r in rejects] == [("bad_utf8", 1)] and "surrogate" in rejects[0][
        "detail"
    ]


def test_50mb_document_is_quarantined_without_blowing_memory(read_all, tmp_path):
    p = tmp_path / "huge.jsonl"
    size = 50 * 2**20
    with open(p, "w") as f:
        f.write(json.dumps({"id": "small", "text": "fine"}) + "\n")
        f.write('{"id": "huge", "text": "' + "a" * size + '"}\n')
        f.write(json.dumps({"id": "after", "text": "fine too"}) + "\n")
    tracemalloc.start()
    try:
        docs, rejects = read_all(p)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [d["id"] for d in docs] == ["small", "after"]
    (r,) = rejects
    assert (r["reason"], r["id"], r["offset"]) == ("doc_too_large", "huge", 2)
    assert f"{size} bytes" in r["detail"] and len(r["text"]) == 1000
    assert peak < 2.5 * size  # the line text and the parsed text, never more copies
    with pytest.raises(InputError, match=rf"{p.name}:2: doc_too_large"):
        read_all(p, strict=True)


def test_line_far_over_the_limit_is_not_parsed(read_all, tmp_path):
    p = tmp_path / "long.jsonl"
    p.write_bytes(jl({"text": "ok"}) + b'{"text": "' + b"x" * 5000 + b'"}\n' + jl({"text": "still ok"}))
    docs, rejects = read_all(p, max_doc_bytes=100)  # line cap: 8 x 100 bytes
    assert [(d["text"], d["offset"]) for d in docs] == [("ok", 1), ("still ok", 3)]
    assert [(r["reason"], r["offset"]) for r in rejects] == [("doc_too_large", 2)]
    assert "5013 bytes" in rejects[0]["detail"] and "not parsed" in rejects[0]["detail"]
    assert rejects[0]["text"].startswith('{"text": "xxx') and len(rejects[0]["text"]) <= 1000


def test_truncated_gzip_keeps_documents_before_the_break(read_all, tmp_path):
    rows = [{"id": str(i), "text": f"document {i} " * 20} for i in range(2000)]
    blob = gzip.compress(jl(*rows))
    p = tmp_path / "cut.jsonl.gz"
    p.write_bytes(blob[: len(blob) // 2])
    docs, rejects = read_all(p)
    n = len(docs)
    assert 0 < n < 2000 and [d["id"] for d in docs] == [str(i) for i in range(n)]
    (r,) = rejects
    assert (r["reason"], r["offset"], r["source"]) == ("corrupt_compressed", n + 1, "cut.jsonl.gz")
    assert f"after line {n}" in r["detail"] and "EOFError" in r["detail"]
    with pytest.raises(InputError) as ei:
        read_all(p, strict=True)
    assert (
        ei.value.reason == "corrupt_compressed" and ei.value.line == n + 1 and "cut.jsonl.gz" in str(ei.value)
    )


def test_garbage_gzip_and_truncated_zstd_are_corrupt_compressed(read_all, tmp_path):
    g = tmp_path / "junk.jsonl.gz"
    g.write_bytes(b"this is not gzip at all\n")
    docs, rejects = read_all(g)
    assert docs == [] and [(r["reason"], r["offset"]) for r in rejects] == [("corrupt_compressed", 1)]

    raw = jl(*({"id": str(i), "text": f"doc {i}"} for i in range(5000)))
    frame1 = zstandard.ZstdCompressor().compress(raw[:40_000])
    frame2 = zstandard.ZstdCompressor().compress(raw[40_000:])
    z = tmp_path / "cut.jsonl.zst"
    z.write_bytes(frame1 + frame2[: len(frame2) // 2])  # a clean first frame, a cut second one
    docs, rejects = read_all(z)
    n = len(docs)
    assert n >= raw[:40_000].count(b"\n") and [d["id"] for d in docs] == [str(i) for i in range(n)]
    assert [(r["reason"], r["offset"]) for r in rejects] == [("corrupt_compressed", n + 1)]
    assert "TruncatedStream" in rejects[0]["detail"]


def test_every_non_blank_line_is_a_document_or_a_reject(read_all, tmp_path):
    lines = [
        jl({"text": "good"}),
        b"{broken\n",
        b"\n",
        jl([1]),
        b'{"text": "\xff"}\n',
        jl({"body": 1}),
        jl({"text": "  "}),
        b"\r\n",
        jl({"text": "x" * 300}),
        jl({"text": "good again", "id": 9}),
        b"null\n",
    ]
    p = tmp_path / "mix.jsonl"
    p.write_bytes(b"".join(lines * 7))
    docs, rejects = read_all(p, max_doc_bytes=200, batch_size=4)
    non_blank = sum(1 for ln in p.read_bytes().splitlines() if ln.strip())
    assert len(docs) + len(rejects) == non_blank == 63
    assert len(docs) == 14
    seen = sorted([d["offset"] for d in docs] + [r["offset"] for r in rejects])
    assert len(set(seen)) == len(seen)  # each record exactly once
    assert {r["reason"] for r in rejects} == {
        "bad_json",
        "not_an_object",
        "bad_utf8",
        "missing_text",
        "empty_text",
        "doc_too_large",
    }
