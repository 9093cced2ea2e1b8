"""The perplexity stage: CCNet's perplexity from a per-language KenLM directory, checked
against a perplexity computed here from the ARPA's own numbers; buckets and drops from the
quality configuration layers; missing and corrupt models."""

from __future__ import annotations

import io
import logging
import pickle

import pyarrow as pa
import pytest

from babelmill.pipeline.core.stage import StageError
from babelmill.pipeline.stages.perplexity import PerplexityStage
from babelmill.yamlconf import ConfigError
from tests.pipeline.quality_models.helpers import EN_ARPA, ZH_ARPA, close, sentence_perplexity, write_models


def batch(rows):
    return pa.RecordBatch.from_pydict({"id": [str(i) for i in range(len(rows))], "text": [t for t, _ in rows],
                                       "lang": [lang for _, lang in rows]})


def test_perplexity_matches_the_arpa_and_orders_in_domain_below_shuffled(tmp_path):
    d = write_models(tmp_path / "lm")
    st = PerplexityStage(models=str(d), languages=["en", "zh"])
    out = st(batch([("The cat sat on the mat", "en"), ("mat the on sat cat the", "en"),
                    ("The CAT sat on the mat 42", "en"), ("河流水", "zh"), ("水流河", "zh")]))
    ppl = out.column("perplexity").to_pylist()
    assert close(ppl[0], sentence_perplexity(EN_ARPA, "the cat sat on the mat".split()))
    assert close(ppl[1], sentence_perplexity(EN_ARPA, "mat the on sat cat the".split()))
    # CCNet normalisation: lower-cased, digits -> 0 ("00" is not in the model: <unk>)
    assert close(ppl[2], sentence_perplexity(EN_ARPA, "the cat sat on the mat 00".split()))
    # zh is unspaced in the registry: one character one token
    assert close(ppl[3], sentence_perplexity(ZH_ARPA, ["河", "流", "水"]))
    assert ppl[0] < ppl[1] and ppl[3] < ppl[4]
    assert out.schema.field("perplexity").type == pa.float32()
    assert out.column("perplexity_bucket").null_count == 5  # no cutoffs configured
    assert out.column("drop_reason").null_count == 5  # no bounds configured: nothing dropped


def test_line_unit_scores_each_line(tmp_path):
    d = write_models(tmp_path / "lm", zh=False)
    text = "the cat sat\n\non the mat"
    doc = PerplexityStage(models=str(d), languages=["en"])(batch([(text, "en")]))
    line = PerplexityStage(models=str(d), languages=["en"], unit="line")(batch([(text, "en")]))
    # document: newlines removed, as CCNet ("sat" + "on" glued into one unknown word)
    assert close(doc.column("perplexity")[0].as_py(), sentence_perplexity(EN_ARPA, "the cat saton the mat".split()))
    import math

    from tests.pipeline.quality_models.helpers import arpa_log10, parse_arpa

    probs, bows, order = parse_arpa(EN_ARPA)
    total, n = 0.0, 0
    for toks in (["the", "cat", "sat"], ["on", "the", "mat"]):
        ctx = ("<s>",)
        for w in [*toks, "</s>"]:
            total += arpa_log10(probs, bows, order, ctx, w)
            ctx = (*ctx, w)
        n += len(toks) + 1
    assert close(line.column("perplexity")[0].as_py(), math.pow(10, -total / n))


def _config(tmp_path, **en):
    import yaml

    p = tmp_path / "quality.yaml"
    p.write_text(yaml.safe_dump({"languages": {"en": en}}), encoding="utf-8")
    return str(p)


