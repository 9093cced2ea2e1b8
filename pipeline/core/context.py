"""The run context: what every stage and every later step of one run agrees on.

Before this existed each step chose the language registry on its own (the decontaminate stage
never saw a run's `languages:`, balancing ignored $BABELMILL_LANGUAGES), so one run could
classify with one registry and balance with another. Now the registry, and the run's layout,
are chosen once, on the driver, from the config (`RunContext.from_config`):

- the registry is the config's `languages:`, else $BABELMILL_LANGUAGES, else
  configs/languages.yaml (babelmill.languages.registry_path), resolved to an absolute path there,
  so a worker with another working directory or environment reads the same file;
- the runner hands the context to every stage's `setup(ctx)` (Stage.ensure_setup), on the
  driver (preflight, global phases) and on every worker (it travels inside RunSpec as plain
  data, and inside a pickled stage);
- the manifest records it under `registry` (path, fingerprint of the file, language codes);
  later steps (balance, data card) rebuild it from there (`RunContext.from_manifest`), not from
  the environment of the process that runs them.

It is a small frozen dataclass of plain values, so it pickles to Ray and Beam workers and
compares by value; the registry itself is loaded lazily where it is used (load_registry caches
it per file version) and checked against the fingerprint, so a registry edited while a run is
going fails loudly instead of mixing two language sets in one output.

A stage's own `registry` parameter, when set, still wins over the run's (`registry_for`).
Stages used on their own (tests, benchmarks: `stage.ensure_setup()` or `stage(batch)`) get
`RunContext.default()`: the registry load_registry() would pick, and no run directory.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from babelmill.languages import (
    LanguageRegistry,
    load_registry,
    registry_fingerprint,
    registry_path,
    use_registry,
)
from babelmill.yamlconf import ConfigError

if TYPE_CHECKING:
    from babelmill.pipeline.config import PipelineConfig
    from babelmill.pipeline.runner.layout import RunLayout

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunContext:
    #: absolute path of the language registry the run uses
    registry_path: str
    #: registry_fingerprint() of that file when the context was made
    registry_fingerprint: str
    #: the registry's language codes, in registry order
    languages: tuple[str, ...]
    #: the registry as the config named it (`languages:`), None when the environment or the
    #: default chose it: a stage `registry` parameter equal to it means the run's registry
    registry_source: str | None = None
    #: the run directory (None for a stage used on its own)
    run_dir: str | None = None
    #: output.format of the run (the layout's shard extension)
    output_format: str = "parquet"

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def for_registry(cls, path: str | Path | None = None, run_dir: str | Path | None = None,
                     output_format: str = "parquet") -> RunContext:
        """The context for the registry load_registry(`path`) would read."""
        p = registry_path(path)
        reg = load_registry(p)
        return cls(registry_path=str(p), registry_fingerprint=registry_fingerprint(p), languages=tuple(reg.codes),
                   registry_source=str(path) if path is not None else None,
                   run_dir=str(run_dir) if run_dir is not None else None, output_format=output_format)

    @classmethod
    def from_config(cls, cfg: PipelineConfig) -> RunContext:
        """Built once per run, on the driver: the config's `languages:` (else $BABELMILL_LANGUAGES,
        else the default registry) and its output directory."""
        return cls.for_registry(cfg.languages, Path(cfg.output.dir), cfg.output.format)

    @classmethod
    def default(cls) -> RunContext:
        """For a stage used outside a run: $BABELMILL_LANGUAGES, else the default registry."""
        return cls.for_registry(None)

    @classmethod
    def from_manifest(cls, manifest: dict, run_dir: str | Path | None = None) -> RunContext:
        """The context a finished run recorded in its manifest (`registry`), for the steps that
        come after it (balance, data card).

        A manifest written before runs recorded it: the config's `languages:`, else
        $BABELMILL_LANGUAGES, else the default, as everywhere else. A recorded registry file that
        is gone (the run directory was moved to another machine) or changed since: the registry
        the config names now, with a warning, as these steps did before the record existed."""
        cfg = manifest.get("config") or {}
        fmt = (cfg.get("output") or {}).get("format", "parquet")
        source = cfg.get("languages")
        rec = manifest.get("registry")
        if not rec:
            return cls.for_registry(source, run_dir, fmt)
        recorded = Path(rec["path"])
        if recorded.is_file():
            ctx = cls.for_registry(recorded, run_dir, fmt)
            ctx = cls(**{**asdict(ctx), "registry_source": source})
        else:
            ctx = cls.for_registry(source, run_dir, fmt)
        if ctx.registry_fingerprint != rec.get("fingerprint"):
            log.warning("the language registry this run used (%s, fingerprint %s) %s; using %s (fingerprint %s)",
                        rec["path"], rec.get("fingerprint"),
                        "changed since" if recorded.is_file() else "is not there any more",
                        ctx.registry_path, ctx.registry_fingerprint)
        return ctx

    # -- plain data (RunSpec, balance tasks) ------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["languages"] = list(self.languages)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunContext:
        return cls(**{**d, "languages": tuple(d["languages"])})

    def describe(self) -> dict[str, Any]:
        """What the manifest records under `registry`."""
        return {"path": self.registry_path, "fingerprint": self.registry_fingerprint,
                "source": self.registry_source, "languages": list(self.languages)}

    # -- use --------------------------------------------------------------------------------------
    @property
    def registry(self) -> LanguageRegistry:
        """The run's registry (cached by load_registry); a file changed since the context was made
        is an error: one run must not use two registries."""
        fp = registry_fingerprint(self.registry_path)
        if fp != self.registry_fingerprint:
            raise ConfigError(f"{self.registry_path}: the language registry changed while the run was going "
                              f"(fingerprint {self.registry_fingerprint} -> {fp}); run again")
        return load_registry(self.registry_path)

    def uses_run_registry(self, path: str | Path | None) -> bool:
        """Whether a stage's `registry` parameter means the run's own registry: unset, the name
        the config gave (the pipeline config copies `languages:` into stages), or the same file."""
        if path is None or str(path) == self.registry_source:
            return True
        try:
            return str(registry_path(path)) == self.registry_path
        except ConfigError:
            return False

    def registry_path_for(self, path: str | Path | None) -> str:
        """The file behind a stage's `registry` parameter (the run's when it means the run's)."""
        return self.registry_path if self.uses_run_registry(path) else str(registry_path(path))

    def registry_for(self, path: str | Path | None) -> LanguageRegistry:
        """A stage's registry: its own `registry` parameter when the user set another one, else
        the run's."""
        return self.registry if self.uses_run_registry(path) else load_registry(path)

    def activate(self, path: str | Path | None = None):
        """Context manager: load_registry() without a path means this run's registry (or the
        stage's own, `path`) inside the block (babelmill.languages.use_registry)."""
        return use_registry(self.registry_path_for(path))

    @property
    def layout(self) -> RunLayout:
        from babelmill.pipeline.runner.layout import RunLayout

        if self.run_dir is None:
            raise ValueError("this run context has no run directory (a stage used outside a run)")
        return RunLayout(Path(self.run_dir), self.output_format)
