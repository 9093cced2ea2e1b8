"""Balance a finished curation run: count -> plan -> sample -> write, through any engine.

RUN_DIR/balanced/ (the `output_subdir`)
  _state.json               balance config fingerprint + the curation run it applies to
  _counts/<unit>.parquet    per kept document: row, id, lang, n_chars, n_tokens, cluster_size
  _copies/<unit>.parquet    per kept document: row, copies (the sampler's decision)
  _units/<unit>.json        written last per unit: its balanced rows per language
  data/<lang>/<unit>.parquet  the balanced corpus: kept documents repeated `copies` times, with
                            `copy` (0..copies-1) and `n_tokens`, rows shuffled from the seed
  balance.json              per language: before/after counts, planned share, weight, epochs

Counting and writing are per-unit tasks run by the engine (in-process, Ray or Beam); the plan
and the sampler run on the driver over two integer columns per document (16 bytes each), never
over texts. Every file is written atomically and a rerun skips finished units; a rerun with a
different balance config refuses to mix results unless `overwrite=True`.

The language registry (which languages are targets, which scripts are unspaced for the token
proxy) is the one the curation run used, as its manifest records it (RunContext.from_manifest:
`registry`; for a manifest from before that record, the config's `languages:`, else
$BABELMILL_LANGUAGES, else the default, as everywhere else), not whatever the environment of
the balancing process says. Messages go to this module's logger; `quiet` only turns the
progress bars off.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from babelmill.errors import BabelmillError
from babelmill.pipeline.balance.config import BalanceConfig
from babelmill.pipeline.balance.counting import char_counts, count_tokens, counter_description
from babelmill.pipeline.balance.plan import make_plan, plan_to_json
from babelmill.pipeline.balance.sampler import assign_copies
from babelmill.pipeline.io.writers import atomic_write_json, atomic_write_parquet, clean_tmp_files

BALANCE_FILE = "balance.json"
log = logging.getLogger(__name__)


class BalanceStateError(BabelmillError, RuntimeError):
    """The balance directory holds results of a different balance config or curation run."""


def _read_shard(path: str, columns: list[str] | None = None) -> pa.Table:
    if path.endswith(".jsonl"):
        import pyarrow.json as pj

        t = pj.read_json(path)
        return t.select([c for c in columns if c in t.column_names]) if columns else t
    schema = pq.read_schema(path)
    cols = [c for c in columns if c in schema.names] if columns else None
    return pq.read_table(path, columns=cols)


# ----------------------------------------------------------------------------- tasks (engine side)


def count_task(task: dict) -> None:
    """Count one unit's kept documents (no texts leave the task)."""
    from babelmill.pipeline.core.context import RunContext

    t = _read_shard(task["shard"], ["id", "lang", "text", "cluster_size"])
    registry = RunContext.from_dict(task["context"]).registry  # the driver's, checked against its fingerprint
    texts = t.column("text").combine_chunks() if t.num_rows else pa.array([], pa.string())
    langs = pc.fill_null(t.column("lang"), "und").combine_chunks() if t.num_rows else pa.array([], pa.string())
    size = (t.column("cluster_size").to_numpy().astype(np.int32) if "cluster_size" in t.column_names
            else np.ones(t.num_rows, np.int32))
    out = pa.table({
        "row": pa.array(np.arange(t.num_rows, dtype=np.int32)),
        "id": t.column("id") if "id" in t.column_names else pa.array([None] * t.num_rows, pa.string()),
        "lang": langs,
        "n_chars": pa.array(char_counts(texts)),
        "n_tokens": pa.array(count_tokens(texts, langs, task["counter"], registry)),
        "cluster_size": pa.array(size),
    })
    atomic_write_parquet(Path(task["out"]), out, compression="zstd")


def write_task(task: dict) -> None:
    """Repeat one unit's documents by their copies, shuffle from the seed, split by language."""
    copies = pq.read_table(task["copies"])
    counts = pq.read_table(task["counts"], columns=["n_tokens"])
    c = copies.column("copies").to_numpy()
    idx = np.repeat(np.arange(len(c)), c)
    out_dir = Path(task["out_dir"])
    per_lang: dict[str, dict] = {}
    if idx.size:
        t = _read_shard(task["shard"])
        starts = np.repeat(np.cumsum(c) - c, c)
        t = t.take(pa.array(idx)).append_column("copy", pa.array((np.arange(idx.size) - starts).astype(np.int16)))
        t = t.append_column("n_tokens", pa.array(counts.column("n_tokens").to_numpy()[idx]))
        rng = np.random.default_rng([task["seed"], task["unit_index"]])
        t = t.take(pa.array(rng.permutation(t.num_rows)))
        langs = pc.fill_null(t.column("lang"), "und")
        for lang in sorted(set(pc.unique(langs).to_pylist())):
            part = t.filter(pc.equal(langs, lang))
            rel = f"data/{lang}/{task['unit_id']}.parquet"
            atomic_write_parquet(out_dir / rel, part, compression="zstd")
            per_lang[lang] = {"rows": part.num_rows, "tokens": int(pc.sum(part.column("n_tokens")).as_py() or 0),
                              "file": rel}
    atomic_write_json(out_dir / "_units" / f"{task['unit_id']}.json", {"unit_id": task["unit_id"], "languages": per_lang})


