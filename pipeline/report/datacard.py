"""`babelmill report RUN_DIR`: the data card — what went in, what was dropped and why, what
was kept and how the balanced corpus weighs each language — as one HTML page and one JSON file.
Runs with model-based quality stages (`quality_classifier`, `perplexity`) also get their score
distributions per language (histograms of the kept documents) and the documents at the
bottom, middle and top of each language's scores.

Every number comes from the run's own files: manifest.json (documents in/kept/dropped per
language, stage and reason), rejects/ (examples per reason, tokens of dropped documents),
balanced/_counts (tokens of kept documents) and balanced/balance.json (the balanced corpus).
Without a balance, the card still shows curation and leaves the balance columns empty.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

from babelmill.pipeline.balance.counting import count_tokens
from babelmill.pipeline.io.writers import atomic_write_bytes, atomic_write_json
from babelmill.pipeline.report import charts
from babelmill.pipeline.report.html import render_datacard

EXAMPLES_PER_REASON = 3
SNIPPET_CHARS = 280
#: model-score columns the card describes: column, stage, label, log-scale bins
MODEL_SCORES = (
    ("quality_score", "quality_classifier", "fastText quality score (probability of the positive label)", False),
    ("perplexity", "perplexity", "KenLM perplexity (log scale)", True),
)
SCORE_BINS = 20
EXAMPLE_POSITIONS = ("bottom", "middle", "top")


def _balance_dir(run_dir: Path) -> Path:
    cfg_path = run_dir / "run_config.yaml"
    sub = "balanced"
    if cfg_path.exists():
        doc = yaml.safe_load(cfg_path.read_text()) or {}
        sub = (doc.get("balance") or {}).get("output_subdir", sub)
    return run_dir / sub


def _read_dir(d: Path, columns: list[str]) -> pa.Table | None:
    tables = []
    for p in sorted(d.glob("*.parquet")):
        schema = pq.read_schema(p)
        tables.append(pq.read_table(p, columns=[c for c in columns if c in schema.names]))
    return pa.concat_tables(tables, promote_options="default") if tables else None


def _kept_tokens(run_dir: Path, bal: Path, counter: str, registry) -> dict[str, int]:
    counts = _read_dir(bal / "_counts", ["lang", "n_tokens"])
    if counts is None:  # no balance: count the kept documents now
        kept = _read_dir(run_dir / "output", ["lang", "text"])
        if kept is None or not kept.num_rows:
            return {}
        if "lang" in kept.column_names:
            langs = pc.fill_null(kept.column("lang"), "und").combine_chunks()
        else:  # a run without LID
            langs = pa.array(["und"] * kept.num_rows, pa.string())
        counts = pa.table({"lang": langs, "n_tokens": count_tokens(kept.column("text").combine_chunks(), langs, counter, registry)})
    g = counts.group_by("lang").aggregate([("n_tokens", "sum")])
    return dict(zip(g.column("lang").to_pylist(), g.column("n_tokens_sum").to_pylist(), strict=True))


def _rejects(run_dir: Path, counter: str, registry) -> tuple[dict[str, int], dict[str, dict[str, list[dict]]]]:
    """Tokens of dropped documents per language, and a few examples per language and reason."""
    t = _read_dir(run_dir / "rejects", ["id", "stage", "reason", "detail", "lang", "kept_id", "text"])
    if t is None or not t.num_rows:
        return {}, {}
    langs = pc.fill_null(t.column("lang"), "und").combine_chunks()
    tokens: dict[str, int] = {}
    if "text" in t.column_names:
        texts = pc.fill_null(t.column("text").cast(pa.string()), "").combine_chunks()
        n = count_tokens(texts, langs, counter, registry)
        for lang, v in zip(langs.to_pylist(), n.tolist(), strict=True):
            tokens[lang] = tokens.get(lang, 0) + v
    examples: dict[str, dict[str, list[dict]]] = {}
    order = np.lexsort((t.column("id").to_numpy(zero_copy_only=False).astype(str),))  # deterministic picks
    rows = t.take(pa.array(order)).to_pylist()
    for r, lang in zip(rows, langs.take(pa.array(order)).to_pylist(), strict=True):
        key = f"{r['stage']}:{r['reason']}"
        bucket = examples.setdefault(lang, {}).setdefault(key, [])
        if len(bucket) < EXAMPLES_PER_REASON:
            text = r.get("text") or ""
            bucket.append({"id": r["id"], "detail": r.get("detail"), "kept_id": r.get("kept_id"),
                           "text": text[:SNIPPET_CHARS] + ("…" if len(text) > SNIPPET_CHARS else "")})
    return tokens, examples


def _score_edges(values: np.ndarray, log_x: bool) -> np.ndarray:
    if not log_x:
        return np.linspace(0.0, 1.0, SCORE_BINS + 1)
    lo, hi = float(values.min()), float(values.max())
    lo = max(lo, 1e-3)
    if hi <= lo * 1.0001:
        lo, hi = lo / 1.5, hi * 1.5
    return np.geomspace(lo, hi, SCORE_BINS + 1)


def _model_scores(run_dir: Path, manifest: dict, order: list[str], by_lang: dict) -> tuple[dict | None, dict[str, bytes]]:
    """Per score column of the kept documents (quality_score, perplexity): per-language
    distribution, a histogram per language and the documents at the bottom, middle and top."""
    out_dir = run_dir / "output"
    shards = sorted(out_dir.glob("*.parquet"))
    present: set[str] = set()
    for sh in shards:
        present |= set(pq.read_schema(sh).names)
    cols = [c for c, *_ in MODEL_SCORES if c in present]
    if not cols:
        return None, {}
    extra = ["perplexity_bucket"] if "perplexity_bucket" in present else []
    t = _read_dir(out_dir, ["id", "lang", *cols, *extra])
    t = t.take(pc.sort_indices(t, [("id", "ascending")]))  # deterministic picks
    ids = np.asarray(t.column("id").to_pylist(), dtype=object)
    langs = np.asarray(pc.fill_null(t.column("lang"), "und").to_pylist() if "lang" in t.column_names
                       else ["und"] * t.num_rows, dtype=object)
    stages = {st["name"]: st for st in manifest.get("stages", [])}
    section: dict = {}
    figures: dict[str, bytes] = {}
    wanted: dict[str, str] = {}
    for col, stage, label, log_x in MODEL_SCORES:
        if col not in cols:
            continue
        v = pc.fill_null(t.column(col).cast(pa.float64()), float("nan")).to_numpy(zero_copy_only=False)
        ok = ~np.isnan(v)
        params = stages.get(stage, {}).get("params", {})
        entry = {"stage": stage, "label": label, "score_only": params.get("score_only"),
                 "models": params.get("models"), "figure": f"scores_{col}.png", "languages": {}}
        if ok.any():
            edges = _score_edges(v[ok], log_x)
            entry["edges"] = [round(float(x), 4) for x in edges]
        per_lang = entry["languages"]
        for lang in order:
            m = langs == lang
            if not m.any():
                continue
            sel = np.flatnonzero(m & ok)
            nulls = int((m & ~ok).sum())
            dropped = {r: n for r, n in by_lang.get(lang, {}).get("reasons", {}).items() if r.startswith(f"{stage}:")}
            if not len(sel):
                per_lang[lang] = {"scored": 0, "null": nulls, "dropped": dropped}
                continue
            vals = v[sel]
            srt = sel[np.argsort(vals, kind="stable")]
            picks = {"bottom": srt[0], "middle": srt[len(srt) // 2], "top": srt[-1]}
            e = {"scored": len(sel), "null": nulls, "dropped": dropped,
                 "mean": round(float(vals.mean()), 4), "p10": round(float(np.percentile(vals, 10)), 4),
                 "p50": round(float(np.percentile(vals, 50)), 4), "p90": round(float(np.percentile(vals, 90)), 4),
                 "hist": np.histogram(np.clip(vals, edges[0], edges[-1]), edges)[0].tolist(),
                 "examples": [{"position": k, "id": str(ids[i]), "score": round(float(v[i]), 4)} for k, i in picks.items()]}
            if col == "perplexity" and extra:
                b = pc.value_counts(t.column("perplexity_bucket").take(pa.array(sel))).to_pylist()
                e["buckets"] = {x["values"] or "none": x["counts"] for x in b}
            for ex in e["examples"]:
                wanted[ex["id"]] = ""
            per_lang[lang] = e
        scored = [k for k, e in per_lang.items() if e["scored"]]
        if scored:
            figures[entry["figure"]] = charts.score_histograms(
                f"{label}, kept documents per language", col, scored, [per_lang[k]["hist"] for k in scored],
                entry["edges"], log_x=log_x)
        else:
            entry["figure"] = None
        section[col] = entry
    # the example documents' texts, from the kept shards
    if wanted:
        keys = pa.array(list(wanted), pa.string())
        for sh in shards:
            part = pq.read_table(sh, columns=["id", "text"])
            part = part.filter(pc.is_in(part.column("id"), value_set=keys))
            for i, text in zip(part.column("id").to_pylist(), part.column("text").to_pylist(), strict=True):
                text = text or ""
                wanted[i] = text[:SNIPPET_CHARS] + ("…" if len(text) > SNIPPET_CHARS else "")
        for entry in section.values():
            for e in entry["languages"].values():
                for ex in e.get("examples", []):
                    ex["text"] = wanted.get(ex["id"], "")
    return section, figures


def build_datacard(run_dir: str | Path) -> tuple[dict, dict[str, bytes]]:
    """The data card as a JSON-able dict, plus the chart PNGs by file name. Language names and
    targets come from the registry the run used, as its manifest records it."""
    from babelmill.pipeline.core.context import RunContext

    run_dir = Path(run_dir)
    manifest_path = run_dir / "manifest.json"
    if not manifest_path.exists():
        raise FileNotFoundError(f"{run_dir}: no manifest.json — is this a finished `babelmill run` directory?")
    manifest = json.loads(manifest_path.read_text())
    registry = RunContext.from_manifest(manifest, run_dir).registry
    bal_dir = _balance_dir(run_dir)
    balance = json.loads((bal_dir / "balance.json").read_text()) if (bal_dir / "balance.json").exists() else None
    counter = "proxy"
    if balance and balance["token_counter"]["kind"] == "tokenizer":
        counter = balance["token_counter"]["path"]
    kept_tokens = _kept_tokens(run_dir, bal_dir, counter, registry)
    dropped_tokens, examples = _rejects(run_dir, counter, registry)

    by_lang = manifest["counts"]["by_lang"]
    langs = {}
    for lang, v in by_lang.items():
        b = (balance or {}).get("languages", {}).get(lang)
        langs[lang] = {
            "name": registry.get(lang).name if lang in registry else None,
            "target": lang in registry,
            "docs_in": v["in"], "docs_kept": v["kept"], "docs_dropped": v["dropped"],
            "tokens_in": kept_tokens.get(lang, 0) + dropped_tokens.get(lang, 0),
            "tokens_kept": kept_tokens.get(lang, 0),
            "dropped": dict(sorted(v["reasons"].items(), key=lambda kv: (-kv[1], kv[0]))),
            "docs_sampled": b["docs_after"] if b else None,
            "tokens_sampled": b["tokens_after"] if b else None,
            "weight": b["weight"] if b else None,
            "epochs": b["epochs"] if b else None,
            "capped": b["capped"] if b else None,
            "examples": examples.get(lang, {}),
        }
    order = sorted(langs, key=lambda k: (-langs[k]["tokens_in"], k))
    reasons: dict[str, int] = {}
    for v in langs.values():
        for r, n in v["dropped"].items():
            reasons[r] = reasons.get(r, 0) + n
    reasons = dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])))
    c = manifest["counts"]
    card = {
        "babelmill_datacard": 1,
        "run": {"dir": str(run_dir), "name": manifest["name"], "created": manifest["created"],
                "engine": manifest["engine"], "seconds": manifest["seconds"],
                "config_fingerprint": manifest["config_fingerprint"],
                "stages": [s["name"] for s in manifest["stages"]], "versions": manifest["versions"]},
        "token_counter": counter if counter == "proxy" else {"tokenizer": counter},
        "totals": {"docs_in": c["docs_in"], "docs_kept": c["kept"], "docs_dropped": c["dropped"],
                   "tokens_in": sum(v["tokens_in"] for v in langs.values()),
                   "tokens_kept": sum(v["tokens_kept"] for v in langs.values()),
                   "docs_sampled": balance["totals"]["docs_after"] if balance else None,
                   "tokens_sampled": balance["totals"]["tokens_after"] if balance else None,
                   "accounting_balanced": c["balanced"],
                   # beside in = kept + dropped, not in it (manifests of older runs lack these)
                   "records_lost": c.get("records_lost", 0),
                   "inputs_skipped": manifest.get("inputs_skipped", {}).get("count", 0)},
        "reasons": reasons,
        "balance": None if balance is None else {
            "file": str(bal_dir / "balance.json"), "config": balance["config"],
            "budget_tokens": balance["budget_tokens"], "realised_tokens": balance["realised_tokens"],
            "shortfall_tokens": balance["shortfall_tokens"], "excluded": balance["excluded"]},
        "language_order": order,
        "languages": langs,
    }
    target_order = [k for k in order if langs[k]["target"]]
    figures = {
        "distribution.png": charts.distribution_chart(
            target_order, [langs[k]["tokens_in"] for k in target_order], [langs[k]["tokens_kept"] for k in target_order],
            [langs[k]["tokens_sampled"] or 0 for k in target_order] if balance else None),
        "drops.png": charts.drops_chart([k for k in order if langs[k]["docs_dropped"]], list(reasons),
                                        {k: v["dropped"] for k, v in langs.items()}),
    }
    scores, score_figures = _model_scores(run_dir, manifest, order, by_lang)
    card["model_scores"] = scores
    figures.update(score_figures)
    card["figures"] = sorted(figures)
    return card, figures


def write_datacard(run_dir: str | Path, html_path: str | Path | None = None, json_path: str | Path | None = None) -> dict:
    run_dir = Path(run_dir)
    out = run_dir / "report"
    html_path = Path(html_path) if html_path else out / "datacard.html"
    json_path = Path(json_path) if json_path else out / "datacard.json"
    # Writing into the run directory: hold its lock, so a report never interleaves with a
    # (re)run or balance of the same directory. A card written elsewhere only reads the run.
    inside = (run_dir / "manifest.json").exists() and any(p.resolve().is_relative_to(run_dir.resolve()) for p in (html_path, json_path))
    if not inside:
        return _write(run_dir, html_path, json_path)
    from babelmill.pipeline.runner.lock import run_dir_lock

    with run_dir_lock(run_dir, what="report"):
        return _write(run_dir, html_path, json_path)


def _write(run_dir: Path, html_path: Path, json_path: Path) -> dict:
    card, figures = build_datacard(run_dir)
    for name, png in figures.items():
        atomic_write_bytes(html_path.parent / name, png)
    embedded = {name: "data:image/png;base64," + base64.b64encode(png).decode() for name, png in figures.items()}
    atomic_write_bytes(html_path, render_datacard(card, embedded).encode("utf-8"))
    atomic_write_json(json_path, card)
    return {"html": str(html_path), "json": str(json_path)}
