import json
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from babelmill.cli import main as babelmill_main
from babelmill.pipeline.stages.quality import QualityStage, load_quality_config
from babelmill.pipeline.stages.quality.threshold_fit import SANITY, CalibrationError, calibrate, format_table


def main(argv: list[str]) -> int:
    """`babelmill calibrate ARGV`, errors handled as the command line handles them."""
    return babelmill_main(["calibrate", *argv])


EN_WORDS = ("the river town people water farmers market council children bridge summer spring snow "
            "mountain fruit vegetables flood defences residents homes believe changes safer before "
            "and of to in that with have is for on was as are by").split()
ZH_CHARS = "这条河流穿过古老的小镇一直影响着住在岸两边人们生活每年春天山上积雪融化水迅速涨农民不得把牲畜赶到地势较高方"


def en_doc(rng: random.Random, n_words: int) -> str:
    sents, words = [], 0
    while words < n_words:
        k = rng.randint(8, 16)
        sents.append(" ".join(rng.choice(EN_WORDS) for _ in range(k)).capitalize() + ".")
        words += k
    return "\n".join(" ".join(sents[i : i + 3]) for i in range(0, len(sents), 3))


def zh_doc(rng: random.Random, n_chars: int) -> str:
    out = []
    while sum(map(len, out)) < n_chars:
        out.append("".join(rng.choice(ZH_CHARS) for _ in range(rng.randint(10, 25))) + "。")
    return "".join(out)


@pytest.fixture
def corpus(tmp_path):
    rng = random.Random(1)
    rows = [{"id": f"en{i}", "text": en_doc(rng, rng.randint(150, 250)), "lang": "en"} for i in range(120)]
    rows += [{"id": f"zh{i}", "text": zh_doc(rng, rng.randint(300, 600)), "lang": "zh"} for i in range(60)]
    rows += [{"id": f"fr{i}", "text": "Un petit texte.", "lang": "fr"} for i in range(5)]  # too few
    rows += [{"id": "nolang", "text": "no language here"}]
    rng.shuffle(rows)
    p = tmp_path / "in" / "a.jsonl"
    p.parent.mkdir()
    p.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows[:100]), encoding="utf-8")
    t = pa.table({k: [r.get(k) for r in rows[100:]] for k in ("id", "text", "lang")})
    pq.write_table(t, tmp_path / "in" / "b.parquet")
    return tmp_path / "in"


def test_calibrate_proposes_loadable_thresholds_used_by_the_stage(corpus, tmp_path):
    out = tmp_path / "proposed.yaml"
    res = calibrate([str(corpus)], out, sample=100, k=2.0)
    cfg = load_quality_config(out)  # validates against the stage's schema
    prov = cfg.provenance
    assert prov["rule"].startswith("median") and prov["babelmill_version"]
    assert len(prov["units"]) == 2 and all(u["fingerprint"] for u in prov["units"])
    assert prov["languages"]["en"]["seen"] == 120 and prov["languages"]["en"]["sampled"] == 100
    assert prov["languages"]["zh"]["sampled"] == 60
    assert "note" in prov["languages"]["fr"] and "fr" not in res["languages"]
    en, zh = cfg.languages["en"], cfg.languages["zh"]
    # ~200-word documents: median - 2 sigma is far above Gopher's 50, clamped at the strictest limit
    assert en.min_words == SANITY["min_words"][1] == 100
    assert en.min_stop_words is not None and en.min_stop_words >= 2
    assert 0.05 <= en.max_top_2gram_frac <= 0.4
    # Chinese is calibrated in characters, not words
    assert zh.min_chars is not None and zh.min_words is None and zh.min_mean_word_length is None
    assert 30 <= zh.min_chars <= 300
    # the base config's other language overrides are kept
    assert cfg.languages["fi"].min_words == 40
    # every calibrated threshold reports how many sampled docs it drops
    drops = prov["languages"]["en"]["would_drop"]
    assert set(drops) >= {"min_words", "max_dup_5gram_frac", "min_terminal_punct_frac"}
    assert drops["min_words"] == 0

    # the stage uses the proposal: a 70-word English document passes the default config but not this one
    text = en_doc(random.Random(5), 70)
    b = pa.RecordBatch.from_pydict({"id": ["a"], "text": [text], "lang": ["en"]})
    assert QualityStage()(b).column("drop_reason")[0].as_py() is None
    got = QualityStage(config=str(out))(b)
    assert got.column("drop_reason")[0].as_py() == "q_word_count"
    assert got.column("drop_detail")[0].as_py().endswith("< 100")


