import pickle
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from babelmill.languages import DEFAULT_PATH as REGISTRY_PATH
from babelmill.pipeline.core.stage import StageError, get_stage_class
from babelmill.pipeline.stages.quality import (
    FILTERS,
    REASONS,
    LangProfile,
    QualityRules,
    QualityStage,
    compute_stats,
)
from babelmill.yamlconf import ConfigError

GOOD = {
    "en": (
        "The river that runs through the old town has always shaped the lives of the people who live along "
        "its banks. In spring, when the snow melts in the mountains, the water rises quickly and the farmers "
        "move their animals to higher ground.\n\nIn summer, children swim near the bridge while their parents "
        "sell fruit and vegetables at the market. Over the last decade the town council has invested in new "
        "flood defences, and most residents believe that the changes have made their homes safer than they "
        "were before."
    ),
    "fr": (
        "La rivière qui traverse la vieille ville a toujours façonné la vie des habitants qui vivent sur ses "
        "rives. Au printemps, lorsque la neige fond dans les montagnes, l'eau monte rapidement et les "
        "agriculteurs conduisent leurs bêtes vers des terres plus hautes. En été, les enfants se baignent près "
        "du pont pendant que leurs parents vendent des fruits et des légumes au marché. Au cours des dix "
        "dernières années, la municipalité a investi dans de nouvelles digues, et la plupart des habitants "
        "estiment que leurs maisons sont aujourd'hui plus sûres qu'auparavant."
    ),
    "ru": (
        "Река, которая протекает через старый город, всегда определяла жизнь людей, живущих на её берегах. "
        "Весной, когда в горах тает снег, вода быстро поднимается, и фермеры перегоняют скот на более высокие "
        "места. Летом дети купаются возле моста, а их родители продают фрукты и овощи на рынке. За последние "
        "десять лет городской совет вложил немало средств в новые дамбы, и большинство жителей считает, что "
        "теперь их дома стали намного безопаснее, чем раньше. Многие из них говорят, что это было правильное "
        "решение."
    ),
    "zh": (
        "这条河流穿过古老的小镇，一直影响着住在河岸两边的人们的生活。每年春天，山上的积雪融化，河水迅速上涨，"
        "农民们不得不把牲畜赶到地势较高的地方。到了夏天，孩子们在桥边游泳，他们的父母则在集市上出售水果和蔬菜。"
        "在过去的十年里，镇政府投入了大量资金修建新的防洪设施，大多数居民认为，这些变化使他们的家园比以前更加安全。"
        "许多老人还记得当年洪水淹没街道的情景，他们说现在的生活已经安稳多了。"
    ),
    "ja": (
        "この川は古い町の中を流れ、岸辺に住む人々の暮らしをずっと形作ってきました。春になると山の雪が解けて"
        "水かさが一気に増し、農家の人たちは家畜を高い場所へ移します。夏には子どもたちが橋の近くで泳ぎ、親たちは"
        "市場で果物や野菜を売っています。この十年の間に町は新しい堤防の建設に多くの予算を使い、ほとんどの住民は"
        "以前よりも家が安全になったと感じています。"
    ),
    "th": (
        "แม่น้ำสายนี้ไหลผ่านเมืองเก่าและหล่อหลอมชีวิตของผู้คนที่อาศัยอยู่ริมฝั่งมาโดยตลอด "
        "ในฤดูใบไม้ผลิเมื่อหิมะบนภูเขาละลาย น้ำจะขึ้นอย่างรวดเร็วและชาวนาต้องพาสัตว์เลี้ยงขึ้นไปยังที่สูง "
        "ในฤดูร้อนเด็ก ๆ ว่ายน้ำใกล้สะพานขณะที่พ่อแม่ขายผลไม้และผักที่ตลาด "
        "ตลอดสิบปีที่ผ่านมาเทศบาลได้ลงทุนสร้างเขื่อนป้องกันน้ำท่วมแห่งใหม่ "
        "และชาวบ้านส่วนใหญ่เชื่อว่าบ้านของพวกเขาปลอดภัยกว่าเดิมมาก"
    ),
}

EN_SENTENCES = [s.strip() + "." for s in GOOD["en"].replace("\n\n", " ").split(".") if s.strip()]


