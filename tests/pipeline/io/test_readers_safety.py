"""Issue 12 (input side): no input file ignored silently, a run never reads its own output,
symlinks out of an input folder are not followed blindly, data failing its integrity check is
never emitted, and lost records are counted (`records_lost`)."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import logging
import lzma
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from babelmill.pipeline.core.schema import REJECT_SCHEMA
from babelmill.pipeline.io.readers import (
    InputError,
    InputPlan,
    MissingInputError,
    ReadOptions,
    SkippedInput,
    plan_inputs,
    plan_units,
    read_unit,
)


def jl(*rows) -> bytes:
    return b"".join((json.dumps(r) + "\n").encode() for r in rows)


def docs_of(n: int, prefix: str = "d") -> bytes:
    return jl(*({"id": f"{prefix}{i}", "text": f"document number {i} of {prefix}"} for i in range(n)))


def read_units(units, opts):
    docs, rejects = [], []
    for u in units:
        for d, r in read_unit(u, opts):
            assert r.schema == REJECT_SCHEMA
            docs.extend(d.to_pylist())
            rejects.extend(r.to_pylist())
    return docs, rejects


# -- case 5: every file in an input folder is read or reported -------------------------------
def test_unsupported_files_are_reported_and_bz2_xz_are_read(tmp_path, caplog):
    d = tmp_path / "in"
    d.mkdir()
    (d / "a.jsonl").write_bytes(docs_of(5, "a"))
    (d / "b.jsonl.bz2").write_bytes(bz2.compress(docs_of(20, "b")))
    (d / "c.jsonl.xz").write_bytes(lzma.compress(docs_of(20, "c")))
    (d / "d.jsonl.1").write_bytes(docs_of(20, "d"))  # rotated log name: no reader
    (d / "e.json.gzip").write_bytes(gzip.compress(docs_of(20, "e")))
    (d / "f.warc.bz2").write_bytes(bz2.compress(b"WARC/1.0\r\n"))
    (d / "_SUCCESS").write_bytes(b"")  # bookkeeping: silent, as before
    (d / ".hidden.jsonl").write_bytes(docs_of(1))
    with caplog.at_level(logging.WARNING, logger="babelmill.pipeline.io.readers.planning"):
        plan = plan_inputs([str(d)], ReadOptions())
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert isinstance(plan, InputPlan)
    assert [u.source for u in plan.units] == ["a.jsonl", "b.jsonl.bz2", "c.jsonl.xz"]
    assert plan_units([str(d)], ReadOptions()) == plan.units
    assert plan.skipped == [
        SkippedInput(str(d / n), "unsupported_format", plan.skipped[i].detail)
        for i, n in enumerate(["d.jsonl.1", "e.json.gzip", "f.warc.bz2"])
    ]
    assert "gzip-compressed only" in plan.skipped[2].detail
    assert len(warned) == 3 and all(str(d) in w and "unsupported_format" in w for w in warned)
    docs, rejects = read_units(plan.units, ReadOptions())
    assert len(docs) == 45 and not rejects
    with pytest.raises(InputError, match=r"d\.jsonl\.1: unsupported_format"):
        plan_inputs([str(d)], ReadOptions(strict=True))


def test_many_skipped_files_log_the_first_20_and_a_count(tmp_path, caplog):
    d = tmp_path / "in"
    d.mkdir()
    (d / "a.jsonl").write_bytes(docs_of(1))
    for i in range(30):
        (d / f"x{i:02d}.csv").write_text("a,b\n")
    with caplog.at_level(logging.WARNING, logger="babelmill.pipeline.io.readers.planning"):
        plan = plan_inputs([str(d)], ReadOptions())
    assert len(plan.skipped) == 30
    msgs = [r.getMessage() for r in caplog.records]
    assert len(msgs) == 21 and "10 more" in msgs[-1]


def test_txt_beside_data_is_reported_and_a_text_folder_still_reads(tmp_path):
    d = tmp_path / "mix"
    d.mkdir()
    (d / "a.jsonl").write_bytes(docs_of(2))
    (d / "notes.txt").write_text("a note")
    plan = plan_inputs([str(d)], ReadOptions())
    assert [(s.reason, os.path.basename(s.path)) for s in plan.skipped] == [("text_beside_data", "notes.txt")]
    t = tmp_path / "texts"
    t.mkdir()
    (t / "one.txt").write_text("first")
    (t / "two.txt").write_text("second")
    (t / "readme.md").write_text("?")
    plan = plan_inputs([str(t)], ReadOptions())
    assert [u.format for u in plan.units] == ["text"]
    assert [(s.reason, os.path.basename(s.path)) for s in plan.skipped] == [
        ("unsupported_format", "readme.md")
    ]


def test_missing_input_and_folder_of_unsupported_files_are_input_errors(tmp_path):
    with pytest.raises(MissingInputError, match=r"nope: input_not_found") as ei:
        plan_inputs([str(tmp_path / "nope")], ReadOptions())
    assert isinstance(ei.value, InputError) and isinstance(ei.value, FileNotFoundError)
    assert "\n" not in str(ei.value)
    d = tmp_path / "odd"
    d.mkdir()
    (d / "x.jsonl.xz.part").write_bytes(b"?")
    (d / "y.json.gzip").write_bytes(b"?")
    with pytest.raises(
        InputError, match=r"odd: input_not_found: directory holds no readable file.*x\.jsonl\.xz\.part"
    ):
        plan_inputs([str(d)], ReadOptions())


@pytest.mark.parametrize("codec", ["bz2", "xz"])
def test_corrupt_or_truncated_bz2_xz_are_quarantined(tmp_path, codec):
    comp = bz2.compress if codec == "bz2" else lzma.compress
    raw = docs_of(3000)
    blob = comp(raw)
    p = tmp_path / f"cut.jsonl.{codec}"
    p.write_bytes(blob[: len(blob) // 2])
    docs, rejects = read_units(plan_units([str(p)], ReadOptions()), ReadOptions())
    (r,) = rejects
    n = len(docs)
    assert r["reason"] == "corrupt_compressed" and r["offset"] == n + 1 and r["records_lost"] is None
    assert "unknown" in r["detail"]
    assert [d["id"] for d in docs] == [f"d{i}" for i in range(n)]
    # a flipped byte in the middle: that stream's records are not trusted (bz2/xz cannot say
    # where the damaged block ends), the rest is unreadable
    bad = bytearray(blob)
    bad[len(bad) // 2] ^= 0x55
    q = tmp_path / f"flip.jsonl.{codec}"
    q.write_bytes(bytes(bad))
    docs, rejects = read_units(plan_units([str(q)], ReadOptions()), ReadOptions())
    assert docs == []  # a single stream: nothing of it is trusted
    (r,) = rejects
    assert r["reason"] == "corrupt_compressed" and r["offset"] == 1 and "not trusted" in r["detail"]
    with pytest.raises(InputError, match="corrupt_compressed"):
        read_units(plan_units([str(q)], ReadOptions()), ReadOptions(strict=True))


# -- case 4: the run's output inside the input ---------------------------------------------
def test_output_dir_inside_input_is_never_read(tmp_path, caplog):
    d = tmp_path / "data"
    d.mkdir()
    (d / "a.jsonl").write_bytes(docs_of(20))
    out = d / "run1"
    (out / "output").mkdir(parents=True)
    (out / "output" / "a.jsonl-00000.jsonl").write_bytes(docs_of(20))
    (out / "rejects").mkdir()
    pq.write_table(pa.table({"text": ["x"]}), out / "rejects" / "a.parquet")
    (out / "manifest.json").write_text("{}")
    before = plan_inputs([str(d)], ReadOptions())
    assert len(before.units) == 4  # without exclude: old output, rejects and manifest.json read back
    with caplog.at_level(logging.INFO, logger="babelmill.pipeline.io.readers.planning"):
        plan = plan_inputs([str(d)], ReadOptions(), exclude=[str(out)])
    assert [u.source for u in plan.units] == ["a.jsonl"] and plan.skipped == []
    assert any("3 file(s) not read" in r.getMessage() for r in caplog.records)
    glob_plan = plan_inputs([str(d / "**" / "*.jsonl")], ReadOptions(), exclude=[str(out)])
    assert [u.source for u in glob_plan.units] == ["a.jsonl"]
    with pytest.raises(InputError, match=r"input_inside_output"):
        plan_inputs([str(out / "output")], ReadOptions(), exclude=[str(out)])
    with pytest.raises(InputError, match=r"input_inside_output"):
        plan_inputs([str(d)], ReadOptions(), exclude=[str(d)])


# -- case 11a: symlinks out of the input folder ----------------------------------------------
@pytest.fixture
def linked(tmp_path):
    secret = tmp_path / "elsewhere"
    secret.mkdir()
    (secret / "secret.jsonl").write_bytes(docs_of(3, "s"))
    (secret / "sub").mkdir()
    (secret / "sub" / "more.jsonl").write_bytes(docs_of(2, "m"))
    d = tmp_path / "in"
    d.mkdir()
    (d / "own.jsonl").write_bytes(docs_of(1, "o"))
    (d / "inner").mkdir()
    (d / "inner" / "real.jsonl").write_bytes(docs_of(1, "r"))
    os.symlink(secret / "secret.jsonl", d / "out.jsonl")
    os.symlink(secret / "sub", d / "outdir")
    os.symlink(d / "inner" / "real.jsonl", d / "in_link.jsonl")  # inside the root: fine
    os.symlink(d / "inner", d / "in_dirlink")  # inside the root: not descended, files found anyway
    return d


def test_symlinks_leaving_the_input_are_refused_by_default(linked):
    plan = plan_inputs([str(linked)], ReadOptions())
    assert {(os.path.basename(s.path), s.reason) for s in plan.skipped} == {
        ("out.jsonl", "symlink_outside_input"),
        ("outdir", "symlink_outside_input"),
    }
    docs, _ = read_units(plan.units, ReadOptions())
    assert sorted(d["id"] for d in docs) == ["o0", "r0"]
    with pytest.raises(InputError, match=r"out(dir|\.jsonl): symlink_outside_input"):
        plan_inputs([str(linked)], ReadOptions(strict=True))


@pytest.mark.parametrize("policy", ["warn", "follow"])
def test_symlinks_leaving_the_input_can_be_followed(linked, policy, caplog):
    with caplog.at_level(logging.WARNING, logger="babelmill.pipeline.io.readers.planning"):
        plan = plan_inputs([str(linked)], ReadOptions(symlinks=policy))
    assert plan.skipped == []
    docs, _ = read_units(plan.units, ReadOptions())
    assert sorted(d["id"] for d in docs) == ["m0", "m1", "o0", "r0", "s0", "s1", "s2"]
    warned = [r for r in caplog.records if "outside the input folder" in r.getMessage()]
    assert len(warned) == (2 if policy == "warn" else 0)
    with pytest.raises(ValueError, match="symlinks"):
        ReadOptions(symlinks="sure")


def test_text_folder_symlink_out_is_refused(tmp_path):
    (tmp_path / "secret.txt").write_text("secret")
    d = tmp_path / "notes"
    d.mkdir()
    (d / "a.txt").write_text("alpha")
    os.symlink(tmp_path / "secret.txt", d / "b.txt")
    plan = plan_inputs([str(d)], ReadOptions())
    assert [s.reason for s in plan.skipped] == ["symlink_outside_input"]
    docs, _ = read_units(plan.units, ReadOptions())
    assert [x["text"] for x in docs] == ["alpha"]
    followed = plan_inputs([str(d)], ReadOptions(symlinks="follow"))
    docs, _ = read_units(followed.units, ReadOptions())
    assert [x["text"] for x in docs] == ["alpha", "secret"]
    assert followed.units[0].fingerprint() != plan.units[0].fingerprint()


# -- case 7: a member failing its CRC is not trusted ----------------------------------------
def _stored_gzip_with_flipped_letter(payload: bytes, needle: bytes) -> bytes:
    blob = bytearray(gzip.compress(payload, compresslevel=0))  # stored blocks: the text is there
    i = blob.index(needle)
    blob[i] = ord("j")  # "hello" -> "jello": still valid deflate, wrong CRC
    return bytes(blob)


def test_gzip_member_failing_its_crc_is_quarantined_not_kept(tmp_path):
    good1 = gzip.compress(docs_of(10, "a"))
    bad = _stored_gzip_with_flipped_letter(
        jl(*({"id": f"b{i}", "text": f"hello world {i}"} for i in range(7))), b"hello world 3"
    )
    good2 = gzip.compress(docs_of(10, "c"))
    p = tmp_path / "crc.jsonl.gz"
    p.write_bytes(good1 + bad + good2)
    docs, rejects = read_units(plan_units([str(p)], ReadOptions()), ReadOptions())
    assert not any("jello" in d["text"] for d in docs)
    assert [d["id"] for d in docs] == [f"a{i}" for i in range(10)] + [f"c{i}" for i in range(10)]
    (r,) = rejects
    end = len(good1) + len(bad)
    assert r["reason"] == "corrupt_compressed" and r["offset"] == 11
    assert r["detail"].startswith(f"gzip member ending at byte {end} fails its CRC check")
    assert "its 7 records are quarantined, not trusted" in r["detail"] and "skipped" not in r["detail"]
    assert r["records_lost"] == 6  # 1 row + 6 = the member's 7 records
    assert [d["offset"] for d in docs][10] == 18  # line numbers stay true after the member
    with pytest.raises(InputError, match=r"crc\.jsonl\.gz:11: corrupt_compressed: gzip member"):
        read_units(plan_units([str(p)], ReadOptions()), ReadOptions(strict=True))


def test_single_member_gzip_failing_its_crc_emits_nothing(tmp_path):
    # big enough that the stdlib gzip module would hand out lines before reaching the CRC
    payload = jl(*({"id": f"i{i}", "text": f"hello {i} " + "x" * 200} for i in range(3000)))
    p = tmp_path / "one.jsonl.gz"
    p.write_bytes(_stored_gzip_with_flipped_letter(payload, b"hello 5 "))
    docs, rejects = read_units(plan_units([str(p)], ReadOptions()), ReadOptions(batch_size=100))
    assert docs == []
    (r,) = rejects
    assert "3000 records are quarantined" in r["detail"] and r["records_lost"] == 2999


def test_zstd_frame_failing_its_checksum_is_not_trusted(tmp_path):
    import random

    rnd = random.Random(7)
    c = zstandard.ZstdCompressor(write_checksum=True, level=1)
    first = c.compress(docs_of(5, "a"))
    # > one 64 KiB read of compressed data, so the old reader handed out lines before the check
    body = jl(*({"id": f"b{i}", "text": f"{rnd.getrandbits(128):032x}"} for i in range(12000)))
    frame = bytearray(c.compress(body))
    assert len(frame) > 3 * 2**16
    frame[len(frame) // 2] ^= 0x01
    p = tmp_path / "z.jsonl.zst"
    p.write_bytes(first + bytes(frame) + c.compress(docs_of(5, "c")))
    docs, rejects = read_units(plan_units([str(p)], ReadOptions()), ReadOptions())
    assert [d["id"] for d in docs] == [f"a{i}" for i in range(5)]
    (r,) = rejects
    assert r["reason"] == "corrupt_compressed" and "not trusted" in r["detail"] and r["offset"] == 6
    assert "zstd frame starting at byte" in r["detail"] and "unknown" in r["detail"]


def test_warc_member_failing_its_crc_is_quarantined_and_the_next_record_kept(tmp_path):
    from warcio.warcwriter import WARCWriter

    members = []
    for i in range(3):
        out = io.BytesIO()
        w = WARCWriter(out, gzip=False)
        payload = f"hello world number {i} ".encode() * 5000  # bigger than warcio's read block
        w.write_record(
            w.create_warc_record(
                f"http://e.org/{i}",
                "conversion",
                payload=io.BytesIO(payload),
                warc_headers_dict={"Content-Type": "text/plain"},
            )
        )
        members.append(gzip.compress(out.getvalue(), compresslevel=0))
    bad = bytearray(members[1])
    bad[bad.index(b"hello world number 1")] = ord("j")
    p = tmp_path / "x.warc.gz"
    p.write_bytes(members[0] + bytes(bad) + members[2])
    docs, rejects = read_units(plan_units([str(p)], ReadOptions()), ReadOptions(extra_fields=("url",)))
    assert [d["url"] for d in docs] == ["http://e.org/0", "http://e.org/2"]
    assert [d["offset"] for d in docs] == [0, len(members[0]) + len(bad)]  # real file offsets
    (r,) = rejects
    assert r["reason"] == "corrupt_compressed" and r["offset"] == len(members[0])
    assert "fails its CRC check" in r["detail"] and "http://e.org/1" in r["detail"]
    assert r["id"].startswith("<urn:uuid:")


# -- records_lost ----------------------------------------------------------------------------
def test_parquet_row_group_lost_counts_its_rows(tmp_path):
    p = tmp_path / "rg.parquet"
    n = 300
    pq.write_table(
        pa.table({"text": [f"document number {i} " * 10 for i in range(n)]}), p, row_group_size=100
    )
    col = pq.ParquetFile(p).metadata.row_group(1).column(0)
    start = col.dictionary_page_offset or col.data_page_offset
    data = bytearray(p.read_bytes())
    data[start + 30 : start + col.total_compressed_size - 10] = b"\xab" * (col.total_compressed_size - 40)
    p.write_bytes(bytes(data))
    docs, rejects = read_units(plan_units([str(p)], ReadOptions()), ReadOptions())
    (r,) = rejects
    assert r["records_lost"] == 99 and len(docs) + len(rejects) + r["records_lost"] == n
    p.write_bytes(bytes(data[: len(data) // 2]))  # footer gone: how many rows is unknown
    _, rejects = read_units(plan_units([str(p)], ReadOptions()), ReadOptions())
    (r,) = rejects
    assert r["records_lost"] is None and "unknown" in r["detail"]


def test_single_bad_line_reject_counts_only_itself(tmp_path):
    p = tmp_path / "l.jsonl"
    p.write_bytes(docs_of(2) + b"{broken\n")
    _, rejects = read_units(plan_units([str(p)], ReadOptions()), ReadOptions())
    assert [(r["reason"], r["records_lost"]) for r in rejects] == [("bad_json", None)]