def test_quantile_rule_and_yaml_shape(corpus, tmp_path):
    out = tmp_path / "q.yaml"
    res = calibrate([str(corpus)], out, sample=100, quantile=0.05)
    data = yaml.safe_load(out.read_text(encoding="utf-8"))
    assert list(data)[:2] == ["version", "provenance"]
    assert {"defaults", "unspaced", "languages", "terminal_punctuation"} <= set(data)
    assert data["provenance"]["rule"].startswith("quantile")
    # quantile 0.05 of the lower-bound statistics drops about 5% of the sample (ties aside)
    assert res["provenance"]["languages"]["en"]["would_drop"]["min_words"] <= 10
    with pytest.raises(CalibrationError, match="quantile"):
        calibrate([str(corpus)], None, quantile=0.7)


def test_sampling_is_seeded(corpus):
    a = calibrate([str(corpus)], None, sample=20, seed=3)
    b = calibrate([str(corpus)], None, sample=20, seed=3)
    assert a["languages"] == b["languages"]


def test_cli_prints_table(corpus, tmp_path, capsys):
    out = tmp_path / "cli.yaml"
    assert main(["--input", str(corpus), "--output", str(out), "--sample", "50", "--k", "3"]) == 0
    text = capsys.readouterr().out
    assert "lang" in text and "min_words" in text and "\nen " in text and "\nzh " in text
    assert out.is_file()
    assert "fewer than" in format_table(yaml.safe_load(out.read_text(encoding="utf-8")))
    capsys.readouterr()
    assert main(["--input", str(tmp_path / "missing"), "--output", str(out)]) == 2
    assert capsys.readouterr().err.startswith("babelmill: error: ")
    for bad, what in ((["--k", "-1"], "--k must be > 0"), (["--quantile", "0.7"], "--quantile must be in")):
        assert main(["--input", str(corpus), "--output", str(out), *bad]) == 2
        err = capsys.readouterr().err
        assert err.startswith("babelmill: error: ") and what in err and err.count("\n") == 1, err


# -- model scores (perplexity, quality_classifier) ---------------------------------------------------
def test_model_score_columns_give_ccnet_cutoffs_and_bounds(tmp_path):
    import numpy as np

    rng = random.Random(2)
    n = 80
    ppl = [10 ** rng.uniform(1.5, 3.0) for _ in range(n)]
    qs = [rng.uniform(0.2, 1.0) for _ in range(n)]
    t = pa.table({"id": [f"d{i}" for i in range(n)], "text": [en_doc(rng, 120) for _ in range(n)],
                  "lang": ["en"] * n, "perplexity": pa.array(ppl, pa.float32()), "quality_score": pa.array(qs, pa.float32())})
    (tmp_path / "in").mkdir()
    pq.write_table(t, tmp_path / "in" / "scored.parquet")
    out = tmp_path / "p.yaml"
    res = calibrate([str(tmp_path / "in")], out, sample=1000, k=2.0)
    en = load_quality_config(out).languages["en"]
    as_read = np.array(pa.array(ppl, pa.float32()).to_pylist())  # the values the run wrote
    assert en.perplexity_head == round(float(np.percentile(as_read, 30)), 1)
    assert en.perplexity_tail == round(float(np.percentile(as_read, 60)), 1)
    assert en.max_perplexity is not None and en.max_perplexity > en.perplexity_tail
    assert 0.0 <= en.min_quality_score <= 0.9
    info = res["provenance"]["languages"]["en"]
    assert info["scores"]["perplexity"]["scored"] == n and info["scores"]["quality_score"]["source"].startswith("`quality")
    assert {"max_perplexity", "min_quality_score"} <= set(info["would_drop"])
    assert "perplexity_head" in format_table(res)
    # languages without scores get no model-score proposals
    assert "perplexity_head" not in res["languages"].get("zh", {})


def test_calibrate_scores_with_model_directories(tmp_path, capsys):
    from tests.pipeline.quality_models.helpers import tiny_classifiers

    rng = random.Random(4)
    rows = [{"id": f"en{i}", "text": en_doc(rng, 100), "lang": "en"} for i in range(40)]
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    from babelmill.pipeline.quality_models.cli import train_lms

    train_lms([str(tmp_path / "in")], tmp_path / "lm", order=2)
    tiny_classifiers(tmp_path / "clf", langs=("en",), n=20)
    out = tmp_path / "m.yaml"
    assert main(["--input", str(tmp_path / "in"), "--output", str(out), "--sample", "100",
                 "--perplexity-models", str(tmp_path / "lm"), "--quality-models", str(tmp_path / "clf")]) == 0
    en = load_quality_config(out).languages["en"]
    assert en.perplexity_head is not None and en.perplexity_head <= en.perplexity_tail
    assert en.min_quality_score is not None
    (tmp_path / "lm" / "en.arpa").write_text("garbage\n")
    assert main(["--input", str(tmp_path / "in"), "--output", str(out), "--perplexity-models", str(tmp_path / "lm")]) == 2
    assert "en.arpa" in capsys.readouterr().err
