"""Process one work unit: read -> stage chain -> kept shard + rejects shard + unit stats.

`UnitWorker` is what every engine runs (a plain loop, a Ray Data actor, a Beam DoFn): it is
built from a picklable `RunSpec`, sets its stages up once per worker with the run's context
(the registry and layout the driver chose, carried in the spec), and handles units one at a
time. A unit's files are renamed into place before its stats file, which is the
completion marker; a unit whose stats file exists is never processed again.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from babelmill.pipeline.config import PipelineConfig, build_stages
from babelmill.pipeline.core.chain import ChainCounts, apply_chain
from babelmill.pipeline.core.context import RunContext
from babelmill.pipeline.core.global_stage import is_global
from babelmill.pipeline.core.schema import DOC_COLUMNS, REJECT_SCHEMA
from babelmill.pipeline.io.readers import ReadOptions, WorkUnit, read_unit
from babelmill.pipeline.io.writers import ShardWriter, atomic_write_json


@dataclass(frozen=True)
class RunSpec:
    """Everything a worker needs, as plain data (it crosses process boundaries)."""

    config: dict
    run_dir: str
    config_fingerprint: str
    #: "map" (read + stages) or "apply" (apply global-stage drops to staged shards)
    phase: str = "map"
    #: unit id -> position in the run's unit list (document refs for global stages)
    unit_index: dict | None = None
    #: the run's RunContext as plain data (RunContext.to_dict), made once on the driver
    context: dict | None = None

    @property
    def cfg(self) -> PipelineConfig:
        return PipelineConfig.model_validate(self.config)

    @property
    def ctx(self) -> RunContext:
        """The driver's run context; a spec made without one (by hand) gets the config's."""
        if self.context is not None:
            return RunContext.from_dict(self.context)
        cfg = self.cfg
        return RunContext.for_registry(cfg.languages, self.run_dir, cfg.output.format)

    def to_dict(self) -> dict:
        return asdict(self)


def read_options(cfg: PipelineConfig) -> ReadOptions:
    i = cfg.input
    return ReadOptions(
        format=i.format,
        text_field=i.text_field,
        id_field=i.id_field,
        extra_fields=tuple(i.extra_fields),
        batch_size=i.batch_size,
        max_doc_bytes=i.max_doc_bytes,
        split_bytes=int(i.split_mb * 2**20),
        strict=cfg.strict,
        symlinks=i.symlinks,
    )


def output_schema(cfg: PipelineConfig, stages) -> pa.Schema:
    """Declared columns: the document columns, the carried fields, then each stage's outputs."""
    fields = [pa.field(n, t) for n, t in DOC_COLUMNS.items()]
    fields += [pa.field(n, pa.string()) for n in cfg.input.extra_fields if n not in DOC_COLUMNS]
    seen = {f.name for f in fields}
    for st in stages:
        for n, t in st.produces.items():
            if n in seen:
                fields = [pa.field(n, t) if f.name == n else f for f in fields]
            else:
                fields.append(pa.field(n, t))
                seen.add(n)
    return pa.schema(fields)


def peak_rss_mb() -> float:
    """Peak resident memory of this worker process so far (Linux reports KiB)."""
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def duplicate_ids(id_columns: list) -> int:
    """Documents of one unit whose id an earlier document of the same unit already had.

    Ids should be unique: rejects name the surviving copy of a duplicate by `kept_id`, and
    a reused id makes that (and any join back to the source) ambiguous. Counting within a
    unit costs one pass over a column the worker already holds; across units it would need
    a shuffle by id (see the manifest's `duplicate_ids` for what the dedup phase adds).
    """
    arrays = [c for c in id_columns if len(c)]
    if not arrays:
        return 0
    col = pa.chunked_array(arrays)
    valid = len(col) - col.null_count
    return int(valid - pc.count_distinct(col, mode="only_valid").as_py())