def test_buckets_and_drops_come_from_the_quality_config_and_score_only_drops_nothing(tmp_path):
    d = write_models(tmp_path / "lm", zh=False)
    rows = [("the cat sat on the mat", "en"), ("mat the on sat cat the", "en"), ("cat cat cat mat mat on", "en")]
    good, bad = (sentence_perplexity(EN_ARPA, rows[i][0].split()) for i in (0, 1))
    cfg = _config(tmp_path, perplexity_head=good * 1.01, perplexity_tail=bad * 0.99, max_perplexity=bad * 1.5,
                  drop_perplexity_buckets=["tail"])
    out = PerplexityStage(models=str(d), languages=["en"], config=cfg)(batch(rows))
    assert out.column("perplexity_bucket").to_pylist()[:2] == ["head", "tail"]
    reasons = out.column("drop_reason").to_pylist()
    ppl = out.column("perplexity").to_pylist()
    assert reasons[0] is None and reasons[1] == "perplexity_bucket"
    assert out.column("drop_detail")[1].as_py().startswith("bucket=tail (perplexity=")
    assert (reasons[2] == "perplexity_high") == (ppl[2] > bad * 1.5)
    tight = _config(tmp_path, max_perplexity=good * 0.5)
    out = PerplexityStage(models=str(d), languages=["en"], config=tight)(batch(rows))
    assert out.column("drop_reason").to_pylist() == ["perplexity_high"] * 3
    assert out.column("drop_detail")[0].as_py() == f"perplexity={good:.1f} > {good * 0.5:g}"
    only = PerplexityStage(models=str(d), languages=["en"], config=tight, score_only=True)(batch(rows))
    assert "drop_reason" not in only.schema.names
    assert only.column("perplexity").null_count == 0


def test_missing_model_gives_null_and_one_warning_per_language(tmp_path, caplog):
    d = write_models(tmp_path / "lm", zh=False)
    st = PerplexityStage(models=str(d), languages=["en", "fr", "de"])
    rows = [("the cat", "en"), ("le chat", "fr"), ("le chien", "fr"), ("die Katze", "de"), ("x", None)]
    with caplog.at_level(logging.WARNING, logger="babelmill.quality_models"):
        out = st(batch(rows))
        st(batch(rows))  # a second batch: no new warnings
        st.preflight()  # nor on the driver, in the same process
    msgs = [r.getMessage() for r in caplog.records]
    assert len(msgs) == 2
    assert any("'fr' (French)" in m and str(d) in m for m in msgs)
    assert any("'de' (German)" in m for m in msgs)
    assert out.column("perplexity").to_pylist()[1:] == [None] * 4
    assert out.column("perplexity")[0].as_py() is not None
    # a language the stage was not asked to score passes silently
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="babelmill.quality_models"):
        PerplexityStage(models=str(d), languages=["en"])(batch([("hola", "es")]))
    assert not caplog.records


def test_strict_names_the_language_and_the_directory(tmp_path):
    d = write_models(tmp_path / "lm", zh=False)
    with pytest.raises(ConfigError, match=rf"'fr' \(French\) in {tmp_path / 'lm'}"):
        PerplexityStage(models=str(d), languages=["en", "fr"], strict=True).preflight()
    # without `languages`, every registry language is expected: 42 of the 43 have no model here
    with pytest.raises(ConfigError, match=r"'zh' \(Chinese\).*strict"):
        PerplexityStage(models=str(d), strict=True).preflight()


def test_strict_on_a_language_met_mid_run(tmp_path):
    import yaml

    from babelmill.languages import DEFAULT_PATH

    reg = yaml.safe_load(DEFAULT_PATH.read_text(encoding="utf-8"))
    reg["languages"] = [lang for lang in reg["languages"] if lang["code"] == "en"]
    reg["confusable_groups"] = {}
    p = tmp_path / "en_only.yaml"
    p.write_text(yaml.safe_dump(reg, allow_unicode=True), encoding="utf-8")
    d = write_models(tmp_path / "lm", zh=False)
    st = PerplexityStage(models=str(d), registry=str(p), strict=True)
    st.preflight()  # every registry language has a model
    with pytest.raises(StageError, match=rf"'sw' in {tmp_path / 'lm'}"):
        st(batch([("habari", "sw")]))


@pytest.mark.parametrize("name,body,what", [
    ("fr.arpa", b"not an arpa file\n", "KenLM model"),
    ("fr.bin", b"mmap lm http://kheafield.com/code format version 5\0" + bytes(range(256)) * 4, "KenLM model"),
    ("en.sp.model", b"garbage", "SentencePiece model"),
])
def test_corrupt_model_is_named_at_start_up(tmp_path, name, body, what):
    d = write_models(tmp_path / "lm", zh=False)
    (d / name).write_bytes(body)
    st = PerplexityStage(models=str(d), languages=["en", "fr"])
    with pytest.raises(ConfigError, match=rf"cannot load {what} {d / name}"):
        st.preflight()


