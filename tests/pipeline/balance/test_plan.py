"""The balancing plan: each policy's shares, the epoch cap, the minimum share, the budget."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from babelmill.pipeline.balance.config import BalanceConfig
from babelmill.pipeline.balance.plan import make_plan

TOKENS = {"en": 1_000_000, "fr": 300_000, "sw": 20_000, "km": 5_000}


def _targets(plan):
    return {k: v.target_tokens for k, v in plan["languages"].items()}


def test_temperature_shares_follow_n_to_the_alpha_when_no_cap_binds():
    cfg = BalanceConfig(policy="temperature", alpha=0.5, budget_tokens=100_000, max_epochs=100)
    plan = make_plan(TOKENS, cfg)
    raw = {k: v**0.5 for k, v in TOKENS.items()}
    for k, lp in plan["languages"].items():
        assert lp.share == pytest.approx(raw[k] / sum(raw.values()), abs=1e-4)
    assert plan["planned_tokens"] == 100_000 and plan["shortfall"] == 0


def test_alpha_one_keeps_natural_shares():
    plan = make_plan(TOKENS, BalanceConfig(alpha=1.0))
    assert _targets(plan) == TOKENS  # budget defaults to all tokens; nothing repeated


def test_epoch_cap_moves_share_to_uncapped_languages():
    cfg = BalanceConfig(policy="unimax", budget_tokens=400_000, max_epochs=2)
    plan = make_plan(TOKENS, cfg)
    t = _targets(plan)
    assert t["km"] == 10_000 and t["sw"] == 40_000  # capped at 2 epochs
    assert plan["languages"]["km"].capped and not plan["languages"]["en"].capped
    assert t["en"] == t["fr"] == 175_000  # the rest split uniformly
    assert sum(t.values()) == 400_000


@pytest.mark.parametrize("seed", range(20))
def test_no_language_ever_exceeds_the_epoch_cap(seed):
    rng = np.random.default_rng(seed)
    tokens = {f"l{i}": int(x) for i, x in enumerate(rng.lognormal(10, 2.5, size=rng.integers(2, 40)))}
    for policy in ("temperature", "unimax"):
        cfg = BalanceConfig(policy=policy, alpha=float(rng.uniform(0.1, 1)), max_epochs=float(rng.uniform(1, 6)),
                            budget_tokens=int(sum(tokens.values()) * rng.uniform(0.1, 3)))
        plan = make_plan(tokens, cfg)
        for k, lp in plan["languages"].items():
            assert lp.target_tokens <= tokens[k] * cfg.max_epochs
        assert plan["planned_tokens"] + plan["shortfall"] == cfg.budget_tokens


def test_budget_beyond_capacity_reports_the_shortfall():
    plan = make_plan(TOKENS, BalanceConfig(budget_tokens=10_000_000, max_epochs=2))
    assert _targets(plan) == {k: 2 * v for k, v in TOKENS.items()}
    assert plan["shortfall"] == 10_000_000 - 2 * sum(TOKENS.values())


def test_min_share_raises_small_languages():
    cfg = BalanceConfig(policy="temperature", alpha=1.0, min_share=0.1, budget_tokens=200_000, max_epochs=1000)
    plan = make_plan(TOKENS, cfg)
    assert all(lp.share >= 0.1 - 1e-4 for lp in plan["languages"].values())
    assert plan["languages"]["en"].share > plan["languages"]["fr"].share  # the rest keeps its order


def test_explicit_shares():
    cfg = BalanceConfig(policy="shares", shares={"en": 0.5, "fr": 0.25, "sw": 0.25}, budget_tokens=40_000)
    t = _targets(make_plan(TOKENS, cfg))
    assert t == {"en": 20_000, "fr": 10_000, "sw": 10_000, "km": 0}


def test_config_errors_are_clear():
    with pytest.raises(ValidationError, match="needs a 'shares' mapping"):
        BalanceConfig(policy="shares")
    with pytest.raises(ValidationError, match="max_epochs"):
        BalanceConfig(max_epochs=0.5)