def batch(texts, langs, **extra):
    cols = {"id": [str(i) for i in range(len(texts))], "text": pa.array(texts, pa.large_string()), "lang": langs}
    cols.update(extra)
    return pa.RecordBatch.from_pydict(cols)


def run(stage, texts, langs):
    out = stage(batch(texts, langs))
    return out.column("drop_reason").to_pylist(), out.column("drop_detail").to_pylist(), out


@pytest.fixture(scope="module")
def stage():
    return QualityStage()


def test_good_paragraphs_pass(stage):
    reasons, details, _ = run(stage, list(GOOD.values()), list(GOOD))
    assert reasons == [None] * len(GOOD), list(zip(GOOD, reasons, details, strict=True))


def test_unspaced_languages_count_characters_not_whitespace_words(stage):
    for code in ("zh", "ja", "th"):
        text = GOOD[code]
        assert len(text.split()) < 10  # a whitespace tokenizer would see almost no words
        reasons, _, out = run(QualityStage(filters=["word_count"], annotate=True), [text], [code])
        assert reasons == [None]
        assert out.column("q_word_count")[0].as_py() >= 100
    # the Chinese paragraph: one whitespace "word", ~180 counted characters, no punctuation counted
    rules = QualityRules()
    st = compute_stats([GOOD["zh"]], np.array([0]), [rules.resolve("zh")[1]])
    assert len(GOOD["zh"].split()) == 1
    punct = len(re.findall(r"[，。]", GOOD["zh"]))
    assert st["word_count"][0] == len(GOOD["zh"]) - punct
    # too little Chinese text fails in characters, and says so
    reasons, details, _ = run(stage, ["这条河流穿过古老的小镇。"], ["zh"])
    assert reasons == ["q_char_count"] and details[0] == "char_count=11 < 100"


def test_short_text_fails_with_measured_value(stage):
    reasons, details, _ = run(stage, ["Home About us Contact"], ["en"])
    assert reasons == ["q_word_count"]
    assert details == ["word_count=4 < 50"]


def test_boilerplate_fails_with_the_right_reason(stage):
    repeated = "\n".join([EN_SENTENCES[0]] * 9 + [EN_SENTENCES[1]])
    bullets = "\n".join(f"- {s}" for s in EN_SENTENCES)
    hashtags = " ".join(f"#{w}" for w in "love the sun and the sea with friends at the beach today".split() * 5)
    lorem = GOOD["en"] + " Lorem ipsum dolor sit amet, consectetur adipiscing elit."
    code = GOOD["en"] + "\n" + "function f() { if (a) { return b; } else { return c; } } " * 3
    no_punct = "\n".join(s.rstrip(".") for s in EN_SENTENCES)
    menu = "\n".join(["Home", "About the company", "Our products and services", "News", "Contact us",
                      "Login", "Privacy policy", "Terms of use"] * 3) + "\n" + GOOD["en"]
    numbers = " ".join(str(1000 + i) for i in range(80)) + " the and of the"
    texts = [repeated, bullets, hashtags, lorem, code, no_punct, menu, numbers]
    reasons, details, _ = run(stage, texts, ["en"] * len(texts))
    assert reasons == [
        "q_dup_line_frac",
        "q_bullet_lines",
        "q_symbol_ratio",
        "q_lorem_ipsum",
        "q_curly_brace",
        "q_terminal_punct",
        "q_dup_line_frac",
        "q_alpha_words",
    ], list(zip(reasons, details, strict=True))
    assert details[0] == "dup_line_frac=0.800 > 0.3"
    assert details[1] == "bullet_lines_frac=1.000 > 0.9"
    assert details[2].startswith("symbol_ratio=1.000 > 0.1")
    assert details[3] == "lorem_ipsum=1 > 0"
    assert details[5] == "terminal_punct_frac=0.000 < 0.12"
    assert re.fullmatch(r"alpha_words_frac=0\.\d{3} < 0\.8", details[7])


def test_repetitive_chinese_fails_character_ngram_check(stage):
    text = "我们热爱和平的生活。" * 30
    reasons, details, _ = run(stage, [text], ["zh"])
    assert reasons == ["q_top_2gram"]
    assert details[0].startswith("top_2gram_frac(chars)=") and details[0].endswith("> 0.15")


