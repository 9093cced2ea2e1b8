"""Parquet reader: round trip, vectorised text checks, corrupt files and row groups."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from babelmill.pipeline.io.readers import InputError, ReadOptions, plan_units


def test_round_trip_ids_offsets_extras(read_all, tmp_path):
    p = tmp_path / "d.parquet"
    pq.write_table(
        pa.table(
            {
                "id": pa.array([7, None, 9], pa.int64()),
                "text": pa.array(["alpha", "beta", "gamma"], pa.large_string()),
                "lang": ["en", None, "fr"],
                "tags": [["a"], [], None],
                "unused": [1.5, 2.5, 3.5],
            }
        ),
        p,
    )
    docs, rejects = read_all(p, extra_fields=("lang", "tags", "absent"))
    assert not rejects
    assert [d["id"] for d in docs] == ["7", "d.parquet#r1", "9"]
    assert [d["offset"] for d in docs] == [0, 1, 2]
    assert [d["text"] for d in docs] == ["alpha", "beta", "gamma"]
    assert [d["lang"] for d in docs] == ["en", None, "fr"]
    assert [d["tags"] for d in docs] == ['["a"]', "[]", None] and docs[0]["absent"] is None
    assert "unused" not in docs[0]


def test_null_empty_and_too_large_texts_are_rejected(read_all, tmp_path):
    p = tmp_path / "n.parquet"
    texts = ["ok", None, "", " \n\t", "z" * 5000, "fine"]
    pq.write_table(pa.table({"text": texts, "lang": ["en"] * 6}), p, row_group_size=3)
    docs, rejects = read_all(p, max_doc_bytes=1000, extra_fields=("lang",))
    assert [(d["text"], d["offset"]) for d in docs] == [("ok", 0), ("fine", 5)]
    assert [(r["reason"], r["offset"], r["id"]) for r in rejects] == [
        ("missing_text", 1, "n.parquet#r1"),
        ("empty_text", 2, "n.parquet#r2"),
        ("empty_text", 3, "n.parquet#r3"),
        ("doc_too_large", 4, "n.parquet#r4"),
    ]
    assert "5000 bytes" in rejects[3]["detail"] and rejects[3]["text"] == "z" * 1000
    assert "row group 1" in rejects[3]["detail"] and {r["lang"] for r in rejects} == {"en"}
    with pytest.raises(InputError) as ei:
        read_all(p, strict=True)
    assert (
        ei.value.reason == "missing_text" and ei.value.offset == 1 and str(ei.value).startswith(f"{p}:@1: ")
    )


def test_missing_or_non_string_text_column(read_all, tmp_path):
    p = tmp_path / "m.parquet"
    pq.write_table(pa.table({"body": ["x", "y"]}), p)
    docs, rejects = read_all(p)
    assert docs == [] and [(r["reason"], r["offset"]) for r in rejects] == [
        ("missing_text", 0),
        ("missing_text", 1),
    ]
    assert "column 'text' absent" in rejects[0]["detail"] and "body" in rejects[0]["detail"]
    q = tmp_path / "i.parquet"
    pq.write_table(pa.table({"text": [1, 2]}), q)
    docs, rejects = read_all(q)
    assert docs == [] and "int64, not a string" in rejects[0]["detail"]


def test_binary_text_column_decodes_per_row(read_all, tmp_path):
    p = tmp_path / "b.parquet"
    pq.write_table(pa.table({"text": pa.array([b"caf\xc3\xa9", b"caf\xe9"], pa.binary())}), p)
    docs, rejects = read_all(p)
    assert [d["text"] for d in docs] == ["café"]
    assert [(r["reason"], r["offset"]) for r in rejects] == [("bad_utf8", 1)] and "\\xe9" in rejects[0][
        "detail"
    ]


def test_truncated_parquet_file_is_one_reject(read_all, tmp_path):
    p = tmp_path / "t.parquet"
    pq.write_table(pa.table({"text": ["a", "b"]}), p)
    p.write_bytes(p.read_bytes()[:-20])
    (unit,) = plan_units([str(p)], ReadOptions(split_bytes=1))  # planning does not choke on it
    docs, rejects = read_all(p)
    assert docs == []
    (r,) = rejects
    assert (r["reason"], r["offset"], r["source"], r["id"]) == (
        "corrupt_parquet",
        0,
        "t.parquet",
        "t.parquet#r0",
    )
    assert "footer" in r["detail"]
    with pytest.raises(InputError, match=r"t\.parquet:@0: corrupt_parquet"):
        read_all(p, strict=True)


def test_corrupt_row_group_loses_only_that_row_group(read_all, tmp_path):
    p = tmp_path / "rg.parquet"
    n = 300
    pq.write_table(
        pa.table({"text": [f"document number {i} " * 10 for i in range(n)]}),
        p,
        row_group_size=100,
        compression="snappy",
    )
    col = pq.ParquetFile(p).metadata.row_group(1).column(0)
    start = col.dictionary_page_offset or col.data_page_offset
    data = bytearray(p.read_bytes())
    data[start + 30 : start + col.total_compressed_size - 10] = b"\xab" * (col.total_compressed_size - 40)
    p.write_bytes(bytes(data))
    docs, rejects = read_all(p, batch_size=50)
    assert [d["offset"] for d in docs] == list(range(100)) + list(range(200, 300))
    (r,) = rejects
    assert (r["reason"], r["offset"]) == ("corrupt_parquet", 100) and "row group 1" in r["detail"]
    assert len(docs) + 100 == n  # the reject stands for the 100 rows it lost
    with pytest.raises(InputError, match=r"rg\.parquet:@100: corrupt_parquet: row group 1"):
        read_all(p, strict=True)
