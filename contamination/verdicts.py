"""Turn per-item correctness on the original and the generalized benchmark into a verdict.

For each benchmark x language: accuracy on both versions, delta = generalized - original, a paired
bootstrap CI of delta (items resampled jointly, seeded), and a verdict from the rule documented in
configs/contamination/verdict.yaml (`VerdictConfig`). Its threshold is set from the deltas of
reference models known to be clean by verdict_calibration.py (`babelmill audit-calibrate`).
`cross_lingual` compares the language versions of a translated benchmark (aligned by item id)
to show which one the model behaves as if it had memorised.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from babelmill.paths import config_file
from babelmill.yamlconf import ConfigError, read_mapping

DEFAULT_CONFIG = config_file("contamination", "verdict.yaml")
VERDICTS = ("contaminated", "clean", "inconclusive")


@dataclass
class VerdictConfig:
    contaminated_below: float = 0.10
    clean_above: float = 0.0
    min_items: int = 20
    metric: str = "acc"
    resamples: int = 1000
    confidence: float = 0.95
    margin: float = 0.05
    require_above_chance: bool = True
    calibrated_on: list = field(default_factory=list)

    @classmethod
    def load(cls, path: str | Path | None = None) -> VerdictConfig:
        p = Path(path or DEFAULT_CONFIG)
        d = read_mapping(p, "verdict settings")
        bs, cal = d.get("bootstrap") or {}, d.get("calibration") or {}
        known = {"contaminated_below", "clean_above", "min_items", "metric", "require_above_chance", "bootstrap",
                 "calibration"}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"{p}: unknown keys {sorted(unknown)}; known: {sorted(known)}")
        cfg = cls(contaminated_below=float(d.get("contaminated_below", 0.10)), clean_above=float(d.get("clean_above", 0.0)),
                  min_items=int(d.get("min_items", 20)), metric=str(d.get("metric", "acc")),
                  resamples=int(bs.get("resamples", 1000)), confidence=float(bs.get("confidence", 0.95)),
                  margin=float(cal.get("margin", 0.05)), calibrated_on=list(cal.get("calibrated_on") or []),
                  require_above_chance=bool(d.get("require_above_chance", True)))
        if cfg.metric not in ("acc", "acc_norm"):
            raise ConfigError(f"{p}: metric must be acc or acc_norm, not {cfg.metric!r}")
        if not 0 < cfg.confidence < 1:
            raise ConfigError(f"{p}: bootstrap.confidence must be in (0, 1)")
        return cfg

    def to_yaml(self) -> dict:
        return {"contaminated_below": round(self.contaminated_below, 4), "clean_above": self.clean_above,
                "min_items": self.min_items, "metric": self.metric, "require_above_chance": self.require_above_chance,
                "bootstrap": {"resamples": self.resamples, "confidence": self.confidence},
                "calibration": {"margin": self.margin, "calibrated_on": self.calibrated_on}}


def paired_bootstrap(orig: Sequence[bool], gen: Sequence[bool], resamples: int = 1000, confidence: float = 0.95,
                     seed: int = 0) -> tuple[float, float]:
    """Percentile CI of mean(gen) - mean(orig), resampling items jointly (the pairing matters:
    both versions share each item's difficulty, which makes the CI much tighter than unpaired)."""
    o, g = np.asarray(orig, dtype=float), np.asarray(gen, dtype=float)
    n = len(o)
    if n == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(resamples, n))
    d = (g - o)[idx].mean(axis=1)
    a = (1 - confidence) / 2
    return float(np.quantile(d, a)), float(np.quantile(d, 1 - a))


def verdict(delta: float, ci_low: float, ci_high: float, n: int, cfg: VerdictConfig,
            acc_original_low: float | None = None, chance: float | None = None) -> str:
    """The rule of configs/contamination/verdict.yaml. A model at chance on the original gains nothing
    from the generalized version either - it does not understand the questions, it did not memorise
    them - so with `require_above_chance` "contaminated" also needs the original accuracy's CI
    above chance."""
    if n < cfg.min_items:
        return "inconclusive"
    if ci_high < cfg.contaminated_below:
        if cfg.require_above_chance and chance is not None and acc_original_low is not None \
                and acc_original_low <= chance:
            return "inconclusive"
        return "contaminated"
    if ci_low > cfg.clean_above:
        return "clean"
    return "inconclusive"


def assess(orig: Sequence[bool], gen: Sequence[bool], cfg: VerdictConfig, seed: int = 0,
           chance: float | None = None) -> dict:
    """The JSON row of one benchmark x language (`chance`: mean of 1/options over the items)."""
    if len(orig) != len(gen):
        raise ValueError("original and generalized results must be paired item for item")
    n = len(orig)
    a_o = float(np.mean(orig)) if n else float("nan")
    a_g = float(np.mean(gen)) if n else float("nan")
    lo, hi = paired_bootstrap(orig, gen, cfg.resamples, cfg.confidence, seed)
    delta = a_g - a_o
    zeros = [False] * n
    # CIs of each accuracy on its own (for the report's error bars), from the same resamples
    o_lo, o_hi = paired_bootstrap(zeros, orig, cfg.resamples, cfg.confidence, seed)
    g_lo, g_hi = paired_bootstrap(zeros, gen, cfg.resamples, cfg.confidence, seed)
    return {"n": n, "acc_original": a_o, "acc_generalized": a_g, "delta": delta, "ci_low": lo, "ci_high": hi,
            "verdict": verdict(delta, lo, hi, n, cfg, o_lo, chance), "chance": chance,
            "acc_original_ci": [o_lo, o_hi], "acc_generalized_ci": [g_lo, g_hi]}


def cross_lingual(per_lang: dict[str, dict[str, tuple[bool, bool]]], rows: dict[str, dict]) -> dict:
    """Compare the language versions of one benchmark (translations aligned by item id).

    `per_lang[lang][item_id] = (correct_original, correct_generalized)`; `rows[lang]` = assess() rows.
    Returns which language the model behaves as if it memorised (the contaminated one with the lowest
    delta, or none) and, per language pair, the agreement of per-item correctness on the original
    over the shared ids: a model that memorised language A and transfers it gets the same items
    right in B, so high agreement together with a low delta in both points at A as the source.
    """
    flagged = {lang: r["delta"] for lang, r in rows.items() if r["verdict"] == "contaminated"}
    suspect = min(flagged, key=lambda k: (flagged[k], k)) if flagged else None
    langs = sorted(per_lang)
    agreement = {}
    for i, a in enumerate(langs):
        for b in langs[i + 1 :]:
            shared = sorted(set(per_lang[a]) & set(per_lang[b]))
            if not shared:
                continue
            same = np.mean([per_lang[a][k][0] == per_lang[b][k][0] for k in shared])
            both = np.mean([per_lang[a][k][0] and per_lang[b][k][0] for k in shared])
            agreement[f"{a}-{b}"] = {"shared_items": len(shared), "agreement": float(same), "both_correct": float(both)}
    lowest = min(rows, key=lambda k: (rows[k]["delta"], k)) if rows else None
    return {"memorised_language": suspect, "contaminated_languages": sorted(flagged), "lowest_delta_language": lowest,
            "delta_by_language": {k: rows[k]["delta"] for k in sorted(rows)}, "agreement": agreement}

