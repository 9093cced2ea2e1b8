"""Apply phase: turn one staged shard into its final output once the global stages have
decided which documents are duplicates. Kept documents get `cluster_size` (how many input
documents each stands for); dropped ones go to rejects/<unit>-dedup.parquet with the kept id."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from babelmill.pipeline.core.chain import ChainCounts
from babelmill.pipeline.core.global_stage import DROPS_SCHEMA
from babelmill.pipeline.core.rounds import read_unit_rows
from babelmill.pipeline.core.schema import REJECT_SCHEMA, rejects_from_columns
from babelmill.pipeline.dedup import index as dedup_index
from babelmill.pipeline.dedup.refs import make_refs
from babelmill.pipeline.io.writers import ShardWriter, atomic_write_json


def unit_decisions(worker, unit_index: int) -> tuple[pa.Table, pa.Table]:
    """This unit's drops (with their stage, sorted by ref) and resolved rows (cluster sizes of
    its kept documents, root ids of its dropped ones), read from the unit-keyed rounds: one
    file and the row groups of the unit's refs each, not every drop of the run."""
    tables = []
    for st in worker.global_stages:
        t = read_unit_rows(worker.layout.dedup_dir(st.name) / "drops", unit_index, DROPS_SCHEMA.names)
        if t is not None and t.num_rows:
            tables.append(t.cast(DROPS_SCHEMA).append_column("stage", pa.array([st.name] * t.num_rows, pa.string())))
    drops = pa.concat_tables(tables).sort_by("ref") if tables else _EMPTY_DROPS
    resolved = read_unit_rows(worker.layout.root / "dedup" / "resolved", unit_index)
    return drops, (resolved if resolved is not None else _EMPTY_RESOLVED)


_EMPTY_DROPS = DROPS_SCHEMA.append(pa.field("stage", pa.string())).empty_table()
_EMPTY_RESOLVED = pa.schema([("ref", pa.int64()), ("cluster_size", pa.int32()), ("root_id", pa.string())]).empty_table()


def _write_index(worker, unit_index: int, table: pa.Table, refs: np.ndarray, resolved: pa.Table) -> None:
    dedup_index.write_shard(worker.layout.root, unit_index, table, refs, dedup_index.root_ids(resolved, refs),
                            worker.global_stages)


def final_schema(worker) -> pa.Schema:
    internal = {c for st in worker.global_stages for c in st.internal}
    fields = [f for f in worker.schema if f.name not in internal]
    return pa.schema([*fields, pa.field("cluster_size", pa.int32())])


def apply_unit(worker, unit) -> dict:
    lay = worker.layout
    stats_path = lay.unit_stats(unit.unit_id)
    idx = worker.spec.unit_index[unit.unit_id]
    want_index = worker.cfg.dedup.index
    if stats_path.exists():
        if want_index and not dedup_index.shard_path(lay.root, idx).exists():  # a run from before indexes
            table = pq.read_table(lay.staged(unit.unit_id))
            _write_index(worker, idx, table, make_refs(idx, table.num_rows), unit_decisions(worker, idx)[1])
        return json.loads(stats_path.read_text())
    stats = json.loads(lay.staged_stats(unit.unit_id).read_text())
    mine, resolved = unit_decisions(worker, idx)
    schema = final_schema(worker)
    # the global stages' internal columns (signatures: 512 B a document) only for the index
    columns = None if want_index else [f.name for f in schema if f.name != "cluster_size"]
    table = pq.read_table(lay.staged(unit.unit_id), columns=columns)
    refs = make_refs(idx, table.num_rows)
    if want_index:  # before the unit's stats: those mark the unit done
        _write_index(worker, idx, table, refs, resolved)
    drop_refs = mine.column("ref").to_numpy()
    dropped = np.isin(refs, drop_refs)
    counts = ChainCounts()
    # rejects: one row per dropped document, in the order of `mine`
    if dropped.any():
        pos = np.searchsorted(refs, drop_refs)
        order = np.argsort(pos)
        rows = table.take(pa.array(pos[order]))
        m = mine.take(pa.array(order))
        n = rows.num_rows
        cols = {
            "id": rows.column("id").cast(pa.string()), "source": rows.column("source"),
            "offset": rows.column("offset"), "stage": m.column("stage"), "reason": m.column("reason"),
            "detail": m.column("detail"),
            "lang": rows.column("lang") if "lang" in rows.column_names else pa.nulls(n, pa.string()),
            "kept_id": m.column("kept_id"),
            "text": rows.column("text") if worker.cfg.output.rejects_keep_text else pa.nulls(n, pa.large_string()),
        }
        rej = rejects_from_columns(n, cols)  # records_lost: null for dedup drops
        # a duplicate whose kept copy has the *same* id: the input reuses ids, and kept_id says nothing
        same_id = int(pc.sum(pc.equal(cols["id"], cols["kept_id"]).cast(pa.int64())).as_py() or 0)
        for stage_name in set(m.column("stage").to_pylist()):
            counts.add_rejects(stage_name, rej.filter(pc.equal(rej.column("stage"), stage_name)))
    else:
        rej = REJECT_SCHEMA.empty_table()
        same_id = 0
    kept = table.filter(pa.array(~dropped))
    kept_refs = refs[~dropped]
    size = np.ones(len(kept_refs), np.int32)
    sizes = resolved.filter(resolved.column("cluster_size").is_valid())
    if sizes.num_rows:
        sref = sizes.column("ref").to_numpy()
        hit = np.isin(kept_refs, sref)
        if hit.any():
            order = np.argsort(sref)
            size[hit] = sizes.column("cluster_size").to_numpy()[order][np.searchsorted(sref[order], kept_refs[hit])]
    kept = kept.select([f.name for f in schema if f.name != "cluster_size"]).append_column("cluster_size", pa.array(size, pa.int32()))
    with ShardWriter(lay.output(unit.unit_id), schema, worker.cfg.output.format, worker.cfg.output.compression) as w:
        w.write(kept)
    with ShardWriter(lay.dedup_rejects(unit.unit_id), REJECT_SCHEMA, "parquet", worker.cfg.output.compression) as w:
        w.write(rej)
    # final stats: the map phase's counts, minus what the global stages dropped
    counts.add_kept(kept)
    stats["kept"] = kept.num_rows
    stats["duplicate_ids_kept_same_id"] = same_id
    stats["kept_by_lang"] = dict(sorted(counts.kept.items()))
    for (stage_name, reason, lang), n in sorted(counts.dropped.items()):
        stats["dropped"].append({"stage": stage_name, "reason": reason, "lang": lang, "n": n})
    before = table.num_rows
    for st in worker.global_stages:
        gone = sum(n for (s, _, _), n in counts.dropped.items() if s == st.name)
        stats["stage_in"][st.name] = before
        stats["stage_out"][st.name] = before - gone
        before -= gone
    from babelmill.pipeline.runner.worker import peak_rss_mb

    stats["apply_worker_peak_rss_mb"] = peak_rss_mb()
    dropped_total = sum(d["n"] for d in stats["dropped"])
    if stats["kept"] + dropped_total != stats["docs_in"]:
        raise RuntimeError(f"unit {unit.unit_id}: accounting mismatch after dedup")
    atomic_write_json(stats_path, stats)
    return stats
