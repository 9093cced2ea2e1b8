import json
import pickle

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from babelmill.contamination.items import MCItem
from babelmill.contamination.ngram import (
    NgramConfig,
    build_index,
    make_stage,
    normalize,
    scan_corpus,
    scan_record_batch,
)
from babelmill.pipeline.io.readers import InputError

EN = MCItem("e1", "en", "Which right does Article 3 of the Universal Declaration of Human Rights state?",
            ("Everyone has the right to life, liberty and security of person.", "x"), 0)
SHORT = MCItem("e2", "en", "What is the capital city of Vorland?", ("Kesh", "Tamor"), 0)
ZH = MCItem("z1", "zh", "《世界人权宣言》第三条规定了哪项权利？", ("人人有权享有生命、自由和人身安全。", "乙"), 0)
FR = MCItem("e1", "fr", "Quel droit l'article 3 de la Déclaration universelle des droits de l'homme énonce-t-il ?",
            ("Tout individu a droit à la vie, à la liberté et à la sûreté de sa personne.", "x"), 0)


def test_normalize():
    assert normalize("Ｈｅｌｌｏ,  WORLD!!  —  ok") == "hello world ok"
    assert normalize("Straße") == "strasse"


def test_index_word_char_and_short_questions():
    idx = build_index([EN, SHORT, ZH], "b")
    assert 8 in idx.word and 13 in idx.char
    assert 7 in idx.word  # the 7-word question indexed whole
    found, hits = idx.match("Blah. which RIGHT does article 3 of the universal declaration of human rights state ... more")
    assert found == {"b:en:e1"} and hits >= 1
    assert idx.match("Question: What is the capital city of Vorland?\nAnswer: Kesh")[0] == {"b:en:e2"}
    assert idx.match("What is the capital city of Zorbia?")[0] == set()
    assert idx.match("新闻：《世界人权宣言》第三条规定了哪项权利？答案")[0] == {"b:zh:z1"}
    # the long gold answer is indexed too, and so is the run from question into answer
    assert idx.match("everyone has the right to life liberty and security of person")[0] == {"b:en:e1"}
    assert idx.match("... of Human Rights state? Everyone has the right")[0] == {"b:en:e1"}
    cloze = MCItem("c1", "en", 'Complete: "All human beings are born free ..."', ("and equal in dignity.", "x"), 0)
    assert build_index([cloze]).match("All human beings are born free and equal in dignity and rights.")[0] == {"en:c1"}
    # an English template around Chinese text indexes only the Chinese runs
    tpl = MCItem("z2", "zh", 'Complete the statement from Article 3 of the Universal Declaration: "人人有权享有 ..."',
                 ("生命、自由和人身安全。", "乙"), 0)
    zidx = build_index([tpl])
    assert zidx.match("Complete the statement from Article 3 of the Universal Declaration of Human Rights")[0] == set()
    assert zidx.match("第三条 人人有权享有生命、自由和人身安全。")[0] == {"zh:z2"}
    # a translation shares no n-gram
    assert idx.match(FR.question + " " + FR.answer)[0] == set()


def test_record_batch_stage_is_pure_and_picklable():
    idx = build_index([EN, SHORT, ZH], "b")
    rb = pa.RecordBatch.from_pylist([{"id": "d1", "text": "what is the capital city of vorland"},
                                     {"id": "d2", "text": "nothing here"}, {"id": "d3", "text": None}])
    out = scan_record_batch(rb, idx)
    assert out.schema.field("contam_items").type == pa.list_(pa.string())
    assert out.column("contam_items").to_pylist() == [["b:en:e2"], [], []]
    assert out.column("contam_ngrams").to_pylist() == [1, 0, 0]
    assert out.column("id").to_pylist() == ["d1", "d2", "d3"]
    stage = pickle.loads(pickle.dumps(make_stage(idx)))  # noqa: S301 - our own bytes, as Ray ships them
    assert stage(pa.Table.from_batches([rb])).column("contam_items").to_pylist() == [["b:en:e2"], [], []]


def test_scan_corpus_files_and_dirs(tmp_path):
    (tmp_path / "c").mkdir()
    with open(tmp_path / "c" / "a.jsonl", "w") as f:
        for i, t in enumerate(["intro " + EN.question, "unrelated text", "{bad json", SHORT.question + " Kesh"]):
            f.write((json.dumps({"id": f"a{i}", "text": t, "lang": "en"}) if i != 2 else t) + "\n")
    pq.write_table(pa.table({"text": [ZH.question + ZH.answer, "无关"], "id": ["p0", "p1"]}), tmp_path / "c" / "b.parquet")
    idx = build_index([EN, SHORT, ZH, FR], "b", NgramConfig())
    rep = scan_corpus([tmp_path / "c"], idx, batch_size=2)
    assert rep["docs_scanned"] == 5 and rep["docs_overlapping"] == 3
    b = rep["benchmarks"]["b"]
    assert b["en"]["items_overlapping"] == 2 and b["en"]["docs_overlapping"] == 2
    assert b["zh"]["items_overlapping"] == 1 and b["fr"]["items_overlapping"] == 0
    assert rep["docs_by_corpus_lang"] == {"en": 2}


def test_scan_corpus_counts_bad_lines_per_file_or_raises_when_strict(tmp_path):
    """A broken line is never skipped silently: quarantined and counted per corpus file in the
    result (the audit JSON's overlap section), or, strict, an InputError naming file:line."""
    (tmp_path / "c").mkdir()
    bad = tmp_path / "c" / "a.jsonl"
    bad.write_text("\n".join([json.dumps({"id": "a0", "text": SHORT.question + " Kesh"}), '{"id": "a1", "text": "cut',
                              json.dumps({"id": "a2", "text": "unrelated text"})]) + "\n")
    clean = tmp_path / "c" / "b.jsonl"
    clean.write_text(json.dumps({"id": "b0", "text": "nothing to see"}) + "\n")
    idx = build_index([EN, SHORT], "b")
    rep = scan_corpus([tmp_path / "c"], idx)
    assert rep["docs_scanned"] == 3 and rep["benchmarks"]["b"]["en"]["items_overlapping"] == 1
    q = rep["quarantined"]
    assert (q["on_bad"], q["records"], q["by_reason"]) == ("quarantine", 1, {"bad_json": 1})
    assert q["files"] == {str(bad): {"records": 1, "by_reason": {"bad_json": 1}},
                          str(clean): {"records": 0, "by_reason": {}}}
    with pytest.raises(InputError, match=r"a\.jsonl:2: bad_json: ") as e:
        scan_corpus([tmp_path / "c"], idx, on_bad="strict")
    assert (e.value.path, e.value.line) == (str(bad), 2)
