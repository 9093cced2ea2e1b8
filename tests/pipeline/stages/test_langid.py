import pickle

import pyarrow as pa
import pytest

from babelmill.pipeline.stages.langid import TOP_LANGS_TYPE, LangIdStage

TEXTS = {
    "en": "The committee published its annual report on water quality in the northern rivers last week.",
    "ru": "На прошлой неделе комитет опубликовал ежегодный доклад о качестве воды в северных реках.",
    "zh": "委员会上周发布了关于北部河流水质的年度报告，报告指出污染程度有所下降。",
    "ja": "委員会は先週、北部の川の水質に関する年次報告書を発表しました。",
    "th": "คณะกรรมการได้เผยแพร่รายงานประจำปีเกี่ยวกับคุณภาพน้ำในแม่น้ำทางภาคเหนือเมื่อสัปดาห์ที่แล้ว",
    "lo": "ຄະນະກຳມະການໄດ້ພິມເຜີຍແຜ່ບົດລາຍງານປະຈຳປີກ່ຽວກັບຄຸນນະພາບນ້ຳໃນແມ່ນ້ຳພາກເໜືອ",
    "hi": "समिति ने पिछले सप्ताह उत्तरी नदियों में पानी की गुणवत्ता पर अपनी वार्षिक रिपोर्ट प्रकाशित की।",
    "ur": "کمیٹی نے پچھلے ہفتے شمالی دریاؤں میں پانی کے معیار پر اپنی سالانہ رپورٹ شائع کی۔",
    "kk": "Комитет өткен аптада солтүстік өзендердегі су сапасы туралы жылдық есебін жариялады.",
    "ms": "Setiap orang berhak mendapat kebebasan bergerak dan kediaman di dalam sempadan tiap-tiap Negara.",
    "id": "Setiap orang berhak atas kebebasan bergerak dan berdiam di dalam batas-batas setiap negara.",
}


def run(stage, texts):
    b = pa.RecordBatch.from_pydict({"id": [str(i) for i in range(len(texts))], "text": texts})
    return stage(b)


@pytest.fixture(scope="module")
def stage():
    return LangIdStage()


def test_identifies_targets_and_schema(stage):
    out = run(stage, list(TEXTS.values()))
    assert out.schema.field("top_langs").type == TOP_LANGS_TYPE
    assert out.column("lang").to_pylist() == list(TEXTS)
    assert out.column("script").to_pylist()[:5] == ["Latn", "Cyrl", "Hani", "Hani", "Thai"]
    assert all(0 < s <= 1 for s in out.column("lang_score").to_pylist())
    assert out.column("drop_reason").null_count == len(TEXTS)


def test_drop_reasons(stage):
    texts = ["Kamati ilichapisha ripoti yake ya kila mwaka kuhusu ubora wa maji katika mito ya kaskazini.",
             "xq zzv kkp wqr vvx"]
    out = run(stage, texts)
    reasons = out.column("drop_reason").to_pylist()
    assert reasons[0] == "lang_other" and out.column("lang")[0].as_py() == "sw"
    assert reasons[1] in ("lang_low_confidence", "lang_other")
    assert out.column("drop_detail")[0].as_py().startswith("sw ")


def test_annotate_only_drops_nothing():
    out = run(LangIdStage(drop=False), ["Kamati ilichapisha ripoti yake ya kila mwaka kuhusu ubora wa maji."])
    assert "drop_reason" not in out.schema.names and out.column("lang")[0].as_py() == "sw"


def test_pickles_by_parameters():
    s = LangIdStage(k=4, drop=False)
    s.ensure_setup()
    s2 = pickle.loads(pickle.dumps(s))  # noqa: S301 - round-trips our own object
    assert s2.params == s.params and not s2._ready
    assert run(s2, [TEXTS["en"]]).column("lang")[0].as_py() == "en"


def test_beats_raw_top1_on_confusables(stage):
    """Malay written like the UDHR is Indonesian to raw lid.176 top-1; the stage fixes it."""
    ms = ["Setiap orang berhak kepada kebebasan bergerak dan bermastautin dalam sempadan tiap-tiap Negara.",
          "Tiada sesiapa pun boleh ditangkap, ditahan atau dibuang negeri secara sewenang-wenangnya."]
    out = run(stage, ms)
    raw = [t[0]["lang"] for t in out.column("top_langs").to_pylist()]
    assert "id" in raw  # raw top-1 gets at least one wrong ...
    assert out.column("lang").to_pylist() == ["ms", "ms"]  # ... the stage gets both right


def test_script_consistency_rejects_kana_less_japanese(stage):
    out = run(stage, [TEXTS["zh"], TEXTS["ja"]])
    assert out.column("lang").to_pylist() == ["zh", "ja"]


def test_bad_params_named():
    from babelmill.pipeline.core.stage import StageError

    with pytest.raises(StageError, match="langid.*bogus: unknown parameter"):
        LangIdStage(bogus=1)


def _registry_with_unknown_label(tmp_path):
    """The default registry plus a language whose only label lid.176 does not have."""
    import yaml

    from babelmill.languages import DEFAULT_PATH

    doc = yaml.safe_load(DEFAULT_PATH.read_text(encoding="utf-8"))
    doc["languages"].append({"code": "xx", "iso639_3": "xxq", "name": "Testish", "scripts": ["Latn"],
                             "lid_labels": ["xx", "xx_Latn"]})
    p = tmp_path / "languages.yaml"
    p.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return p


def test_registry_language_the_model_cannot_produce_is_named(tmp_path, caplog):
    from babelmill.yamlconf import ConfigError

    reg = _registry_with_unknown_label(tmp_path)
    with caplog.at_level("WARNING", logger="babelmill.langid"):
        LangIdStage(registry=str(reg)).preflight()
    (msg,) = [r.getMessage() for r in caplog.records]
    assert "cannot produce 1 language(s)" in msg and "xx (Testish): label(s) xx, xx_Latn" in msg
    assert "lang_other" in msg
    with pytest.raises(ConfigError, match=r"xx \(Testish\): label\(s\) xx, xx_Latn"):
        LangIdStage(registry=str(reg), strict=True).preflight()
    caplog.clear()
    with caplog.at_level("WARNING", logger="babelmill.langid"):
        LangIdStage().preflight()  # the shipped registry: every language reachable, no warning
    assert not caplog.records


def test_run_checks_lid_labels_on_the_driver_before_any_unit(tmp_path, corpus):
    from babelmill.pipeline.config import PipelineConfig
    from babelmill.pipeline.runner.run import run_pipeline
    from babelmill.yamlconf import ConfigError

    cfg = PipelineConfig.model_validate({
        "languages": str(_registry_with_unknown_label(tmp_path)), "input": {"paths": [str(corpus)]},
        "output": {"dir": str(tmp_path / "run")}, "engine": {"name": "local"},
        "stages": [{"name": "langid", "params": {"strict": True}}]})
    with pytest.raises(ConfigError, match="Testish"):
        run_pipeline(cfg, quiet=True)
    assert not (tmp_path / "run").exists()  # refused before the run directory was touched
