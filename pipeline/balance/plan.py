"""The balancing plan: how many tokens of each language the balanced corpus holds.

Every policy is one water-filling problem: each language i has a *desired* share p_i and a
*capacity* c_i = max_epochs * n_i (n_i = its tokens after curation); the allocation is
a_i = min(c_i, λ p_i) with λ chosen so that Σ a_i = budget. So a capped language gives its
unused share to the others in proportion to theirs, and no language exceeds the epoch cap.

- temperature: p_i ∝ n_i^alpha (alpha = 1/T; 1 = natural shares, → 0 = uniform)
- unimax (Chung et al., 2023): p_i uniform — as uniform as the epoch cap allows
- shares: p_i given explicitly (languages without a share get none)

min_share raises every desired share below it (renormalising the others); the epoch cap still
wins over it, because a cap is a promise about repetition. If even the capacity of every
language is below the budget, the plan allocates the capacity and reports the shortfall.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from babelmill.pipeline.balance.config import BalanceConfig


@dataclass(frozen=True)
class LanguagePlan:
    tokens_in: int
    desired_share: float
    target_tokens: int
    share: float  # target_tokens / Σ target_tokens
    epochs: float  # target_tokens / tokens_in
    capped: bool


def desired_shares(tokens: dict[str, int], cfg: BalanceConfig) -> dict[str, float]:
    langs = [k for k, v in tokens.items() if v > 0]
    if not langs:
        return {}
    if cfg.policy == "temperature":
        raw = np.array([tokens[k] for k in langs], dtype=np.float64) ** cfg.alpha
    elif cfg.policy == "unimax":
        raw = np.ones(len(langs))
    else:
        raw = np.array([max(0.0, cfg.shares.get(k, 0.0)) for k in langs])
        if raw.sum() <= 0:
            raise ValueError(f"none of the languages with data ({', '.join(sorted(langs))}) has a share")
    p = raw / raw.sum()
    if cfg.min_share > 0:
        p = _apply_min_share(p, cfg.min_share)
    return dict(zip(langs, p.tolist(), strict=True))


def _apply_min_share(p: np.ndarray, m: float) -> np.ndarray:
    """Raise shares below m to m and scale the rest down so the total stays 1 (iterating,
    since scaling can push another language below m)."""
    if m * len(p) > 1:
        raise ValueError(f"min_share {m} x {len(p)} languages exceeds 1")
    fixed = np.zeros(len(p), dtype=bool)
    for _ in range(len(p) + 1):
        low = (p < m - 1e-15) & ~fixed
        if not low.any():
            break
        fixed |= low
        free = ~fixed
        rest = 1.0 - m * fixed.sum()
        p = np.where(fixed, m, p / p[free].sum() * rest if free.any() else p)
    return p


def water_fill(desired: np.ndarray, capacity: np.ndarray, budget: float) -> np.ndarray:
    """a_i = min(capacity_i, λ desired_i) with Σ a_i = budget (or all capacity if smaller)."""
    if budget >= capacity[desired > 0].sum():
        return np.where(desired > 0, capacity, 0.0)
    # λ at which language i hits its cap: capacity_i / desired_i. Walk them in order.
    with np.errstate(divide="ignore"):
        lam_cap = np.where(desired > 0, capacity / np.where(desired > 0, desired, 1), np.inf)
    order = np.argsort(lam_cap, kind="stable")
    capped_sum, free_desired = 0.0, desired.sum()
    lam = 0.0
    for i in order:
        if desired[i] <= 0:
            continue
        lam = (budget - capped_sum) / free_desired
        if lam <= lam_cap[i]:
            break
        capped_sum += capacity[i]
        free_desired -= desired[i]
    return np.minimum(capacity, lam * desired)


def make_plan(tokens: dict[str, int], cfg: BalanceConfig) -> dict:
    """tokens: language -> tokens after curation. Returns {"languages": {lang: LanguagePlan},
    "budget": ..., "planned_tokens": ..., "shortfall": ...}."""
    p = desired_shares(tokens, cfg)
    langs = sorted(p)
    budget = cfg.budget_tokens if cfg.budget_tokens is not None else sum(tokens[k] for k in langs)
    if not langs:
        return {"languages": {}, "budget": budget, "planned_tokens": 0, "shortfall": budget}
    desired = np.array([p[k] for k in langs])
    n = np.array([tokens[k] for k in langs], dtype=np.float64)
    capacity = np.floor(n * cfg.max_epochs)
    alloc = water_fill(desired, capacity, float(budget))
    target = _round_preserving_sum(alloc)
    total = int(target.sum())
    out = {}
    for i, k in enumerate(langs):
        out[k] = LanguagePlan(
            tokens_in=int(n[i]),
            desired_share=float(desired[i]),
            target_tokens=int(target[i]),
            share=float(target[i] / total) if total else 0.0,
            epochs=float(target[i] / n[i]) if n[i] else 0.0,
            capped=bool(target[i] >= capacity[i] - 0.5),
        )
    return {"languages": out, "budget": int(budget), "planned_tokens": total, "shortfall": int(max(0, budget - total))}


def _round_preserving_sum(x: np.ndarray) -> np.ndarray:
    """Integer tokens per language whose sum is round(Σx) (largest-remainder rounding)."""
    base = np.floor(x)
    rem = int(round(x.sum() - base.sum()))
    if rem > 0:
        order = np.argsort(-(x - base), kind="stable")[:rem]
        base[order] += 1
    return base.astype(np.int64)


def plan_to_json(plan: dict) -> dict:
    return {**plan, "languages": {k: asdict(v) for k, v in plan["languages"].items()}}
