"""Work-unit planning: inputs, formats, sources and ids, splitting, fingerprints."""

from __future__ import annotations

import json
import os
import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from babelmill.pipeline.io.readers import InputError, ReadOptions, WorkUnit, plan_units, read_unit


def write_jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(r if isinstance(r, bytes) else (json.dumps(r) + "\n").encode() for r in rows))
    return path


def read_units(units, opts):
    docs, rejects = [], []
    for u in units:
        for d, r in read_unit(u, opts):
            docs.extend(d.to_pylist())
            rejects.extend(r.to_pylist())
    return docs, rejects


def test_split_jsonl_reads_exactly_like_the_whole_file(tmp_path):
    rows: list = [
        {"text": f"line {i} " + "x" * (i % 37), **({"id": f"i{i}"} if i % 3 else {})} for i in range(600)
    ]
    rows.insert(123, b'{"broken": \n')
    rows.insert(300, b"\r\n")
    rows.insert(400, b"\n\n")
    p = write_jsonl(tmp_path / "big.jsonl", rows)
    with open(p, "ab") as f:
        f.write(b'{"text": "last line without newline"}')
    whole_opts, split_opts = ReadOptions(split_bytes=10**9), ReadOptions(split_bytes=1500)
    (whole_unit,) = plan_units([str(p)], whole_opts)
    units = plan_units([str(p)], split_opts)
    assert len(units) > 10
    size = p.stat().st_size
    assert units[0].start == 0 and units[-1].end == size
    assert all(a.end == b.start for a, b in zip(units, units[1:], strict=False))
    assert sum(u.size for u in units) == size
    data = p.read_bytes()
    for u in units:  # every cut at a line start, and first_line is the true line number there
        assert u.start == 0 or data[u.start - 1 : u.start] == b"\n"
        assert u.first_line == data[: u.start].count(b"\n") + 1
    assert len({u.unit_id for u in units}) == len(units)
    assert [u.unit_id for u in units[:2]] == ["big.jsonl-00000", "big.jsonl-00001"]
    whole = read_units([whole_unit], whole_opts)
    split = read_units(units, split_opts)
    assert split == whole
    assert len(whole[0]) == 601 and [r["offset"] for r in whole[1]] == [124]


def test_split_at_exact_line_boundaries(tmp_path):
    p = write_jsonl(tmp_path / "e.jsonl", [b'{"text": "abcdefghi"}\n'] * 10)  # 22 bytes per line
    units = plan_units([str(p)], ReadOptions(split_bytes=44))
    assert [(u.start, u.first_line) for u in units] == [(0, 1), (44, 3), (88, 5), (132, 7), (176, 9)]
    docs, _ = read_units(units, ReadOptions())
    assert [d["offset"] for d in docs] == list(range(1, 11))


def test_compressed_jsonl_is_never_split(tmp_path):
    import gzip

    p = tmp_path / "c.jsonl.gz"
    p.write_bytes(gzip.compress(b'{"text": "a"}\n' * 1000, compresslevel=0))
    (u,) = plan_units([str(p)], ReadOptions(split_bytes=100))
    assert (u.start, u.end, u.size) == (0, None, p.stat().st_size)


