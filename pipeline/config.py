"""The pipeline run configuration (YAML), validated with pydantic.

Unknown keys are errors everywhere (a misspelt option must never be silently ignored), and
every error names the file, the line and the key.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from babelmill.pipeline.balance.config import BalanceConfig
from babelmill.yamlconf import ConfigError, apply_overrides, format_validation_error, load_model, read_yaml


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InputConfig(_Strict):
    """Where documents come from and how records map to documents."""

    paths: list[str] = Field(min_length=1, description="files, directories or glob patterns")
    format: Literal["auto", "jsonl", "parquet", "warc", "text"] = Field("auto", description="auto: by file extension")
    text_field: str = Field("text", description="field holding the document text")
    id_field: str | None = Field("id", description="field holding the document id (null: derived from file and line/row)")
    extra_fields: list[str] = Field(default_factory=list, description="fields carried through as columns")
    batch_size: int = Field(1000, gt=0, description="documents per record batch handed to the stages")
    max_doc_bytes: int = Field(10_000_000, gt=0, description="larger documents are quarantined as doc_too_large")
    split_mb: float = Field(64.0, gt=0, description="plain JSONL/Parquet files above this size become several work units")
    symlinks: Literal["refuse", "warn", "follow"] = Field(
        "refuse", description="symlinks leading outside an input folder: refuse (not read; listed in the manifest's "
        "inputs_skipped, an error with strict), warn (read, with a warning) or follow (read)")

    @field_validator("paths")
    @classmethod
    def _non_empty(cls, v: list[str]) -> list[str]:
        if any(not p.strip() for p in v):
            raise ValueError("empty path")
        return v


class OutputConfig(_Strict):
    """Where a run writes output/, rejects/, manifest.json (see pipeline/runner/layout.py)."""

    dir: str = Field(description="the run directory")
    format: Literal["parquet", "jsonl"] = Field("parquet", description="format of output/ shards")
    compression: Literal["zstd", "snappy", "gzip", "none"] = Field("zstd", description="Parquet compression")
    rejects_keep_text: bool = Field(True, description="store the dropped document's text in rejects")


class StageConfig(_Strict):
    """One stage: a built-in name (see Stages below) or `package.module:Class`; `- name` is shorthand."""

    name: str = Field(description="stage name or package.module:Class")
    params: dict[str, Any] = Field(default_factory=dict, description="the stage's parameters (validated by its Params)")


class RayConfig(_Strict):
    """Ray Data engine settings (the default engine)."""

    address: str | None = Field(None, description="cluster address; default: $RAY_ADDRESS, else a local Ray")
    num_cpus: int | None = Field(None, description="CPUs for a local Ray (default: all)")
    concurrency: int | None = Field(None, description="parallel workers (default: CPUs available)")
    dashboard: bool = Field(False, description="start Ray's dashboard (local Ray only)")
    dashboard_host: str = Field("127.0.0.1", description="dashboard bind address (loopback unless you change it)")


class BeamConfig(_Strict):
    """Apache Beam engine settings."""

    runner: str = Field("DirectRunner", description="any Beam runner; DirectRunner works offline")
    options: list[str] = Field(default_factory=list, description="extra pipeline options, e.g. --flink_master=...")
    direct_num_workers: int = Field(1, description="DirectRunner parallelism")


class EngineConfig(_Strict):
    """Which engine runs the work units; `--engine` overrides `name`. Never changes the output."""

    name: Literal["local", "ray", "beam"] = Field("ray", description="local (in-process), ray or beam")
    ray: RayConfig = Field(default_factory=RayConfig, description="see RayConfig")
    beam: BeamConfig = Field(default_factory=BeamConfig, description="see BeamConfig")


class DedupConfig(_Strict):
    """The run's dedup index, and deduplication against earlier runs (global stages only)."""

    index: bool = Field(False, description="write RUN/dedup/index/ (every document's dedup keys) so that later "
                                           "runs can deduplicate against this one; a finished run can be indexed "
                                           "later with `babelmill dedup-index RUN_DIR`")
    against: list[str] = Field(default_factory=list, description="output directories of earlier dedup runs: new "
                                                                 "documents that duplicate one of theirs are dropped, "
                                                                 "theirs are never read again or dropped")