class UnitWorker:
    def __init__(self, spec: RunSpec | dict):
        self.spec = spec if isinstance(spec, RunSpec) else RunSpec(**spec)
        self.cfg = self.spec.cfg
        self.ctx = self.spec.ctx
        self.layout = self.ctx.layout
        self.opts = read_options(self.cfg)
        self.stages = build_stages(self.cfg)
        self.schema = output_schema(self.cfg, self.stages)
        self.global_stages = [st for st in self.stages if is_global(st)]
        self._ready = False

    def setup(self) -> None:
        if not self._ready:
            for st in self.stages:
                st.ensure_setup(self.ctx)
            self._ready = True

    def stats_path(self, unit_id: str) -> Path:
        if self.spec.phase == "map" and self.global_stages:
            return self.layout.staged_stats(unit_id)
        return self.layout.unit_stats(unit_id)

    def process(self, unit: WorkUnit | dict) -> dict:
        unit = unit if isinstance(unit, WorkUnit) else WorkUnit(**unit)
        if self.spec.phase == "apply":
            from babelmill.pipeline.runner.apply import apply_unit

            return apply_unit(self, unit)
        return self.process_map(unit)

    def process_map(self, unit: WorkUnit) -> dict:
        stats_path = self.stats_path(unit.unit_id)
        if stats_path.exists():  # done by an earlier (possibly killed) run
            return json.loads(stats_path.read_text())
        self.setup()
        t0 = time.perf_counter()
        counts = ChainCounts()
        docs_in = 0
        records_lost = 0
        ids: list = []  # the unit's document ids (Arrow arrays), to count ids used twice
        keep_text = self.cfg.output.rejects_keep_text
        out_path = self.layout.staged(unit.unit_id) if self.global_stages else self.layout.output(unit.unit_id)
        out_fmt = "parquet" if self.global_stages else self.cfg.output.format
        # staged shards are intermediate (read back by the global phases): a fast codec
        out_codec = "lz4" if self.global_stages else self.cfg.output.compression
        # ... and no dictionary encoding for hash columns (random values: it only costs time)
        hashed = {c for st in self.global_stages for c in st.internal}
        dict_cols = [f.name for f in self.schema if f.name not in hashed] if hashed else True
        out = ShardWriter(out_path, self.schema, out_fmt, out_codec, use_dictionary=dict_cols)
        rej = ShardWriter(self.layout.rejects(unit.unit_id), REJECT_SCHEMA, "parquet", self.cfg.output.compression)
        try:
            for docs, read_rejects in read_unit(unit, self.opts):
                docs_in += docs.num_rows + read_rejects.num_rows
                if read_rejects.num_rows:
                    counts.add_rejects("read", read_rejects)
                    rej.write(read_rejects)
                    # only readers know of records beyond a reject row (stage rejects are null)
                    records_lost += pc.sum(read_rejects.column("records_lost")).as_py() or 0
                ids.append(docs.column("id"))
                kept, rejects = apply_chain(self.stages, docs, counts, keep_text)
                for r in rejects:
                    rej.write(r)
                if kept.num_rows:
                    counts.add_kept(kept)
                    out.write(kept)
        except BaseException:
            out.abort()
            rej.abort()
            raise
        out.close()
        rej.close()
        stats = {
            "unit_id": unit.unit_id,
            "source": unit.source,
            "fingerprint": unit.fingerprint(),
            "config_fingerprint": self.spec.config_fingerprint,
            "docs_in": docs_in,
            "kept": sum(counts.kept.values()),
            "kept_by_lang": dict(sorted(counts.kept.items())),
            "dropped": [
                {"stage": s, "reason": r, "lang": lang, "n": n} for (s, r, lang), n in sorted(counts.dropped.items())
            ],
            "stage_in": dict(counts.stage_in),
            "stage_out": dict(counts.stage_out),
            "records_lost": int(records_lost),
            "duplicate_ids": duplicate_ids(ids),
            "bytes": unit.size,
            "worker": f"{socket.gethostname()}:{os.getpid()}",
            "worker_peak_rss_mb": peak_rss_mb(),
            "seconds": round(time.perf_counter() - t0, 4),
        }
        dropped = sum(d["n"] for d in stats["dropped"])
        if stats["kept"] + dropped != docs_in:  # an accounting bug must never pass silently
            raise RuntimeError(f"unit {unit.unit_id}: {docs_in} in != {stats['kept']} kept + {dropped} dropped")
        atomic_write_json(stats_path, stats)
        return stats
