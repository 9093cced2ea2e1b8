"""The audit: load benchmarks, build and save their generalized versions, score a model on both,
decide per benchmark x language, optionally scan corpora for n-gram overlap, write JSON + HTML.

`run_audit` is what `babelmill audit` calls. Auditing several models side by side with one
summary report is the demo's business (demo/audit.py), built on `run_audit`.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path

from babelmill.contamination.backends import load_backend
from babelmill.contamination.benchmarks.loaders import Benchmark, load_benchmarks
from babelmill.contamination.scoring import PROMPT, score_items, summarize
from babelmill.contamination.swap import generalize, save_generalized
from babelmill.contamination.verdicts import VerdictConfig, assess, cross_lingual

log = logging.getLogger(__name__)


def _clean_json(x):
    """NaN -> None so the JSON is valid for every consumer."""
    if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
        return None
    if isinstance(x, dict):
        return {k: _clean_json(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean_json(v) for v in x]
    return x


def _overall(verdicts: Sequence[str]) -> str:
    if "contaminated" in verdicts:
        return "contaminated"
    if verdicts and all(v == "clean" for v in verdicts):
        return "clean"
    return "inconclusive"


def identify_language(items: Sequence, min_share: float = 0.5) -> dict:
    """The language of a benchmark's items by babelmill's LID stage (pipeline/stages/langid.py,
    annotate-only): one prediction per item (its question and correct answer), majority vote.
    {"lang": code or "und" when no language has `min_share` of the votes, "votes", "n", "share"}."""
    from collections import Counter

    import pyarrow as pa

    from babelmill.pipeline.stages.langid import LangIdStage

    texts = [f"{it.question} {it.answer}" for it in items]
    if not texts:
        return {"lang": "und", "votes": {}, "n": 0, "share": None, "method": "langid majority"}
    stage = LangIdStage(drop=False)
    out = stage(pa.RecordBatch.from_pydict({"id": [str(i) for i in range(len(texts))], "text": texts}))
    votes = Counter(x for x in out.column("lang").to_pylist() if x)
    top, count = votes.most_common(1)[0] if votes else ("und", 0)
    share = count / len(texts)
    return {"lang": top if share >= min_share else "und", "votes": dict(votes.most_common(5)),
            "n": len(texts), "share": round(share, 4), "method": "langid majority"}


def _name_languages(benches: list[Benchmark], given: str | None) -> tuple[list[Benchmark], dict]:
    """Items whose file names no language get `given` (--benchmark-lang) or the language the LID
    stage identifies from the benchmark's items; the per-benchmark record of how."""
    from dataclasses import replace

    out, how = [], {}
    for b in benches:
        und = [it for it in b.items if it.lang == "und"]
        if not und:
            out.append(b)
            continue
        if given:
            info = {"lang": given, "method": "given (--benchmark-lang)", "n": len(und)}
        else:
            info = identify_language(und)
            log.info("%s: %d items name no language; identified as %s (%s of %d items)", b.name, len(und),
                     info["lang"], info["share"], info["n"])
        how[b.name] = info
        out.append(Benchmark(b.name, [replace(it, lang=info["lang"]) if it.lang == "und" else it for it in b.items],
                             b.sources, b.skipped))
    return out, how


def audit_benchmark(backend, bench: Benchmark, cfg: VerdictConfig, seed: int = 0, same_subject: bool = False,
                    batch_size: int = 32, generalized_dir: str | Path | None = None, progress: bool = False) -> dict:
    """Score one benchmark (all its languages) on both versions and decide per language."""
    gen_items = generalize(bench.items, seed=seed, same_subject=same_subject)
    files = [str(p) for p in save_generalized(gen_items, generalized_dir, bench.name)] if generalized_dir else []
    orig_scores = score_items(backend, bench.items, batch_size=batch_size, progress=progress)
    gen_scores = score_items(backend, gen_items, batch_size=batch_size, progress=progress)
    key = "correct" if cfg.metric == "acc" else "correct_norm"
    rows: dict[str, dict] = {}
    per_lang: dict[str, dict[str, tuple[bool, bool]]] = {}
    for lang in bench.languages:
        o = [s for s in orig_scores if s.lang == lang]
        g = [s for s in gen_scores if s.lang == lang]
        ob, gb = [getattr(s, key) for s in o], [getattr(s, key) for s in g]
        chance = sum(1 / len(it.choices) for it in bench.items if it.lang == lang) / max(1, len(o))
        row = assess(ob, gb, cfg, seed=seed, chance=chance)
        so, sg = summarize(o), summarize(g)
        row.update({"acc_norm_original": so["acc_norm"], "acc_norm_generalized": sg["acc_norm"],
                    "raw_acc_original": so["acc"], "raw_acc_generalized": sg["acc"]})
        rows[lang] = row
        per_lang[lang] = {s.id: (a, b) for s, a, b in zip(o, ob, gb, strict=True)}
    out = {"sources": bench.sources, "generalized_files": files, "skipped_items": len(bench.skipped),
           "languages": rows, "verdict": _overall([r["verdict"] for r in rows.values()])}
    if len(rows) > 1:
        out["cross_lingual"] = cross_lingual(per_lang, rows)
    return out


