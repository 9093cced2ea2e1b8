"""`babelmill quality-model train` and `train-lm`: inputs through the pipeline's readers (JSONL
and Parquet, broken records counted), models and held-out metrics written, errors as one line."""

from __future__ import annotations

import json
import random

import pyarrow as pa
import pyarrow.parquet as pq

from babelmill.cli import main
from babelmill.pipeline.stages.perplexity import PerplexityStage
from babelmill.pipeline.stages.quality_classifier import QualityClassifierStage
from tests.pipeline.quality_models.helpers import good_en, good_zh, junk_en, junk_zh


def _inputs(tmp_path, n=30):
    rng = random.Random(3)
    pos = [{"text": good_en(rng), "lang": "en"} for _ in range(n)] + [{"text": good_zh(rng), "lang": "zh"} for _ in range(n)]
    neg = [{"text": junk_en(rng), "lang": "en"} for _ in range(n)] + [{"text": junk_zh(rng), "lang": "zh"} for _ in range(n)]
    (tmp_path / "pos.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in pos)
                                        + '{"text": "broken\n', encoding="utf-8")
    pq.write_table(pa.Table.from_pylist(neg), tmp_path / "neg.parquet")
    return tmp_path / "pos.jsonl", tmp_path / "neg.parquet"


def test_train_writes_models_and_held_out_metrics(tmp_path, capsys):
    pos, neg = _inputs(tmp_path)
    out = tmp_path / "models"
    args = ["quality-model", "train", "--positive", str(pos), "--negative", str(neg), "--output", str(out),
            "--epoch", "15", "--dim", "8", "--bucket", "2000"]
    assert main(args) == 0
    table = capsys.readouterr().out
    assert "precision" in table and "\nen " in table and "\nzh " in table
    for lang in ("en", "zh"):
        m = json.loads((out / f"{lang}.metrics.json").read_text())
        h = m["held_out"]
        assert h["positive"] == h["negative"] == 6  # 20% of 30 per class
        assert h["precision"] >= 0.9 and h["recall"] >= 0.9
        assert m["train"] == {"positive": 24, "negative": 24}
        assert m["preprocess"]["kind"] == "babelmill" and m["params"]["zeroed_allocations"]
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["read"]["positive"]["rejected_records"] == 1  # the broken JSONL line, counted
    # the same seed and data give the same model
    again = tmp_path / "again"
    assert main([*args[:-7], str(again), *args[-6:]]) == 0
    assert (again / "en.bin").read_bytes() == (out / "en.bin").read_bytes()
    # the stage uses them
    st = QualityClassifierStage(models=str(out), languages=["en", "zh"])
    st.preflight()


def test_train_multilingual_and_one_lang_default(tmp_path, capsys):
    pos, neg = _inputs(tmp_path)
    out = tmp_path / "multi"
    assert main(["quality-model", "train", "--positive", str(pos), "--negative", str(neg), "--output", str(out),
                 "--multilingual", "--epoch", "10", "--dim", "8", "--bucket", "2000"]) == 0
    m = json.loads((out / "multilingual.metrics.json").read_text())
    assert m["languages"] == ["en", "zh"] and m["held_out"]["n"] == 24
    # documents without a language, with exactly one --lang
    rng = random.Random(4)
    (tmp_path / "p.jsonl").write_text("".join(json.dumps({"text": good_en(rng)}) + "\n" for _ in range(10)))
    (tmp_path / "n.jsonl").write_text("".join(json.dumps({"text": junk_en(rng)}) + "\n" for _ in range(10)))
    assert main(["quality-model", "train", "--positive", str(tmp_path / "p.jsonl"), "--negative",
                 str(tmp_path / "n.jsonl"), "--lang", "en", "--output", str(tmp_path / "one"), "--epoch", "5",
                 "--dim", "8", "--bucket", "1000"]) == 0
    assert (tmp_path / "one" / "en.bin").is_file()


def test_train_errors_are_one_line_exit_2(tmp_path, capsys):
    pos, neg = _inputs(tmp_path, n=3)
    code = main(["quality-model", "train", "--positive", str(pos), "--negative", str(tmp_path / "missing.jsonl"),
                 "--output", str(tmp_path / "m")])
    assert code == 2 and "missing.jsonl" in capsys.readouterr().err
    code = main(["quality-model", "train", "--positive", str(pos), "--negative", str(neg), "--lang", "fr",
                 "--output", str(tmp_path / "m")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "no positive documents" in err


def test_train_lm_writes_arpa_and_sidecar_the_stage_uses(tmp_path, capsys):
    pos, _ = _inputs(tmp_path)
    out = tmp_path / "lm"
    assert main(["quality-model", "train-lm", "--input", str(pos), "--output", str(out), "--order", "3"]) == 0
    info = json.loads((out / "zh.lm.json").read_text())
    assert info["tokens"] == "chars" and info["order"] == 3 and info["sentences"] > 0
    assert json.loads((out / "en.lm.json").read_text())["tokens"] == "words"
    rng = random.Random(8)
    words = good_en(rng).split()
    rng.shuffle(words)
    b = pa.RecordBatch.from_pydict({"id": ["a", "b", "c", "d"], "lang": ["en", "en", "zh", "zh"],
                                    "text": [good_en(rng), " ".join(words), good_zh(rng), junk_zh(rng)]})
    ppl = PerplexityStage(models=str(out), languages=["en", "zh"])(b).column("perplexity").to_pylist()
    assert ppl[0] < ppl[1] and ppl[2] < ppl[3]


def test_prepare_lm_writes_lmplz_input_as_the_stage_tokenises(tmp_path, capsys):
    from babelmill.pipeline.quality_models.ngram import train_ngram
    from babelmill.pipeline.quality_models.text import lm_sentences

    (tmp_path / "in.jsonl").write_text(json.dumps({"text": "The River, 1948!\n\nSecond Line", "lang": "en"}) + "\n"
                                       + json.dumps({"text": "河流。水", "lang": "zh"}) + "\n", encoding="utf-8")
    assert main(["quality-model", "prepare-lm", "--input", str(tmp_path / "in.jsonl"), "--lang", "en",
                 "--output", str(tmp_path / "en.txt")]) == 0
    assert (tmp_path / "en.txt").read_text(encoding="utf-8").splitlines() == ["the river, 0000!", "second line"]
    assert main(["quality-model", "prepare-lm", "--input", str(tmp_path / "in.jsonl"), "--lang", "zh",
                 "--output", str(tmp_path / "zh.txt")]) == 0
    lines = (tmp_path / "zh.txt").read_text(encoding="utf-8").splitlines()
    assert lines == lm_sentences(["河流。水"], "line", "ccnet", "chars")[0] == ["河 流 . 水"]
    # an ARPA trained on that file (what lmplz would do) scores the text through the stage
    d = tmp_path / "lm"
    train_ngram([s.split() for s in lines], 2).write_arpa(d / "zh.arpa")
    b = pa.RecordBatch.from_pydict({"id": ["a"], "text": ["河流。水"], "lang": ["zh"]})
    assert PerplexityStage(models=str(d), languages=["zh"])(b).column("perplexity")[0].as_py() is not None
