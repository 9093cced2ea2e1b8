"""tokenizer/corpus.py reads through the pipeline's read_corpus: broken records are counted in
the ReadReport by reason (quarantine, the default) or stop the read (strict)."""

from __future__ import annotations

import json

import pytest

from babelmill.pipeline.io.readers import InputError
from babelmill.tokenizer.corpus import ReadReport, iter_docs


def _write(path):
    rows = [json.dumps({"text": "hello", "lang": "en"}), "{broken", json.dumps({"text": "jambo", "lang": "sw"}),
            json.dumps({"text": "hallo", "lang_true": "de"}), json.dumps({"text": "   ", "lang": "en"})]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_iter_docs_counts_rejects_and_non_target_languages(tmp_path):
    src = _write(tmp_path / "c.jsonl")
    report = ReadReport()
    docs = list(iter_docs([str(src)], {"en", "de"}, report=report))
    assert [(d.key, d.lang, d.text) for d in docs] == [("c.jsonl#1", "en", "hello"), ("c.jsonl#4", "de", "hallo")]
    assert report.rejected == {"bad_json": 1, "empty_text": 1}
    assert report.non_target == {"sw": 1}


def test_iter_docs_strict_raises_at_the_first_broken_record(tmp_path):
    src = _write(tmp_path / "c.jsonl")
    with pytest.raises(InputError, match=r"c\.jsonl:2: bad_json"):
        list(iter_docs([str(src)], {"en"}, on_bad="strict"))