def test_repetitive_english_fails_ngram_checks():
    words = GOOD["en"].split()
    text = " ".join(words[:60] + words[:60] + words[60:])  # one long passage repeated once
    only_ngrams = QualityStage(filters=[f.name for f in FILTERS if f.group == "ngrams"], annotate=True)
    reasons, details, out = run(only_ngrams, [text, GOOD["en"]], ["en", "en"])
    assert reasons[0] == "q_dup_5gram" and reasons[1] is None
    assert out.column("q_dup_5gram_frac")[0].as_py() > 0.3
    assert out.column("q_dup_10gram_frac")[0].as_py() > 0.3
    assert out.column("q_dup_5gram_frac")[1].as_py() == 0


def test_stop_words_per_language_from_wordfreq(stage):
    # French words only count as stop words for French: the same text labelled Russian has none
    reasons, details, _ = run(QualityStage(filters=["stop_words"]), [GOOD["fr"], GOOD["fr"]], ["fr", "ru"])
    assert reasons == [None, "q_stop_words"] and details[1] == "stop_words=0 < 2"
    # Thai has no wordfreq list: the check is skipped rather than failing everything
    rules = QualityRules()
    assert rules.resolve("th")[1].stop_words is None
    assert rules.resolve("zh")[1].stop_words and all(len(w) == 1 for w in rules.resolve("zh")[1].stop_words)


def test_terminal_punctuation_is_per_script():
    rules = QualityRules()
    assert "।" in rules.resolve("hi")[1].punctuation
    assert "。" in rules.resolve("ja")[1].punctuation
    assert "။" in rules.resolve("my")[1].punctuation
    assert "؟" in rules.resolve("ar")[1].punctuation
    assert rules.resolve("th")[1].punctuation is None and rules.resolve("lo")[1].punctuation is None
    hi = "\n".join(["समिति ने पिछले सप्ताह उत्तरी नदियों में पानी की गुणवत्ता पर अपनी वार्षिक रिपोर्ट प्रकाशित की।"] * 2)
    st = compute_stats([hi, hi.replace("।", "")], np.array([0, 0]), [rules.resolve("hi")[1]])
    assert list(st["terminal_punct_frac"]) == [1.0, 0.0]
    # Hindi words keep their vowel signs (Python's \w+ would split "प्रकाशित")
    n_words = len(hi.replace("।", "").split())
    assert st["word_count"][0] == n_words < len(re.findall(r"\w+", hi))


def test_registry_quality_override_takes_effect(tmp_path):
    reg = REGISTRY_PATH.read_text(encoding="utf-8")
    line = next(ln for ln in reg.splitlines() if "{code: en," in ln)
    reg = reg.replace(line, line[: line.rindex("}")] + ", quality: {min_words: 500}}")
    path = tmp_path / "languages.yaml"
    path.write_text(reg, encoding="utf-8")
    st = QualityStage(registry=str(path))
    reasons, details, _ = run(st, [GOOD["en"], GOOD["fr"]], ["en", "fr"])
    assert reasons == ["q_word_count", None]
    assert re.fullmatch(r"word_count=\d+ < 500", details[0])
    bad = reg.replace("quality: {min_words: 500}", "quality: {min_wrds: 500}")
    path.write_text(bad, encoding="utf-8")
    with pytest.raises(ConfigError, match="languages.en.quality"):
        run(QualityStage(registry=str(path)), [GOOD["en"]], ["en"])


