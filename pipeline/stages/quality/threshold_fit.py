"""`babelmill calibrate`: fit the quality filter's per-language thresholds to a sample of a corpus.

(The contamination audit's verdict threshold is calibrated by `babelmill audit-calibrate`,
babelmill.contamination.verdict_calibration, from clean reference models.)

Reads JSONL/Parquet documents with `text` and `lang`, keeps a seeded reservoir sample of up to
`sample` documents per language, measures every quality statistic with the quality stage's own
`compute_stats` (so the numbers are exactly what the stage will compare), and proposes per
language, for every bound the current config enables:

* robust rule (default): lower bounds `median - k * sigma`, upper bounds `median + k * sigma`,
  sigma = 1.4826 * MAD (the normal-consistent median absolute deviation), falling back to
  IQR / 1.349 and then to the 1%/99% quantile when the distribution is degenerate;
* quantile rule (`quantile=q`): lower bounds the q-quantile, upper bounds the (1-q)-quantile.

A proposal is then clamped into hard sanity limits (`SANITY`): never looser than the loosest
value (a document with half of its lines duplicated is always dropped) and never stricter than
the strictest value (a clean corpus must not turn a rare repetition into a drop reason).

Model scores (the `perplexity` and `quality_classifier` stages): when the sampled documents
carry `perplexity` / `quality_score` (e.g. the output of a run with those stages in
`score_only` mode), or when `--perplexity-models` / `--quality-models` name model directories
to score the sample with, it also proposes per language the CCNet buckets' cutoffs
`perplexity_head` / `perplexity_tail` (the 30th and 60th percentiles, as CCNet), an upper
bound `max_perplexity` (robust rule on log10 perplexity, or the 1-q quantile) and a lower bound
`min_quality_score` (robust rule, or the q quantile; clamped like the heuristics).

The output YAML has the shape of configs/quality.yaml (defaults, unspaced, terminal_punctuation
copied from the base config; `languages:` = the base overrides updated with the proposals) plus
a `provenance:` block (inputs and their fingerprints, sample sizes, rule, date, version, and
how many sampled documents each proposed threshold would drop), so it can be given to the stage
as `config:` directly.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import math
import random
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from babelmill.errors import BabelmillError
from babelmill.pipeline.stages.quality.rules import FILTERS, QualityRules
from babelmill.pipeline.stages.quality.stats import compute_stats
from babelmill.pipeline.stages.quality.thresholds import DEFAULT_CONFIG, Thresholds


class CalibrationError(BabelmillError, ValueError):
    """Bad calibration options or input (a rule parameter out of range, no documents with a
    `lang`): one line for the user."""


#: key -> (loosest, strictest) value a proposal may take.
SANITY: dict[str, tuple[float, float]] = {
    "min_words": (10, 100),
    "min_chars": (30, 300),
    "min_mean_word_length": (1.0, 4.0),
    "max_mean_word_length": (20.0, 8.0),
    "max_symbol_ratio": (0.3, 0.05),
    "max_bullet_lines_frac": (0.95, 0.5),
    "max_ellipsis_lines_frac": (0.5, 0.1),
    "min_alpha_words_frac": (0.5, 0.9),
    "min_stop_words": (1, 5),
    "max_dup_para_frac": (0.5, 0.1),
    "max_dup_para_char_frac": (0.5, 0.1),
    "max_dup_line_frac": (0.5, 0.1),
    "max_dup_line_char_frac": (0.5, 0.1),
    **{f"max_top_{n}gram_frac": (0.4, 0.05) for n in (2, 3, 4)},
    **{f"max_dup_{n}gram_frac": (0.8, 0.05) for n in range(5, 11)},
    "min_terminal_punct_frac": (0.0, 0.3),
    "max_short_lines_frac": (0.9, 0.5),
    "min_quality_score": (0.0, 0.9),
}
#: model scores read from the input or computed with --perplexity-models / --quality-models
SCORE_FIELDS = ("perplexity", "quality_score")
#: CCNet's bucket percentiles (cc_net/perplexity.py PerplexityBucket: head 30, tail 60)
PERPLEXITY_PERCENTILES = (30, 60)
_INT_KEYS = {"min_words", "min_chars", "min_stop_words"}
#: keys shown in the CLI table
TABLE_KEYS = ("min_words", "min_stop_words", "max_top_2gram_frac", "max_dup_5gram_frac", "min_terminal_punct_frac")


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("babelmill")
    except Exception:  # noqa: BLE001 - not installed as a distribution
        import babelmill

        return getattr(babelmill, "__version__", "unknown")


def sample_documents(inputs: list[str], sample: int, seed: int = 0, fields: tuple[str, ...] = ()
                     ) -> tuple[dict[str, list], dict[str, int], list]:
    """Reservoir sample of up to `sample` texts per language; also the number of documents seen
    per language and the work units read (for provenance). With `fields`, each sampled item is
    a tuple (text, *those fields' values), the values as read (strings or None)."""
    from babelmill.pipeline.io.readers import ReadOptions, plan_units, read_unit

    opts = ReadOptions(extra_fields=("lang", *fields))
    units = plan_units(list(inputs), opts)
    rng = random.Random(seed)
    res: dict[str, list] = {}
    seen: dict[str, int] = {}
    for unit in units:
        for docs, _rejects in read_unit(unit, opts):
            if "lang" not in docs.schema.names:
                continue
            langs = docs.column("lang").to_pylist()
            texts = docs.column("text")
            extra = [docs.column(f).to_pylist() for f in fields]

            def item(i: int, texts=texts, extra=extra):
                t = texts[i].as_py()
                return (t, *(col[i] for col in extra)) if fields else t

            for i, lang in enumerate(langs):
                if not lang:
                    continue
                c = seen.get(lang, 0)
                seen[lang] = c + 1
                bucket = res.setdefault(lang, [])
                if c < sample:
                    bucket.append(item(i))
                else:
                    j = rng.randint(0, c)
                    if j < sample:
                        bucket[j] = item(i)
    return res, seen, units


def _as_float(v) -> float:
    try:
        return float(v) if v is not None and v != "" else math.nan
    except (TypeError, ValueError):
        return math.nan


def _model_scores(code: str, texts: list[str], given: dict[str, list[float]], scorers: dict) -> dict[str, tuple]:
    """field -> (scores as float64 with NaN for none, source) for each score available."""
    out = {}
    for field in SCORE_FIELDS:
        st = scorers.get(field)
        if st is not None:
            got = st.score_texts(code, texts)
            if got is not None:
                out[field] = (np.asarray(got, dtype=np.float64), f"scored with {st.params.models}")
            continue
        v = np.asarray(given.get(field, []), dtype=np.float64)
        if len(v) and not np.isnan(v).all():
            out[field] = (v, f"`{field}` of the input")
    return out


def _propose_scores(scores: dict[str, tuple], k: float, quantile: float | None, min_docs: int
                    ) -> tuple[dict[str, Any], dict[str, int], dict[str, Any], np.ndarray]:
    """Proposals, would-drop counts, a summary per score and which documents a bound drops."""
    proposal: dict[str, Any] = {}
    drops: dict[str, int] = {}
    summary: dict[str, Any] = {}
    any_drop = np.zeros(len(next(iter(scores.values()))[0]) if scores else 0, dtype=bool)
    for field, (v, source) in scores.items():
        ok = v[~np.isnan(v)]
        summary[field] = {"source": source, "scored": int(len(ok))}
        if len(ok) < min_docs:
            summary[field]["note"] = f"fewer than {min_docs} scored documents: not calibrated"
            continue
        summary[field].update({f"p{q}": round(float(np.percentile(ok, q)), 4) for q in (10, 30, 50, 60, 90)})
        if field == "perplexity":
            head, tail = (float(np.percentile(ok, q)) for q in PERPLEXITY_PERCENTILES)
            proposal["perplexity_head"], proposal["perplexity_tail"] = round(head, 1), round(max(tail, head), 1)
            hi = _propose(np.log10(np.maximum(ok, 1e-9)), False, k, quantile)
            if hi is not None:
                key, thr = "max_perplexity", round(10 ** hi, 1)
                with np.errstate(invalid="ignore"):
                    fail = v > thr
        else:
            lo = _propose(ok, True, k, quantile)
            if lo is None:
                continue
            key, thr = "min_quality_score", _clamp("min_quality_score", lo)
            with np.errstate(invalid="ignore"):
                fail = v < thr
        proposal[key] = thr
        drops[key] = int(fail.sum())
        any_drop |= fail
    return proposal, drops, summary, any_drop


def _propose(values: np.ndarray, lower: bool, k: float, quantile: float | None) -> float | None:
    v = values[~np.isnan(values)]
    if len(v) == 0:
        return None
    if quantile is not None:
        return float(np.quantile(v, quantile if lower else 1 - quantile))
    med = float(np.median(v))
    sigma = 1.4826 * float(np.median(np.abs(v - med)))
    if sigma == 0:
        q1, q3 = np.quantile(v, [0.25, 0.75])
        sigma = float(q3 - q1) / 1.349
    if sigma == 0:
        return float(np.quantile(v, 0.01 if lower else 0.99))
    return med - k * sigma if lower else med + k * sigma


def _clamp(key: str, value: float) -> float:
    lim = SANITY.get(key)
    if lim is not None:
        loosest, strictest = lim
        lo, hi = sorted((loosest, strictest))
        value = min(max(value, lo), hi)
    if key in _INT_KEYS:
        return float(math.floor(value + 1e-9))
    return round(value, 3)


def _key_for(f, lower: bool, spaced: bool) -> str | None:
    key = f.lo if lower else f.hi
    if key in ("min_words", "max_words") and not spaced:
        key = key.replace("words", "chars")
    return key


def calibrate(inputs: list[str], output_yaml: str | Path | None, sample: int = 5000, k: float = 2.0,
              quantile: float | None = None, registry: str | None = None, config: str | None = None,
              seed: int = 0, min_docs: int = 30, perplexity_models: str | None = None,
              quality_models: str | None = None) -> dict:
    """Propose thresholds; write them (if `output_yaml`) and return the config as a dict
    (its `provenance.languages` holds sample sizes and per-threshold drop counts)."""
    if quantile is not None and not 0 < quantile < 0.5:
        raise CalibrationError(f"--quantile must be in (0, 0.5), got {quantile}")
    if k <= 0:
        raise CalibrationError(f"--k must be > 0, got {k}")
    if sample <= 0:
        raise CalibrationError(f"--sample must be > 0, got {sample}")
    rules = QualityRules(config, registry)
    scorers: dict = {}
    if perplexity_models:
        from babelmill.pipeline.stages.perplexity import PerplexityStage

        scorers["perplexity"] = PerplexityStage(models=perplexity_models, registry=registry, score_only=True, languages=[])
    if quality_models:
        from babelmill.pipeline.stages.quality_classifier import QualityClassifierStage

        scorers["quality_score"] = QualityClassifierStage(models=quality_models, registry=registry, score_only=True,
                                                          languages=[])
    for st in scorers.values():
        st.preflight()  # a bad model file is named before anything is read
        st.ensure_setup()
    items, seen, units = sample_documents(inputs, sample, seed, SCORE_FIELDS)
    samples = {c: [it[0] for it in v] for c, v in items.items()}
    if not samples:
        raise CalibrationError(f"no documents with a `lang` field in {inputs}")
    base = rules.cfg
    languages: dict[str, dict[str, Any]] = {
        c: t.model_dump(exclude_unset=True) for c, t in base.languages.items()
    }
    prov_langs: dict[str, Any] = {}
    skip_keys = {"max_words", "max_chars", "max_lorem_ipsum", "max_curly_brace_ratio", "max_javascript_lines_frac"}
    for code in sorted(samples):
        texts = samples[code]
        thr, prof = rules.resolve(code)
        info: dict[str, Any] = {"seen": seen[code], "sampled": len(texts)}
        given = {f: [_as_float(it[1 + j]) for it in items[code]] for j, f in enumerate(SCORE_FIELDS)}
        if len(texts) < min_docs:
            info["note"] = f"fewer than {min_docs} documents: thresholds not calibrated"
            prov_langs[code] = info
            continue
        stats = compute_stats(texts, np.zeros(len(texts), dtype=np.int64), [prof])
        proposal: dict[str, float] = {}
        drops: dict[str, int] = {}
        any_drop = np.zeros(len(texts), dtype=bool)
        for f in FILTERS:
            for lower in (True, False):
                key = _key_for(f, lower, prof.spaced)
                if key is None or key in skip_keys:
                    continue
                cur = thr.get(key)
                if cur is None:  # the current config disables this bound for the language
                    continue
                v = stats[f.stat]
                p = _propose(v, lower, k, quantile)
                if p is None:
                    continue
                p = _clamp(key, p)
                with np.errstate(invalid="ignore"):
                    fail = (v < p) if lower else (v > p)
                proposal[key] = int(p) if key in _INT_KEYS else p
                drops[key] = int(fail.sum())
                any_drop |= fail
        scores = _model_scores(code, texts, given, scorers)
        if scores:
            s_prop, s_drops, s_summary, s_any = _propose_scores(scores, k, quantile, min_docs)
            proposal.update(s_prop)
            drops.update(s_drops)
            any_drop |= s_any
            info["scores"] = s_summary
        languages[code] = {**languages.get(code, {}), **proposal}
        info["would_drop"] = drops
        info["would_drop_any"] = int(any_drop.sum())
        prov_langs[code] = info
    rule = (f"quantile q={quantile} (lower bounds q, upper bounds 1-q)" if quantile is not None
            else f"median -/+ k*sigma, sigma = 1.4826*MAD, k={k}")
    out: dict[str, Any] = {
        "version": base.version,
        "provenance": {
            "tool": "babelmill calibrate",
            "babelmill_version": _version(),
            "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "rule": rule,
            "sanity_limits": "pipeline/stages/quality/threshold_fit.py SANITY (loosest, strictest)",
            "sample_per_language": sample,
            "seed": seed,
            "base_config": str(Path(config or DEFAULT_CONFIG)),
            "registry": str(rules.reg.path),
            "inputs": [str(p) for p in inputs],
            "units": [{"source": u.source, "path": u.path, "fingerprint": u.fingerprint()} for u in units],
            "languages": prov_langs,
        },
        "defaults": base.defaults.model_dump(exclude_unset=True),
        "unspaced": base.unspaced.model_dump(exclude_unset=True),
        "languages": {c: languages[c] for c in sorted(languages)},
        "terminal_punctuation": base.terminal_punctuation.model_dump(),
    }
    for t in out["languages"].values():  # what we write must load back
        Thresholds.model_validate(t)
    if output_yaml is not None:
        Path(output_yaml).parent.mkdir(parents=True, exist_ok=True)
        with open(output_yaml, "w", encoding="utf-8") as fh:
            fh.write("# Proposed by `babelmill calibrate`; usable as the quality stage's `config:`.\n")
            yaml.safe_dump(out, fh, sort_keys=False, allow_unicode=True, width=120)
    return out


def format_table(result: dict) -> str:
    """Per-language table: documents, a few proposed thresholds (and how many sampled
    documents each would drop), documents dropped by any proposed threshold."""
    prov = result["provenance"]["languages"]
    keys = list(TABLE_KEYS)
    for extra in ("perplexity_head", "perplexity_tail", "max_perplexity", "min_quality_score"):
        if any(extra in result["languages"].get(c, {}) and "scores" in info for c, info in prov.items()):
            keys.append(extra)
    head = ["lang", "n", *("min_words|chars" if k == "min_words" else k for k in keys), "drop_any"]
    rows = [head]
    for code, info in prov.items():
        props = result["languages"].get(code, {})
        drops = info.get("would_drop", {})
        row = [code, str(info["sampled"])]
        for key in keys:
            if key in ("perplexity_head", "perplexity_tail"):
                row.append(f"{props[key]:g}" if key in props and "scores" in info else "-")
                continue
            kk = key
            if key == "min_words" and "min_words" not in drops and "min_chars" in drops:
                kk = "min_chars"
            if kk in drops:
                row.append(f"{props[kk]:g} ({drops[kk]})")
            else:
                row.append("-")
        if "would_drop_any" in info:
            n = info["sampled"]
            row.append(f"{info['would_drop_any']} ({100 * info['would_drop_any'] / max(n, 1):.1f}%)")
        else:
            row.append(info.get("note", "-"))
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """The options of `babelmill calibrate` (registered by pipeline/cli.py, so they show in
    `babelmill calibrate --help`)."""
    ap.add_argument("--input", "-i", nargs="+", action="extend", required=True,
                    help="JSONL/Parquet files, directories or globs with `text` and `lang`")
    ap.add_argument("--output", "-o", required=True, help="proposed thresholds YAML")
    ap.add_argument("--sample", type=int, default=5000, help="documents per language (default 5000)")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--k", type=float, default=2.0, help="robust rule: median -/+ k*sigma (default 2)")
    g.add_argument("--quantile", type=float, help="quantile rule: drop the q tail of each statistic")
    ap.add_argument("--registry", help="language registry YAML")
    ap.add_argument("--config", help="base quality config (default configs/quality.yaml)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--perplexity-models", help="KenLM model directory: score the sample and propose per-language "
                    "perplexity cutoffs and bounds (default: use a `perplexity` column of the input, if any)")
    ap.add_argument("--quality-models", help="fastText classifier directory: score the sample and propose "
                    "min_quality_score (default: use a `quality_score` column of the input, if any)")


def run(args: argparse.Namespace) -> int:
    """`babelmill calibrate`; bad options or input raise a domain error (CalibrationError,
    ConfigError, InputError, ...) that babelmill/cli.py prints as one line with exit code 2."""
    res = calibrate(args.input, args.output, sample=args.sample, k=args.k, quantile=args.quantile,
                    registry=args.registry, config=args.config, seed=args.seed,
                    perplexity_models=args.perplexity_models, quality_models=args.quality_models)
    print(format_table(res))
    print(f"\nrule: {res['provenance']['rule']}")
    print(f"wrote {args.output}")
    return 0
