"""Calibrate the audit's verdict threshold (`babelmill audit-calibrate`).

The verdict rule (verdicts.py, configs/contamination/verdict.yaml) calls a benchmark x language
contaminated when the CI of its delta (generalized - original accuracy) lies below
`contaminated_below`. This sets that threshold from the deltas of reference models known to be
clean: min(deltas) - margin, never below 0. (Not to be confused with `babelmill calibrate`,
which proposes the quality filter's per-language thresholds from a corpus sample:
babelmill.pipeline.stages.quality.threshold_fit.)
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import yaml

from babelmill.contamination.verdicts import VerdictConfig
from babelmill.errors import BabelmillError


class CalibrationError(BabelmillError, ValueError):
    """No clean-model deltas to calibrate from, or an audit JSON that holds none."""


def calibrate(clean_deltas: Sequence[float] | dict[str, float], cfg: VerdictConfig | None = None,
              margin: float | None = None, out: str | Path | None = None) -> VerdictConfig:
    """Set `contaminated_below` from reference models known to be clean: min(deltas) - margin, >= 0.

    Using the smallest clean gain (not the mean) keeps every reference model on the clean side of
    the threshold; the margin absorbs sampling noise of models not in the reference set.
    """
    cfg = cfg or VerdictConfig.load()
    named = dict(clean_deltas) if isinstance(clean_deltas, dict) else {f"ref{i}": d for i, d in enumerate(clean_deltas)}
    if not named:
        raise CalibrationError("calibrating the verdict needs at least one clean-model delta "
                               "(--delta or --from-json)")
    m = cfg.margin if margin is None else margin
    cfg.margin = m
    cfg.contaminated_below = max(0.0, min(named.values()) - m)
    cfg.calibrated_on = [{"model": k, "delta": round(float(v), 4)} for k, v in named.items()]
    if out:
        header = ("# Calibrated by `babelmill audit-calibrate` (babelmill.contamination.verdict_calibration); "
                  "see the rule in the shipped verdict.yaml.\n")
        Path(out).write_text(header + yaml.safe_dump(cfg.to_yaml(), sort_keys=False), encoding="utf-8")
    return cfg


def deltas_from_audits(paths: Iterable[str | Path]) -> dict[str, float]:
    """`model:benchmark:language` -> delta of every row of these `babelmill audit --json` outputs."""
    deltas: dict[str, float] = {}
    for f in paths:
        try:
            data = json.loads(Path(f).read_text(encoding="utf-8"))
            rows = [(bench, lang, r["delta"]) for bench, b in data["benchmarks"].items()
                    for lang, r in b["languages"].items()]
        except json.JSONDecodeError as e:
            raise CalibrationError(f"{f}:{e.lineno}: not valid JSON ({e.msg})") from None
        except (KeyError, TypeError, AttributeError):
            raise CalibrationError(f"{f}: not a `babelmill audit --json` output (benchmarks.<name>.languages"
                                   ".<lang>.delta)") from None
        for bench, lang, delta in rows:
            if delta is not None:  # too few items: no delta to learn from
                deltas[f"{data.get('model', f)}:{bench}:{lang}"] = delta
    return deltas