class PipelineConfig(_Strict):
    """A pipeline run: inputs, stages, output, engine and optional balancing."""

    name: str = Field("run", description="shown in progress bars, tables and the manifest")
    languages: str | None = Field(None, description="language registry YAML (default: $BABELMILL_LANGUAGES, else "
                                                    "configs/languages.yaml); used by every stage and by balancing, "
                                                    "recorded in the manifest")
    input: InputConfig = Field(description="see InputConfig")
    output: OutputConfig = Field(description="see OutputConfig")
    stages: list[StageConfig] = Field(default_factory=list, description="in order; dedup stages last")
    engine: EngineConfig = Field(default_factory=EngineConfig, description="see EngineConfig")
    strict: bool = Field(False, description="fail on the first bad input record instead of quarantining it")
    balance: BalanceConfig | None = Field(None, description="balance the kept corpus across languages after curation")
    dedup: DedupConfig = Field(default_factory=DedupConfig, description="see DedupConfig")

    @field_validator("stages", mode="before")
    @classmethod
    def _shorthand(cls, v: Any) -> Any:
        # `- langid` is shorthand for `- {name: langid}`
        if isinstance(v, list):
            return [{"name": s} if isinstance(s, str) else s for s in v]
        return v

    def fingerprint(self) -> str:
        """Hash of everything that changes the output (not the engine, which must not)."""
        d = self.model_dump(mode="json", exclude={"engine", "balance"})  # balance has its own
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def build_stages(cfg: PipelineConfig, source: str | Path = "<config>", root=None):
    """Instantiate the configured stages; parameter errors name the stage, file and line."""
    from babelmill.pipeline.core.stage import StageError, get_stage_class
    from babelmill.yamlconf import _line_of

    stages = []
    seen: dict[str, int] = {}
    for i, sc in enumerate(cfg.stages):
        line = _line_of(root, ("stages", i)) if root is not None else None
        where = f"{source}:{line}" if line else str(source)
        try:
            cls = get_stage_class(sc.name)
            # A stage's name keys its counts, its rejects' `stage` and its dedup/<stage>/ dir:
            # the same stage twice would merge or overwrite them.
            if cls.name in seen:
                raise ConfigError(f"{where}: stages.{i} ({sc.name}): stage '{cls.name}' is already "
                                  f"stages.{seen[cls.name]}; a stage may appear only once")
            seen[cls.name] = i
            params = dict(sc.params)
            if cfg.languages and "registry" in cls.Params.model_fields and "registry" not in params:
                params["registry"] = cfg.languages
            stages.append(cls(**params))
        except StageError as e:
            raise ConfigError(f"{where}: stages.{i} ({sc.name}): {e}") from None
    return stages


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> PipelineConfig:
    """Read and validate a pipeline config; `overrides` are dotted keys (e.g. "output.dir")."""
    data, root = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a pipeline config must be a mapping")
    apply_overrides(data, overrides)
    cfg = load_model(PipelineConfig, path, data, root)
    base = Path(path).resolve().parent
    # Relative input/registry paths are relative to the working directory, like any CLI;
    # we only check early that the registry exists so the error names the config.
    if cfg.languages and not Path(cfg.languages).exists() and not (base / cfg.languages).exists():
        raise ConfigError(f"{path}: languages: file not found: {cfg.languages}")
    build_stages(cfg, path, root)  # validate stage names and parameters now, not on a worker
    return cfg


__all__ = [
    "BeamConfig",
    "ConfigError",
    "DedupConfig",
    "EngineConfig",
    "InputConfig",
    "OutputConfig",
    "PipelineConfig",
    "RayConfig",
    "StageConfig",
    "build_stages",
    "format_validation_error",
    "load_config",
]
