"""Temperature sampling: shares, determinism, caps, parity correction, skipped documents."""

from __future__ import annotations

import statistics

import pytest

from babelmill.languages import load_registry
from babelmill.tokenizer.sample import (
    SampleCounts,
    copies,
    iter_sample,
    plan_sample,
    scan,
    temperature_shares,
)


def test_temperature_one_keeps_natural_shares_and_higher_t_flattens():
    sizes = {"en": 900, "th": 90, "km": 10}
    natural = temperature_shares(sizes, 1.0)
    assert natural == pytest.approx({"en": 0.9, "th": 0.09, "km": 0.01})
    flat = temperature_shares(sizes, 5.0)
    flatter = temperature_shares(sizes, 100.0)
    assert sum(flat.values()) == pytest.approx(1.0)
    assert natural["km"] < flat["km"] < flatter["km"] < 1 / 3 + 1e-9
    assert natural["en"] > flat["en"] > flatter["en"]
    with pytest.raises(ValueError, match="temperature"):
        temperature_shares(sizes, 0)


def test_copies_are_deterministic_and_match_the_rate_on_average():
    keys = [f"doc-{i}" for i in range(4000)]
    draws = [copies(2.3, seed=7, key=k) for k in keys]
    assert draws == [copies(2.3, seed=7, key=k) for k in keys]
    assert set(draws) == {2, 3}
    assert statistics.fmean(draws) == pytest.approx(2.3, abs=0.05)
    assert draws != [copies(2.3, seed=8, key=k) for k in keys]


def test_scan_counts_target_languages_and_skips_others(tok_data):
    reg = load_registry()
    st = scan([str(tok_data["skewed"])], set(reg.codes))
    assert st.docs["en"] == 400 and st.docs["th"] == 8
    assert st.read.non_target == {"af": 3}  # the distractor is counted, never trained on
    assert all(st.zbytes[lang] > 0 for lang in st.docs)


def test_scan_without_target_documents_names_the_input(tmp_path):
    from tests.tokenizer.conftest import write_jsonl

    f = write_jsonl(tmp_path / "only_af.jsonl", [{"text": "Goeie more", "lang": "af"}])
    with pytest.raises(ValueError, match="only_af.jsonl"):
        scan([str(f)], set(load_registry().codes))


def test_balanced_sample_gives_low_resource_languages_more_and_respects_max_repeat(tok_data):
    reg = load_registry()
    inputs = [str(tok_data["skewed"])]
    st = scan(inputs, set(reg.codes))
    natural, balanced = SampleCounts(), SampleCounts()
    p1 = plan_sample(st, 1.0)
    p5 = plan_sample(st, 5.0, max_repeat=3.0)
    for _ in iter_sample(inputs, p1, counts=natural):
        pass
    for _ in iter_sample(inputs, p5, counts=balanced):
        pass
    share = lambda c, lang: c.chars[lang] / sum(c.chars.values())  # noqa: E731
    assert share(balanced, "th") > share(natural, "th")
    assert share(balanced, "en") < share(natural, "en")
    assert max(p5.rates.values()) <= 3.0
    assert balanced.docs["th"] <= 3 * st.docs["th"]


def test_cost_correction_shifts_share_towards_costly_languages(tok_data):
    st = scan([str(tok_data["balanced"])], set(load_registry().codes))
    cost = {lang: 1.0 for lang in st.docs} | {"th": 2.0}
    plain = plan_sample(st, 5.0)
    corrected = plan_sample(st, 5.0, cost=cost, cost_power=2.0)
    assert corrected.shares["th"] > plain.shares["th"]
    ratio = (corrected.shares["th"] / corrected.shares["en"]) / (plain.shares["th"] / plain.shares["en"])
    assert ratio == pytest.approx(4.0)