# ----------------------------------------------------------------------------- driver


def _units(run_dir: Path) -> tuple[list[str], str, dict]:
    manifest_path = run_dir / "manifest.json"
    if not manifest_path.exists():
        raise BalanceStateError(f"{run_dir}: no manifest.json — balance a finished curation run (babelmill run ...)")
    manifest = json.loads(manifest_path.read_text())
    ext = "jsonl" if manifest["config"]["output"]["format"] == "jsonl" else "parquet"
    units = [u["unit_id"] for u in manifest["inputs"]]
    return units, ext, manifest


def _prepare(bal: Path, state: dict, overwrite: bool) -> None:
    state_path = bal / "_state.json"
    if state_path.exists():
        old = json.loads(state_path.read_text())
        if old != state:
            if not overwrite:
                raise BalanceStateError(
                    f"{bal} holds a balance made with another config or curation run "
                    f"({old.get('balance_fingerprint')} vs {state['balance_fingerprint']}); pass --overwrite")
            log.warning("%s was made with another balance config or curation run: rebuilding it", bal)
            shutil.rmtree(bal)
    for d in ("_counts", "_copies", "_units"):
        (bal / d).mkdir(parents=True, exist_ok=True)
    clean_tmp_files(bal)
    atomic_write_json(state_path, state)


def _run_phase(eng, fn, tasks, marker_dir: Path, total: int, desc: str, quiet: bool) -> None:
    from babelmill.pipeline.runner.run import _progress

    if tasks:
        with _progress(quiet, marker_dir, total, total - len(tasks), desc):
            eng.map_tasks(fn, tasks)


def _language_copies(counts: pa.Table, plan: dict, cfg: BalanceConfig) -> np.ndarray:
    copies = np.zeros(counts.num_rows, dtype=np.int32)
    langs = counts.column("lang").to_numpy(zero_copy_only=False)
    tokens = counts.column("n_tokens").to_numpy()
    sizes = counts.column("cluster_size").to_numpy()
    for lang, lp in plan["languages"].items():
        sel = np.flatnonzero(langs == lang)
        w = np.minimum(sizes[sel], cfg.rehydrate.max_weight).astype(np.float64) if cfg.rehydrate.enabled else None
        copies[sel] = assign_copies(tokens[sel], lp.target_tokens, cfg.max_epochs, cfg.seed, lang, w)
    return copies


