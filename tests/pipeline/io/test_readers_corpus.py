"""read_corpus: the one reader behind the tokenizer, pretraining preprocess and the n-gram scan.
A bad record either stops the read (strict) or is counted per file and reason (quarantine)."""

from __future__ import annotations

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from babelmill.pipeline.core.schema import REJECT_SCHEMA
from babelmill.pipeline.io.readers import InputError, Quarantine, ReadOptions, plan_units, read_corpus


def _corpus(tmp_path):
    d = tmp_path / "corpus"
    d.mkdir()
    with gzip.open(d / "a.jsonl.gz", "wt") as f:
        f.write(json.dumps({"text": "one"}) + "\n{not json\n" + json.dumps({"text": ""}) + "\n")
        f.write(json.dumps({"text": "two"}) + "\n")
    pq.write_table(pa.table({"text": ["three", None]}), d / "b.parquet")
    return d


def test_quarantine_yields_good_records_and_counts_bad_ones_per_file(tmp_path):
    d = _corpus(tmp_path)
    opts = ReadOptions(batch_size=2)
    q = Quarantine()
    out = tmp_path / "rejects" / "q.parquet"
    got = [(u.source, t) for u, docs in read_corpus(plan_units([str(d)], opts), opts, on_bad="quarantine",
                                                    quarantine=q, quarantine_to=out)
           for t in docs.column("text").to_pylist()]
    assert got == [("a.jsonl.gz", "one"), ("a.jsonl.gz", "two"), ("b.parquet", "three")]
    assert q.records == 3 and q.by_reason == {"bad_json": 1, "empty_text": 1, "missing_text": 1}
    s = q.summary([str(d / "a.jsonl.gz"), str(d / "b.parquet"), "elsewhere.jsonl"])
    assert s["files"] == {
        str(d / "a.jsonl.gz"): {"records": 2, "by_reason": {"bad_json": 1, "empty_text": 1}},
        str(d / "b.parquet"): {"records": 1, "by_reason": {"missing_text": 1}},
        "elsewhere.jsonl": {"records": 0, "by_reason": {}},
    }
    rows = pq.read_table(out)
    assert rows.schema == REJECT_SCHEMA
    assert [(r["source"], r["offset"], r["reason"]) for r in rows.to_pylist()] == [
        ("a.jsonl.gz", 2, "bad_json"), ("a.jsonl.gz", 3, "empty_text"), ("b.parquet", 1, "missing_text")]
    merged = Quarantine()
    merged.merge(s)
    merged.merge(s)
    assert merged.records == 6 and merged.by_reason["bad_json"] == 2


def test_strict_raises_one_input_error_naming_file_and_line(tmp_path):
    d = _corpus(tmp_path)
    opts = ReadOptions(strict=False)  # on_bad decides, not opts.strict
    with pytest.raises(InputError, match=r"a\.jsonl\.gz:2: bad_json: ") as e:
        list(read_corpus(plan_units([str(d)], opts), opts, on_bad="strict"))
    assert (e.value.path, e.value.line, e.value.reason) == (str(d / "a.jsonl.gz"), 2, "bad_json")


def test_no_quarantine_file_when_nothing_is_bad_and_counting_is_not_optional(tmp_path):
    src = tmp_path / "ok.jsonl"
    src.write_text(json.dumps({"text": "fine"}) + "\n")
    opts = ReadOptions()
    units = plan_units([str(src)], opts)
    q = Quarantine()
    out = tmp_path / "q.parquet"
    assert sum(docs.num_rows for _, docs in read_corpus(units, opts, on_bad="quarantine", quarantine=q,
                                                          quarantine_to=out)) == 1
    assert q.records == 0 and q.summary() == {"records": 0, "by_reason": {}, "files": {}} and not out.exists()
    with pytest.raises(ValueError, match="needs a Quarantine"):
        list(read_corpus(units, opts, on_bad="quarantine"))
    with pytest.raises(ValueError, match="unknown on_bad 'skip'"):
        list(read_corpus(units, opts, on_bad="skip"))
