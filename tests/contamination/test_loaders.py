import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from babelmill.contamination.benchmarks.loaders import load_benchmark, load_benchmarks, save_jsonl
from babelmill.contamination.items import BenchmarkError, MCItem


def _jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in rows),
                    encoding="utf-8")
    return path


def test_lm_eval_jsonl_index_and_letter(tmp_path):
    p = _jsonl(tmp_path / "b.jsonl", [
        {"id": "q1", "question": "2+2?", "choices": ["3", "4", "5"], "answer": 1, "subject": "math"},
        {"id": "q2", "question": "Capital of France?", "choices": ["Rome", "Paris"], "answer": "B", "lang": "en"},
        {"id": "q3", "question": "Colour of snow?", "choices": ["black", "white"], "answer": "white"},
    ])
    b = load_benchmark(p)
    assert [it.gold for it in b.items] == [1, 1, 1]
    assert b.items[0].answer == "4" and b.items[0].subject == "math"
    assert b.items[1].lang == "en" and b.items[0].lang == "und"
    assert b.name == "b"


def test_arc_shapes_nested_and_hf(tmp_path):
    nested = {"id": "Mercury_1", "question": {"stem": "Which is a gas?", "choices": [
        {"text": "ice", "label": "1"}, {"text": "steam", "label": "2"}, {"text": "rock", "label": "3"}]},
        "answerKey": "2"}
    hf = {"id": "Mercury_2", "question": "Which is hot?", "choices": {"text": ["sun", "moon"], "label": ["A", "B"]},
          "answerKey": "A", "answer": 0}
    b = load_benchmark(_jsonl(tmp_path / "ARC-Easy-Test.flat.jsonl", [nested, hf]), lang="en")
    assert [(it.id, it.gold, it.lang) for it in b.items] == [("Mercury_1", 1, "en"), ("Mercury_2", 0, "en")]
    assert b.name == "ARC-Easy-Test"


def test_exams_language_names(tmp_path):
    row = {"id": "x1", "question": {"stem": "Koja je boja neba?", "choices": [
        {"text": "plava", "label": "A"}, {"text": "zelena", "label": "B"}]}, "answerKey": "A",
        "info": {"grade": 4, "subject": "Geography", "language": "Croatian"}}
    row2 = dict(row, id="x2", info={"subject": "History", "language": "Bulgarian"})
    b = load_benchmark(_jsonl(tmp_path / "test.jsonl", [row, row2]))
    assert [(it.lang, it.subject) for it in b.items] == [("hr", "Geography"), ("bg", "History")]


def test_mmlu_csv(tmp_path):
    p = tmp_path / "astronomy_test.csv"
    p.write_text('What orbits the Earth?,The Moon,Mars,"Venus, the planet",The Sun,A\nWhat is H2O?,salt,water,air,fire,B\n',
                 encoding="utf-8")
    b = load_benchmark(p, lang="en")
    assert [it.gold for it in b.items] == [0, 1]
    assert b.items[0].choices[2] == "Venus, the planet" and b.items[0].subject == "astronomy"


def test_parquet(tmp_path):
    t = pa.table({"id": ["a", "b"], "question": ["q1", "q2"], "choices": [["x", "y"], ["u", "v", "w"]], "answer": [1, 2]})
    pq.write_table(t, tmp_path / "de.parquet")
    b = load_benchmark(tmp_path / "de.parquet")
    assert [(it.lang, it.gold, len(it.choices)) for it in b.items] == [("de", 1, 2), ("de", 2, 3)]


def test_translations_folder_and_merge(tmp_path):
    for lang, q in (("en", "Which one?"), ("fr", "Lequel ?")):
        _jsonl(tmp_path / "bench" / f"{lang}.jsonl", [{"id": "1", "question": q, "choices": ["a", "b"], "answer": 0}])
    b = load_benchmark(tmp_path / "bench")
    assert b.name == "bench" and b.languages == ["en", "fr"]
    merged = load_benchmarks([tmp_path / "bench" / "en.jsonl", tmp_path / "bench" / "fr.jsonl"])
    assert len(merged) == 1 and merged[0].languages == ["en", "fr"]


@pytest.mark.parametrize("row, needle", [
    ({"id": "q7", "choices": ["a", "b"], "answer": 0}, "missing or empty question"),
    ({"id": "q7", "question": "?", "answer": 0}, "missing choices"),
    ({"id": "q7", "question": "?", "choices": ["a", "b"]}, "missing answer"),
    ({"id": "q7", "question": "?", "choices": ["a", "b"], "answer": 4}, "out of range"),
    ({"id": "q7", "question": "?", "choices": ["a", "b"], "answer": "E"}, "out of range"),
])
def test_bad_items_name_file_line_item(tmp_path, row, needle):
    good = {"id": "q1", "question": "?", "choices": ["a", "b"], "answer": 0}
    p = _jsonl(tmp_path / "bad.jsonl", [good, "", row])
    with pytest.raises(BenchmarkError) as e:
        load_benchmark(p)
    msg = str(e.value)
    assert f"{p}:3:" in msg and "'q7'" in msg and needle in msg


def test_duplicate_ids_and_skip_bad(tmp_path):
    rows = [{"id": "q1", "question": "?", "choices": ["a", "b"], "answer": 0},
            {"id": "q2", "question": "?", "choices": ["a", "b"], "answer": 9},
            {"id": "q1", "question": "!", "choices": ["a", "b"], "answer": 1}]
    p = _jsonl(tmp_path / "dup.jsonl", [rows[0], rows[2]])
    with pytest.raises(BenchmarkError, match=r"dup.jsonl:2: item 'q1': duplicate id .*first seen at .*dup.jsonl:1"):
        load_benchmark(p)
    b = load_benchmark(_jsonl(tmp_path / "mixed.jsonl", rows), skip_bad=True)
    assert [it.id for it in b.items] == ["q1"] and len(b.skipped) == 2


def test_csv_error_has_line(tmp_path):
    p = tmp_path / "x_test.csv"
    p.write_text("q,a,b,c,d,A\nq2,a,b,c,d,Z\n", encoding="utf-8")
    with pytest.raises(BenchmarkError, match=r"x_test.csv:2: item 'x-1'"):
        load_benchmark(p)


def test_roundtrip_own_format(tmp_path):
    it = MCItem("7", "zh", "问题？", ("甲", "乙"), 1, "s", {"donors": ["3"]})
    save_jsonl([it], tmp_path / "zh.jsonl")
    back = load_benchmark(tmp_path / "zh.jsonl").items[0]
    assert back == it


def test_parquet_error_names_row(tmp_path):
    t = pa.table({"id": ["a", "b"], "question": ["q1", "q2"], "choices": [["x", "y"], ["u", "v"]], "answer": [1, 7]})
    pq.write_table(t, tmp_path / "bad.parquet")
    with pytest.raises(BenchmarkError, match=r"bad.parquet \(row 1\): item 'b': answer 7 -> index 7 out of range"):
        load_benchmark(tmp_path / "bad.parquet")