def run_balance(run_dir: str | Path, cfg: BalanceConfig, engine: str = "local", engine_cfg=None,
                overwrite: bool = False, quiet: bool = False) -> dict:
    """Balance the finished run in `run_dir`; returns the balance report. `quiet`: no progress
    bars."""
    from babelmill.pipeline.core.context import RunContext
    from babelmill.pipeline.engines import get_engine

    t0 = time.time()
    run_dir = Path(run_dir)
    units, ext, manifest = _units(run_dir)
    ctx = RunContext.from_manifest(manifest, run_dir)
    registry = ctx.registry
    targets = cfg.languages or registry.codes
    unknown = sorted(set(targets) - set(registry.codes))
    if unknown:
        raise ValueError(f"balance.languages: not in the registry {ctx.registry_path}: {unknown}")
    log.info("balance %s: %d unit(s), %d target language(s) of the registry %s", run_dir, len(units),
             len(targets), ctx.registry_path)
    counter = cfg.tokenizer
    if counter != "proxy" and not Path(counter).is_file():
        raise FileNotFoundError(f"balance.tokenizer: no such tokenizer file: {counter}")
    bal = run_dir / cfg.output_subdir
    state = {"balance_fingerprint": cfg.fingerprint(), "run_fingerprint": manifest["config_fingerprint"],
             "run_created": manifest["created"]}
    _prepare(bal, state, overwrite)
    eng = get_engine(engine)(engine_cfg)
    shard = {u: str(run_dir / "output" / f"{u}.{ext}") for u in units}

    todo = [{"shard": shard[u], "out": str(bal / "_counts" / f"{u}.parquet"), "counter": counter,
             "context": ctx.to_dict()} for u in units if not (bal / "_counts" / f"{u}.parquet").exists()]
    _run_phase(eng, count_task, todo, bal / "_counts", len(units), "balance: count", quiet)

    parts = [pq.read_table(bal / "_counts" / f"{u}.parquet", columns=["lang", "n_chars", "n_tokens", "cluster_size"])
             for u in units]
    counts = pa.concat_tables(parts) if parts else pa.table({"lang": pa.array([], pa.string())})
    bounds = np.cumsum([0] + [p.num_rows for p in parts])
    target_set = set(targets)
    langs_np = counts.column("lang").to_numpy(zero_copy_only=False)
    tok_np, chr_np = counts.column("n_tokens").to_numpy(), counts.column("n_chars").to_numpy()
    before: dict[str, dict] = {}
    excluded: dict[str, int] = {}
    for lang in sorted(set(langs_np.tolist())):
        m = langs_np == lang
        if lang in target_set:
            before[lang] = {"docs": int(m.sum()), "tokens": int(tok_np[m].sum()), "chars": int(chr_np[m].sum())}
        else:
            excluded[lang] = int(m.sum())
    plan = make_plan({k: v["tokens"] for k, v in before.items()}, cfg)
    copies = _language_copies(counts, plan, cfg)
    for i, u in enumerate(units):
        path = bal / "_copies" / f"{u}.parquet"
        if not path.exists():
            atomic_write_parquet(path, pa.table({"copies": pa.array(copies[bounds[i]:bounds[i + 1]])}), compression="zstd")

    todo = [{"shard": shard[u], "copies": str(bal / "_copies" / f"{u}.parquet"),
             "counts": str(bal / "_counts" / f"{u}.parquet"), "out_dir": str(bal), "unit_id": u,
             "unit_index": i, "seed": cfg.seed}
            for i, u in enumerate(units) if not (bal / "_units" / f"{u}.json").exists()]
    _run_phase(eng, write_task, todo, bal / "_units", len(units), "balance: write", quiet)

    report = _summarise(bal, units, before, excluded, plan, copies, langs_np, tok_np, chr_np, cfg, counter)
    report["seconds"] = round(time.time() - t0, 3)
    report["engine"] = engine
    atomic_write_json(bal / BALANCE_FILE, report)
    log.info("balance %s: %d documents (%d tokens) -> %d (%d tokens), %s", run_dir, report["totals"]["docs_before"],
             report["totals"]["tokens_before"], report["totals"]["docs_after"], report["totals"]["tokens_after"],
             bal / BALANCE_FILE)
    return report


def _summarise(bal, units, before, excluded, plan, copies, langs_np, tok_np, chr_np, cfg, counter) -> dict:
    shards: dict[str, list[str]] = {}
    rows_written: dict[str, int] = {}
    for u in units:
        info = json.loads((bal / "_units" / f"{u}.json").read_text())
        for lang, v in info["languages"].items():
            shards.setdefault(lang, []).append(v["file"])
            rows_written[lang] = rows_written.get(lang, 0) + v["rows"]
    total_after = int((copies * tok_np).sum())
    langs = {}
    for lang, b in before.items():
        m = langs_np == lang
        lp = plan["languages"].get(lang)
        c = copies[m]
        tokens_after = int((c * tok_np[m]).sum())
        langs[lang] = {
            "docs_before": b["docs"], "tokens_before": b["tokens"], "chars_before": b["chars"],
            "desired_share": lp.desired_share if lp else 0.0,
            "target_tokens": lp.target_tokens if lp else 0,
            "planned_share": lp.share if lp else 0.0,
            "docs_after": int(c.sum()), "unique_docs_after": int((c > 0).sum()),
            "tokens_after": tokens_after, "chars_after": int((c * chr_np[m]).sum()),
            "weight": tokens_after / total_after if total_after else 0.0,
            "epochs": tokens_after / b["tokens"] if b["tokens"] else 0.0,
            "max_copies": int(c.max()) if c.size else 0,
            "capped": bool(lp.capped) if lp else False,
            "shards": sorted(shards.get(lang, [])),
        }
        if rows_written.get(lang, 0) != langs[lang]["docs_after"]:
            raise RuntimeError(f"{bal}: {lang}: wrote {rows_written.get(lang, 0)} rows, planned {langs[lang]['docs_after']}")
    return {
        "babelmill_balance": 1,
        "config": cfg.model_dump(mode="json"),
        "token_counter": counter_description(counter),
        "budget_tokens": plan["budget"],
        "planned_tokens": plan["planned_tokens"],
        "realised_tokens": total_after,
        "shortfall_tokens": plan["shortfall"],
        "plan": plan_to_json(plan),
        "languages": langs,
        "excluded": excluded,
        "totals": {"docs_before": sum(b["docs"] for b in before.values()),
                   "tokens_before": sum(b["tokens"] for b in before.values()),
                   "docs_after": int(copies.sum()), "tokens_after": total_after},
    }