def run_audit(model: str | Path | None, benchmarks: Sequence[str | Path], *, corpora: Sequence[str | Path] = (),
              seed: int = 0, json_out: str | Path | None = None, html_out: str | Path | None = None,
              verdict_config: str | Path | None = None, ngram_config: str | Path | None = None,
              same_subject: bool = False, batch_size: int = 32, limit: int | None = None,
              languages: Sequence[str] | None = None, generalized_dir: str | Path | None = None,
              benchmark_lang: str | None = None, skip_bad: bool = False, backend=None, progress: bool = False) -> dict:
    """Audit one model; returns the result dict (also written to json_out / html_out if given).

    The generalized benchmarks are saved under `generalized_dir`, by default `<json_out stem>.generalized/`
    next to the JSON, as `<benchmark>/<lang>.jsonl`, so the audit can be reproduced from files.
    """
    t0 = time.time()
    cfg = VerdictConfig.load(verdict_config)
    benches = load_benchmarks(benchmarks, skip_bad=skip_bad)
    benches, lang_info = _name_languages(benches, benchmark_lang)
    benches = [b.subset(languages, limit) for b in benches]
    if generalized_dir is None and json_out is not None:
        generalized_dir = Path(json_out).with_suffix(".generalized")
    if backend is None:
        if model is None:
            raise ValueError("either a model path or a backend is needed")
        backend = load_backend(model)
    t_load = time.time()
    result: dict = {"model": str(model) if model is not None else getattr(backend, "name", "backend"),
                    "backend": type(backend).__name__, "seed": seed, "prompt": PROMPT, "metric": cfg.metric,
                    "verdict_rule": {"contaminated_below": cfg.contaminated_below, "clean_above": cfg.clean_above,
                                     "min_items": cfg.min_items, "resamples": cfg.resamples,
                                     "require_above_chance": cfg.require_above_chance,
                                     "confidence": cfg.confidence, "calibrated_on": cfg.calibrated_on},
                    "benchmarks": {}, "overlap": None}
    n_items = 0
    for b in benches:
        log.info("auditing %s (%d items, languages %s)", b.name, len(b.items), ", ".join(b.languages))
        result["benchmarks"][b.name] = audit_benchmark(backend, b, cfg, seed=seed, same_subject=same_subject,
                                                       batch_size=batch_size, generalized_dir=generalized_dir,
                                                       progress=progress)
        if b.name in lang_info:
            result["benchmarks"][b.name]["language_identification"] = lang_info[b.name]
        n_items += 2 * len(b.items)
    t_score = time.time()
    if corpora:
        from babelmill.contamination.ngram import NgramConfig, build_index, scan_corpus

        index = None
        ncfg = NgramConfig.load(ngram_config)
        for b in benches:
            index = build_index(b.items, b.name, ncfg, index)
        result["overlap"] = scan_corpus(corpora, index)
    result["verdict"] = _overall([b["verdict"] for b in result["benchmarks"].values()])
    result["timing"] = {"load_s": round(t_load - t0, 3), "score_s": round(t_score - t_load, 3),
                        "items_scored": n_items, "items_per_s": round(n_items / max(t_score - t_load, 1e-9), 2),
                        "overlap_s": round(time.time() - t_score, 3)}
    result = _clean_json(result)
    if json_out:
        Path(json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(json_out).write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    if html_out:
        from babelmill.contamination.report import write_html

        write_html(result, html_out)
    return result
