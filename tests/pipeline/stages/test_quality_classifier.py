"""The quality_classifier stage: tiny fastText models trained here separate held-out good
documents from junk; thresholds per language from the configuration layers; missing,
mislabelled and corrupt models."""

from __future__ import annotations

import logging
import random

import pyarrow as pa
import pytest
import yaml

from babelmill.pipeline.quality_models.classifier import auc
from babelmill.pipeline.stages.quality_classifier import QualityClassifierStage
from babelmill.yamlconf import ConfigError
from tests.pipeline.quality_models.helpers import good_en, good_zh, junk_en, junk_zh, tiny_classifiers


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("clf")
    metrics = tiny_classifiers(d)
    return d, metrics


def batch(rows):
    return pa.RecordBatch.from_pydict({"id": [str(i) for i in range(len(rows))], "text": [t for t, _ in rows],
                                       "lang": [lang for _, lang in rows]})


def test_held_out_documents_are_separated(models):
    d, metrics = models
    for lang in ("en", "zh"):
        h = metrics[lang]["held_out"]
        assert h["n"] == 20 and h["positive"] == h["negative"] == 10
        assert h["precision"] >= 0.9 and h["recall"] >= 0.9 and h["auc"] >= 0.95, (lang, h)
    assert (d / "en.metrics.json").is_file()
    # fresh documents (another seed) through the stage
    rng = random.Random(99)
    rows = [(good_en(rng), "en") for _ in range(10)] + [(junk_en(rng), "en") for _ in range(10)]
    rows += [(good_zh(rng), "zh") for _ in range(10)] + [(junk_zh(rng), "zh") for _ in range(10)]
    out = QualityClassifierStage(models=str(d), languages=["en", "zh"])(batch(rows))
    s = out.column("quality_score").to_pylist()
    assert out.schema.field("quality_score").type == pa.float32()
    for k in (0, 20):
        assert auc(s[k:k + 20], [1] * 10 + [0] * 10) >= 0.95
    assert out.column("drop_reason").null_count == len(rows)  # no threshold configured


def _config(tmp_path, **langs):
    p = tmp_path / "quality.yaml"
    p.write_text(yaml.safe_dump({"languages": langs}), encoding="utf-8")
    return str(p)


def test_threshold_drop_and_score_only(models, tmp_path):
    d, _ = models
    rng = random.Random(5)
    rows = [(good_en(rng), "en"), (junk_en(rng), "en"), (junk_zh(rng), "zh")]
    cfg = _config(tmp_path, en={"min_quality_score": 0.5})
    out = QualityClassifierStage(models=str(d), languages=["en", "zh"], config=cfg)(batch(rows))
    s = out.column("quality_score").to_pylist()
    assert s[0] > 0.5 > s[1]
    assert out.column("drop_reason").to_pylist() == [None, "quality_score_low", None]  # zh: no threshold
    assert out.column("drop_detail")[1].as_py() == f"quality_score={s[1]:.3f} < 0.5"
    only = QualityClassifierStage(models=str(d), languages=["en", "zh"], config=cfg, score_only=True)(batch(rows))
    assert "drop_reason" not in only.schema.names
    assert only.column("quality_score").to_pylist() == s


def test_registry_quality_layer_wins(models, tmp_path):
    from babelmill.languages import DEFAULT_PATH

    d, _ = models
    doc = yaml.safe_load(DEFAULT_PATH.read_text(encoding="utf-8"))
    for lang in doc["languages"]:
        if lang["code"] == "en":
            lang["quality"] = {"min_quality_score": 0.999}
    reg = tmp_path / "languages.yaml"
    reg.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    rng = random.Random(6)
    out = QualityClassifierStage(models=str(d), languages=["en"], registry=str(reg),
                                 config=_config(tmp_path, en={"min_quality_score": 0.01}))(batch([(junk_en(rng), "en")]))
    assert out.column("drop_reason")[0].as_py() == "quality_score_low"


def test_multilingual_model_covers_languages_without_their_own(tmp_path, caplog):
    tiny_classifiers(tmp_path / "multi", multilingual=True)
    rng = random.Random(7)
    with caplog.at_level(logging.WARNING, logger="babelmill.quality_models"):
        st = QualityClassifierStage(models=str(tmp_path / "multi"), languages=["en", "zh", "fr"])
        st.preflight()
        out = st(batch([(good_en(rng), "en"), (junk_zh(rng), "zh"), ("bonjour", "fr")]))
    assert not caplog.records  # multilingual.bin covers every language
    s = out.column("quality_score").to_pylist()
    assert s[0] > 0.5 > s[1] and s[2] is not None


def test_missing_model_null_one_warning_and_strict(models, caplog):
    d, _ = models
    st = QualityClassifierStage(models=str(d), languages=["en", "fr", "de"])
    rows = [("the river", "en"), ("la rivière", "fr"), ("le pont", "fr"), ("der Fluss", "de")]
    with caplog.at_level(logging.WARNING, logger="babelmill.quality_models"):
        out = st(batch(rows))
        st(batch(rows))
    msgs = [r.getMessage() for r in caplog.records]
    assert len(msgs) == 2 and any("'fr' (French)" in m for m in msgs) and any("'de' (German)" in m for m in msgs)
    assert all(str(d) in m for m in msgs)
    assert out.column("quality_score").to_pylist()[1:] == [None, None, None]
    with pytest.raises(ConfigError, match=rf"'de' \(German\) in {d}.*strict"):
        QualityClassifierStage(models=str(d), languages=["en", "de"], strict=True).preflight()


def test_corrupt_or_mislabelled_model_is_named_at_start_up(models, tmp_path):
    import shutil

    d, _ = models
    bad = tmp_path / "bad"
    shutil.copytree(d, bad)
    (bad / "zh.bin").write_bytes(b"\x00" * 64)
    with pytest.raises(ConfigError, match=rf"cannot load fastText model {bad / 'zh.bin'}"):
        QualityClassifierStage(models=str(bad), languages=["en", "zh"]).preflight()
    truncated = tmp_path / "truncated"
    shutil.copytree(d, truncated)
    data = (d / "zh.bin").read_bytes()
    (truncated / "zh.bin").write_bytes(data[: len(data) // 3])
    with pytest.raises(ConfigError, match=rf"{truncated / 'zh.bin'}"):
        QualityClassifierStage(models=str(truncated), languages=["en", "zh"]).preflight()
    with pytest.raises(ConfigError, match=r"has no label __label__good.*__label__hq"):
        QualityClassifierStage(models=str(d), languages=["en"], positive_label="good").preflight()
