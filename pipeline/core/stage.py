"""The stage contract: a pure, batch-wise function over Arrow record batches.

A stage declares the columns it reads (`requires`) and the columns it adds (`produces`),
validates its parameters with a pydantic model (`Params`, unknown keys are errors), may load
heavy state once per worker in `setup(ctx)` (a model, a word list), and transforms one
`pyarrow.RecordBatch` at a time in `process()`.

`setup` is handed the run's RunContext (pipeline/core/context.py): the language registry and
run directory the runner chose once for the whole run. A stage never picks a registry itself:
`ctx.registry_for(self.params.registry)` is its own `registry` parameter when the user set one,
else the run's. A stage used on its own (`stage(batch)`, `stage.ensure_setup()`) is set up with
RunContext.default(). A user stage whose `setup(self)` takes no argument (written before the
run context) still works; it finds the context in `self.context`.

`process()` returns a batch with the same rows, in the same order, with the `produces` columns
added; rows the stage wants to drop carry a non-null `drop_reason` (and a `drop_detail`).
Stages never remove rows themselves and never do I/O: engines (in-process, Ray, Beam) call
the very same object, so there is one implementation of each stage's logic.
"""

from __future__ import annotations

import inspect
from functools import cache
from typing import Any, ClassVar

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, ValidationError

from babelmill.errors import BabelmillError
from babelmill.pipeline.core.context import RunContext
from babelmill.pipeline.core.schema import DROP_DETAIL, DROP_REASON


class StageError(BabelmillError, ValueError):
    """A stage was misconfigured or fed a batch that lacks a required column."""


class StageParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Stage:
    #: Name used in configs and in rejects (`stage` column).
    name: ClassVar[str] = ""
    #: Columns the stage reads.
    requires: ClassVar[tuple[str, ...]] = ("id", "text")
    #: Columns the stage adds (name -> Arrow type).
    produces: ClassVar[dict[str, pa.DataType]] = {}
    #: Reject reasons this stage can emit (documentation + report ordering).
    reasons: ClassVar[tuple[str, ...]] = ()
    Params: ClassVar[type[StageParams]] = StageParams

    def __init__(self, **params: Any) -> None:
        try:
            self.params = self.Params(**params)
        except ValidationError as e:
            problems = "; ".join(
                f"{'.'.join(map(str, err['loc']))}: {'unknown parameter' if err['type'] == 'extra_forbidden' else err['msg']}"
                for err in e.errors()
            )
            raise StageError(f"stage '{self.name}': invalid parameters: {problems}") from None
        self._ready = False
        self._ctx: RunContext | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def setup(self, ctx: RunContext) -> None:
        """Load per-worker state (models, tables) for the run `ctx`. Called once before the
        first batch."""

    @property
    def context(self) -> RunContext:
        """The run context this stage is (or will be) set up with."""
        if self._ctx is None:
            self._ctx = RunContext.default()
        return self._ctx

    def bind(self, ctx: RunContext) -> Stage:
        """Use `ctx` from now on (the runner binds every stage before preflight); a stage set
        up with another context is set up again on next use."""
        if ctx != self._ctx:
            self._ctx = ctx
            self._ready = False
        return self

    def ensure_setup(self, ctx: RunContext | None = None) -> None:
        if ctx is not None:
            self.bind(ctx)
        if not self._ready:
            if type(self).setup is Stage.setup:
                pass  # nothing to set up: no registry needed either
            elif _setup_takes_context(type(self)):
                self.setup(self.context)
            else:  # a user stage written against the old contract, setup(self)
                self.setup()
            self._ready = True

    # -- the function ------------------------------------------------------------------------
    def process(self, batch: pa.RecordBatch) -> pa.RecordBatch:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        missing = [c for c in self.requires if c not in batch.schema.names]
        if missing:
            raise StageError(f"stage '{self.name}' needs column(s) {missing}; batch has {batch.schema.names}")
        self.ensure_setup()
        out = self.process(batch)
        if out.num_rows != batch.num_rows:
            raise StageError(f"stage '{self.name}' changed the row count ({batch.num_rows} -> {out.num_rows})")
        return out

    # -- state for engines that pickle stages to workers --------------------------------------
    def __getstate__(self) -> dict:
        # Only parameters and the run context travel; per-worker state is rebuilt by setup()
        # on the worker.
        return {"params": self.params.model_dump(), "context": self._ctx.to_dict() if self._ctx else None}

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state["params"])
        if state.get("context"):
            self._ctx = RunContext.from_dict(state["context"])

    def describe(self) -> dict:
        return {
            "name": self.name,
            "requires": list(self.requires),
            "produces": {k: str(v) for k, v in self.produces.items()},
            "reasons": list(self.reasons),
            "params": self.params.model_dump(mode="json"),
        }


@cache
def _setup_takes_context(cls: type) -> bool:
    """Whether `cls.setup` accepts the run context (one positional argument after self)."""
    params = list(inspect.signature(cls.setup).parameters.values())[1:]
    return any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params) or any(
        p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD) for p in params)


def with_drops(batch: pa.RecordBatch, reason: pa.Array, detail: pa.Array | None = None) -> pa.RecordBatch:
    """Attach (or merge into existing) drop_reason/drop_detail columns; an existing non-null
    reason wins, so the first stage to drop a row is the one that is reported."""
    n = batch.num_rows
    if detail is None:
        detail = pa.nulls(n, pa.string())
    names = batch.schema.names
    if DROP_REASON in names:
        import pyarrow.compute as pc

        old_r = batch.column(DROP_REASON)
        old_d = batch.column(DROP_DETAIL)
        keep_old = pc.is_valid(old_r)
        reason = pc.if_else(keep_old, old_r, reason)
        detail = pc.if_else(keep_old, old_d, detail)
        batch = batch.drop_columns([DROP_REASON, DROP_DETAIL])
    return batch.append_column(DROP_REASON, reason.cast(pa.string())).append_column(
        DROP_DETAIL, detail.cast(pa.string())
    )


_REGISTRY: dict[str, type[Stage]] = {}


def register_stage(cls: type[Stage]) -> type[Stage]:
    if not cls.name:
        raise StageError(f"{cls.__name__} has no name")
    _REGISTRY[cls.name] = cls
    return cls


def _load_builtin_stages() -> None:
    # Importing the stages package registers every built-in stage.
    import babelmill.pipeline.stages  # noqa: F401


def get_stage_class(name: str) -> type[Stage]:
    """A built-in stage by name, or a user stage given as "package.module:ClassName"."""
    if ":" in name:
        import importlib

        mod_name, _, cls_name = name.partition(":")
        try:
            cls = getattr(importlib.import_module(mod_name), cls_name)
        except (ImportError, AttributeError) as e:
            raise StageError(f"cannot load stage '{name}': {e}") from None
        if not (isinstance(cls, type) and issubclass(cls, Stage)):
            raise StageError(f"'{name}' is not a babelmill Stage subclass")
        return cls
    _load_builtin_stages()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise StageError(f"unknown stage '{name}'; known stages: {sorted(_REGISTRY)}") from None


def stage_names() -> list[str]:
    _load_builtin_stages()
    return sorted(_REGISTRY)