def test_run_fails_on_the_driver_before_any_unit(tmp_path, corpus):
    from babelmill.pipeline.config import PipelineConfig
    from babelmill.pipeline.runner.run import run_pipeline

    d = write_models(tmp_path / "lm")
    (d / "fr.arpa").write_text("\\data\\\nngram 1=3\n\n\\1-grams:\n-1\t<s>\n", encoding="utf-8")  # truncated
    cfg = PipelineConfig.model_validate({
        "input": {"paths": [str(corpus)]}, "output": {"dir": str(tmp_path / "run")}, "engine": {"name": "local"},
        "stages": [{"name": "langid"}, {"name": "perplexity", "params": {"models": str(d), "languages": ["en"]}}]})
    with pytest.raises(ConfigError, match=f"{d / 'fr.arpa'}"):
        run_pipeline(cfg, quiet=True)
    assert not (tmp_path / "run").exists()
    missing = PipelineConfig.model_validate({
        **cfg.model_dump(), "stages": [{"name": "perplexity", "params": {"models": str(tmp_path / "nope")}}]})
    with pytest.raises(ConfigError, match="model directory .*nope not found"):
        run_pipeline(missing, quiet=True)


def test_ccnet_layout_with_sentencepiece(tmp_path):
    """CCNet/BLOOM directories pair <lang>.arpa.bin with <lang>.sp.model: text is normalised,
    then split into the SentencePiece model's pieces, then scored."""
    import random

    import sentencepiece as spm

    from babelmill.pipeline.quality_models.kenlm_models import load_kenlm
    from babelmill.pipeline.quality_models.ngram import train_ngram
    from babelmill.pipeline.quality_models.text import normalize
    from tests.pipeline.quality_models.helpers import good_en

    rng = random.Random(0)
    corpus = [normalize(good_en(rng, 2)) for _ in range(200)]
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(corpus), model_writer=buf, vocab_size=60,
                                   model_type="unigram", num_threads=1, minloglevel=2)
    d = tmp_path / "ccnet"
    d.mkdir()
    (d / "en.sp.model").write_bytes(buf.getvalue())
    sp = spm.SentencePieceProcessor(model_proto=buf.getvalue())
    train_ngram([sp.encode(s, out_type=str) for s in corpus], 3).write_arpa(d / "en.arpa")
    text = "The river town, and 1948 children!"
    out = PerplexityStage(models=str(d), languages=["en"])(batch([(text, "en")]))
    pieces = " ".join(sp.encode(normalize(text), out_type=str))
    lm = load_kenlm(d / "en.arpa")
    expect = 10 ** (-lm.score(pieces, bos=True, eos=True) / (len(pieces.split()) + 1))
    assert close(out.column("perplexity")[0].as_py(), expect)


def test_pickles_by_parameters_and_sidecar_sets_tokens(tmp_path):
    d = write_models(tmp_path / "lm", en=False, zh=False)
    # an English model over characters, as its sidecar says (English is spaced in the registry)
    chars = ZH_ARPA.replace("河", "c").replace("流", "a").replace("水", "t")
    (d / "en.arpa").write_text(chars, encoding="utf-8")
    (d / "en.lm.json").write_text('{"tokens": "chars", "normalize": "ccnet"}', encoding="utf-8")
    st = pickle.loads(pickle.dumps(PerplexityStage(models=str(d), languages=["en"])))  # noqa: S301 - our own object
    got = st(batch([("Cat", "en")])).column("perplexity")[0].as_py()
    assert close(got, sentence_perplexity(chars, ["c", "a", "t"]))
    (d / "en.lm.json").write_text('{"tokens": "sentencepiece"}', encoding="utf-8")
    with pytest.raises(ConfigError, match="no en.sp.model"):
        PerplexityStage(models=str(d), languages=["en"]).preflight()
    (d / "en.lm.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigError, match="en.lm.json"):
        PerplexityStage(models=str(d), languages=["en"]).preflight()
