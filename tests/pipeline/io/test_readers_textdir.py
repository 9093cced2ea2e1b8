"""Text-directory reader: one document per file, ids are relative paths."""

from __future__ import annotations

import pytest

from babelmill.pipeline.io.readers import InputError


@pytest.fixture
def notes(tmp_path):
    d = tmp_path / "notes"
    (d / "sub").mkdir(parents=True)
    (d / "b.txt").write_text("beta text\r\nsecond line")
    (d / "a.txt").write_bytes(b"\xef\xbb\xbfalpha text")  # BOM dropped
    (d / "sub" / "c.txt").write_text("gamma text")
    (d / "empty.txt").write_text(" \n ")
    (d / ".hidden.txt").write_text("never read")
    (d / "bad.txt").write_bytes(b"line one\nline two \xff\xfe broken")
    return d


def test_one_document_per_file_with_relative_path_ids(read_all, notes):
    docs, rejects = read_all(notes, extra_fields=("path", "lang"))
    assert [(d["id"], d["text"], d["offset"]) for d in docs] == [
        ("notes/a.txt", "alpha text", 0),
        ("notes/b.txt", "beta text\r\nsecond line", 1),
        ("notes/sub/c.txt", "gamma text", 4),
    ]
    assert {d["source"] for d in docs} == {"notes"}
    assert docs[0]["path"] == "notes/a.txt" and docs[0]["lang"] is None
    assert [(r["id"], r["reason"], r["offset"]) for r in rejects] == [
        ("notes/bad.txt", "bad_utf8", 2),
        ("notes/empty.txt", "empty_text", 3),
    ]
    assert "\\xff\\xfe" in rejects[0]["detail"] and rejects[0]["text"].startswith("line one")


def test_strict_mode_names_the_file_and_line(read_all, notes):
    with pytest.raises(InputError) as ei:
        read_all(notes, strict=True)
    e = ei.value
    assert e.path == str(notes / "bad.txt") and e.line == 2 and e.reason == "bad_utf8"
    assert str(e).startswith(f"{notes / 'bad.txt'}:2: bad_utf8: ")


def test_too_large_file_is_rejected_from_its_size(read_all, notes):
    (notes / "big.txt").write_text("word " * 1000)
    docs, rejects = read_all(notes, max_doc_bytes=1000)
    (r,) = [r for r in rejects if r["reason"] == "doc_too_large"]
    assert r["id"] == "notes/big.txt" and "5000 bytes" in r["detail"] and len(r["text"]) == 1000
    assert len(docs) + len(rejects) == 6  # every visible .txt file exactly once