def test_config_language_section_overrides_defaults(tmp_path):
    cfg = tmp_path / "q.yaml"
    cfg.write_text("defaults: {min_words: 10}\nlanguages:\n  fr: {min_words: 1000}\n", encoding="utf-8")
    st = QualityStage(config=str(cfg))
    reasons, details, _ = run(st, [GOOD["en"], GOOD["fr"]], ["en", "fr"])
    assert reasons == [None, "q_word_count"] and details[1].endswith("< 1000")
    cfg.write_text("defaults: {min_wrds: 10}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="min_wrds"):
        QualityStage(config=str(cfg)).ensure_setup()


def test_annotate_filters_and_schema():
    st = QualityStage(filters=["q_word_count", "dup_line_frac"], annotate=True)
    assert set(st.produces) == {"q_word_count", "q_dup_line_frac"}
    _, _, out = run(st, [GOOD["en"]], ["en"])
    assert out.schema.field("q_word_count").type == pa.float32()
    assert out.column("q_word_count")[0].as_py() == len(re.findall(r"\w+", GOOD["en"]))
    assert QualityStage().produces == {}
    with pytest.raises(StageError, match="unknown filter"):
        QualityStage(filters=["no_such_filter"])
    assert get_stage_class("quality") is QualityStage
    assert "q_char_count" in REASONS and "q_top_2gram" in REASONS and "q_dup_10gram" in REASONS


def test_first_drop_wins_nulls_and_unknown_languages(stage):
    b = batch(["Too short.", GOOD["en"], None, GOOD["en"], ""], ["en", "en", "en", None, "xx"],
              drop_reason=pa.array(["lang_other", None, None, None, None], pa.string()),
              drop_detail=pa.array(["sw 0.9", None, None, None, None], pa.string()))
    out = stage(b)
    assert out.num_rows == 5
    assert out.column("drop_reason").to_pylist() == ["lang_other", None, "q_word_count", None, "q_word_count"]
    assert out.column("drop_detail")[0].as_py() == "sw 0.9"


def test_empty_batch_and_pickle(stage):
    out = stage(batch([], pa.array([], pa.string())))
    assert out.num_rows == 0 and "drop_reason" in out.schema.names
    s2 = pickle.loads(pickle.dumps(QualityStage(filters=["stop_words"])))  # noqa: S301 - our own object
    assert [f.name for f in s2.active] == ["stop_words"]


def test_ngram_stats_match_a_direct_computation():
    """The batch-vectorised n-gram statistics agree with a plain per-document implementation."""
    rng = np.random.default_rng(0)
    vocab = ["alpha", "be", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
    texts = [" ".join(rng.choice(vocab, size=int(rng.integers(0, 60)))) for _ in range(40)]
    prof = LangProfile(code=None)
    st = compute_stats(texts, np.zeros(len(texts), dtype=np.int64), [prof])
    for i, t in enumerate(texts):
        words = t.split()
        total = sum(map(len, words))
        for n in (2, 3, 4):
            grams = [tuple(words[j : j + n]) for j in range(len(words) - n + 1)]
            counts: dict = {}
            for gm in grams:
                counts[gm] = counts.get(gm, 0) + 1
            mc = max(counts.values(), default=0)
            want = 0.0
            if mc > 1:
                want = mc * max(sum(map(len, gm)) for gm, c in counts.items() if c == mc) / total
            assert st[f"top_{n}gram_frac"][i] == pytest.approx(want), (i, n)
        for n in (5, 8, 10):
            seen, covered = set(), [False] * len(words)
            for j in range(len(words) - n + 1):
                gm = tuple(words[j : j + n])
                if gm in seen:
                    covered[j : j + n] = [True] * n
                seen.add(gm)
            want = sum(len(w) for w, c in zip(words, covered, strict=True) if c) / total if total else 0.0
            assert st[f"dup_{n}gram_frac"][i] == pytest.approx(want), (i, n)


def test_default_config_file_is_complete():
    text = (Path(REGISTRY_PATH).parent / "quality.yaml").read_text(encoding="utf-8")
    # every threshold line carries a comment saying where the value comes from
    for ln in text.splitlines():
        if re.match(r"\s+(min|max)_\w+:\s*[\d.]+\s*$", ln):
            pytest.fail(f"uncommented threshold: {ln}")
    rules = QualityRules()
    for f in FILTERS:
        lo, hi = rules.bounds("en", f)
        assert not (np.isnan(lo) and np.isnan(hi)), f.name


def test_symbol_counts_on_sliced_and_small_string_arrays():
    texts = ["skip me", "a # b .... c …… d {x}", "... . .. ...... #", None]
    prof = LangProfile(code=None)
    arr = pa.array(texts, pa.string()).slice(1)  # an offset and the non-large string type
    st = compute_stats(arr, np.zeros(3, dtype=np.int64), [prof], {"words"})
    # doc 1: words a b c d x = 5; '#' 1; ellipses: '....' 1 + '…' 2 = 3; braces 2
    assert st["symbol_ratio"][0] == pytest.approx(3 / 5)
    assert st["curly_brace_ratio"][0] == pytest.approx(2 / 5)
    assert st["word_count"].tolist() == [5, 0, 0] and st["symbol_ratio"][1] == 0