def test_parquet_split_by_row_groups_reads_like_the_whole_file(tmp_path):
    n = 1000
    t = pa.table(
        {
            "text": [f"doc {i} " + "y" * (i % 50) for i in range(n)],
            "lang": ["en", "fr"] * (n // 2),
            "id": [None if i % 4 == 0 else f"id{i}" for i in range(n)],
        }
    )
    p = tmp_path / "d.parquet"
    pq.write_table(t, p, row_group_size=100)
    opts = ReadOptions(split_bytes=1500, extra_fields=("lang",))
    units = plan_units([str(p)], opts)
    assert len(units) > 2 and units[0].start == 0 and units[-1].end == 10
    assert all(a.end == b.start for a, b in zip(units, units[1:], strict=False))
    whole = read_units(plan_units([str(p)], ReadOptions(extra_fields=("lang",))), opts)
    split = read_units(units, opts)
    assert split == whole and len(whole[0]) == n and not whole[1]
    assert [d["offset"] for d in split[0]] == list(range(n))
    assert split[0][0]["id"] == "d.parquet#r0" and split[0][1]["id"] == "id1"


def test_text_directory_split_by_files(tmp_path):
    d = tmp_path / "notes"
    d.mkdir()
    for i in range(6):
        (d / f"n{i}.txt").write_text(f"note number {i} " * 10)
    units = plan_units([str(d)], ReadOptions(split_bytes=250))  # 140 bytes a file
    assert len(units) == 3 and [(u.start, u.end) for u in units] == [(0, 2), (2, 4), (4, 6)]
    docs, _ = read_units(units, ReadOptions())
    assert [d_["id"] for d_ in docs] == [f"notes/n{i}.txt" for i in range(6)]
    assert [d_["offset"] for d_ in docs] == list(range(6))


def test_directories_globs_and_sorted_deterministic_order(tmp_path):
    root = tmp_path / "data"
    write_jsonl(root / "web" / "part-0002.jsonl", [{"text": "b"}])
    write_jsonl(root / "web" / "part-0001.jsonl", [{"text": "a"}])
    write_jsonl(root / "books" / "x.jsonl", [{"text": "c"}])
    pq.write_table(pa.table({"text": ["p"]}), root / "tab.parquet")
    (root / "README.md").write_text("not data")
    (root / ".hidden.jsonl").write_text('{"text": "hidden"}\n')
    (root / "web" / ".cache").mkdir()
    write_jsonl(root / "web" / ".cache" / "tmp.jsonl", [{"text": "cached"}])

    units = plan_units([str(root)], ReadOptions())
    assert [u.source for u in units] == [
        "books/x.jsonl",
        "tab.parquet",
        "web/part-0001.jsonl",
        "web/part-0002.jsonl",
    ]
    assert [u.format for u in units] == ["jsonl", "parquet", "jsonl", "jsonl"]
    assert units[2].unit_id == "web__part-0001.jsonl-00000"
    assert all(os.path.isabs(u.path) for u in units)
    assert plan_units([str(root)], ReadOptions()) == units  # deterministic

    by_glob = plan_units([str(root / "*" / "part-*.jsonl")], ReadOptions())
    assert [u.source for u in by_glob] == ["web/part-0001.jsonl", "web/part-0002.jsonl"]
    recursive = plan_units([str(root / "**" / "*.jsonl")], ReadOptions())
    assert [u.source for u in recursive] == ["books/x.jsonl", "web/part-0001.jsonl", "web/part-0002.jsonl"]
    named = plan_units(
        [str(root / "web" / "part-0002.jsonl"), str(root / "web" / "part-0002.jsonl")], ReadOptions()
    )
    assert [u.source for u in named] == ["part-0002.jsonl"]  # a named file: its name; given twice, read once
    only_parquet = plan_units([str(root)], ReadOptions(format="parquet"))
    assert [u.source for u in only_parquet] == ["tab.parquet"]


def test_same_file_names_in_two_inputs_get_distinct_sources_and_ids(tmp_path):
    a = write_jsonl(tmp_path / "en" / "part-0.jsonl", [{"text": "a"}])
    b = write_jsonl(tmp_path / "fr" / "part-0.jsonl", [{"text": "b"}])
    units = plan_units([str(a.parent), str(b.parent)], ReadOptions())
    assert [u.source for u in units] == ["en/part-0.jsonl", "fr/part-0.jsonl"]
    assert len({u.unit_id for u in units}) == 2
    docs, _ = read_units(units, ReadOptions(id_field=None))
    assert [d["id"] for d in docs] == ["en/part-0.jsonl#L1", "fr/part-0.jsonl#L1"]


def test_unit_ids_are_filesystem_safe(tmp_path):
    write_jsonl(tmp_path / "in" / "a b:c?.jsonl", [{"text": "x"}])
    write_jsonl(tmp_path / "in" / "a_b_c_.jsonl", [{"text": "y"}])
    units = plan_units([str(tmp_path / "in")], ReadOptions())
    ids = [u.unit_id for u in units]
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+", i) for i in ids) and len(set(ids)) == 2


def test_text_directory_detection(tmp_path):
    d = tmp_path / "corpus"
    (d / "sub").mkdir(parents=True)
    (d / "a.txt").write_text("alpha")
    (d / "sub" / "b.txt").write_text("beta")
    (d / ".DS_Store").write_bytes(b"\0")
    (u,) = plan_units([str(d)], ReadOptions())
    assert (u.format, u.source, u.path) == ("text", "corpus", str(d))
    (one,) = plan_units([str(d / "a.txt")], ReadOptions())
    assert (one.format, one.source) == ("text", "a.txt")


def test_inputs_that_match_nothing_fail_clearly(tmp_path):
    # InputError (a one-line CLI message) that is still a FileNotFoundError for old callers
    with pytest.raises(InputError, match=r"nope\.jsonl: input_not_found: no such file") as ei:
        plan_units([str(tmp_path / "nope.jsonl")], ReadOptions())
    assert isinstance(ei.value, FileNotFoundError)
    with pytest.raises(FileNotFoundError, match="matches no readable file"):
        plan_units([str(tmp_path / "*.parquet")], ReadOptions())
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.md").write_text("x")
    with pytest.raises(FileNotFoundError, match=r"holds no readable file.*1 file\(s\) not read: notes\.md"):
        plan_units([str(tmp_path / "empty")], ReadOptions())
    (tmp_path / "x.bin").write_bytes(b"?")
    with pytest.raises(InputError, match=r"x\.bin: unknown_format"):
        plan_units([str(tmp_path / "x.bin")], ReadOptions())
    with pytest.raises(FileNotFoundError, match="no input"):
        plan_units([], ReadOptions())
    (u,) = plan_units([str(tmp_path / "x.bin")], ReadOptions(format="jsonl"))  # told the format: trusted
    assert u.format == "jsonl"


def test_read_options_are_validated():
    with pytest.raises(ValueError, match="unknown input format"):
        ReadOptions(format="csv")
    with pytest.raises(ValueError, match="batch_size"):
        ReadOptions(batch_size=0)
    with pytest.raises(ValueError, match="html_extractor"):
        ReadOptions(html_extractor="magic")
    assert ReadOptions(extra_fields=["a", "b", "a"]).extra_fields == ("a", "b")


def test_fingerprint_is_stable_and_tracks_the_covered_range(tmp_path):
    p = write_jsonl(tmp_path / "f.jsonl", [{"text": f"row {i} " * 5} for i in range(200)])
    units = plan_units([str(p)], ReadOptions(split_bytes=2000))
    fps = [u.fingerprint() for u in units]
    assert fps == [u.fingerprint() for u in plan_units([str(p)], ReadOptions(split_bytes=2000))]
    assert len(set(fps)) == len(fps)
    st = p.stat()
    data = bytearray(p.read_bytes())
    data[units[-1].start + 2 : units[-1].start + 5] = b"ROW"  # same size, same mtime, other bytes
    p.write_bytes(bytes(data))
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert units[0].fingerprint() == fps[0] and units[-1].fingerprint() != fps[-1]
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched: everything is suspect
    assert units[0].fingerprint() != fps[0]

    d = tmp_path / "t"
    d.mkdir()
    (d / "a.txt").write_text("x")
    (u,) = plan_units([str(d)], ReadOptions())
    fp = u.fingerprint()
    (d / "b.txt").write_text("y")
    assert u.fingerprint() == fp  # the unit covers file 0 only
    assert plan_units([str(d)], ReadOptions())[0].fingerprint() != fp


def test_work_units_travel_as_plain_dicts(tmp_path):
    import pickle
    from dataclasses import asdict

    p = write_jsonl(tmp_path / "w.jsonl", [{"text": "x"}])
    (u,) = plan_units([str(p)], ReadOptions())
    assert WorkUnit(**asdict(u)) == u and pickle.loads(pickle.dumps(u)) == u  # noqa: S301 - our own bytes
    e = InputError("f.jsonl", "bad_json", "oops", line=3)
    e2 = pickle.loads(pickle.dumps(e))  # noqa: S301 - our own bytes
    assert str(e2) == str(e) == "f.jsonl:3: bad_json: oops" and e2.line == 3
