"""Generate the configuration reference (docs/config.md) from the config schemas themselves,
so the documentation cannot drift from what the validator accepts (a test checks it is current).

    python -m babelmill.configref [--output docs/config.md]
"""

from __future__ import annotations

import argparse
import sys
import typing
from pathlib import Path

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from babelmill.paths import repo_root

# docs/ belongs to a checkout, not to the package: installed from a wheel there is none (None),
# and writing the reference then needs an explicit --output.
_ROOT = repo_root()
DOC = _ROOT / "docs" / "config.md" if _ROOT else None


def _type_name(ann) -> str:
    origin = typing.get_origin(ann)
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in typing.get_args(ann))
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return " or ".join(_type_name(a) for a in typing.get_args(ann) if a is not type(None)) + " (optional)"
    if origin in (list, tuple):
        args = typing.get_args(ann)
        return f"list of {_type_name(args[0])}" if args else "list"
    if origin is dict:
        args = typing.get_args(ann)
        return f"mapping {_type_name(args[0])} → {_type_name(args[1])}" if args else "mapping"
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return f"[{ann.__name__}](#{ann.__name__.lower()})"
    return getattr(ann, "__name__", str(ann))


def _default(field) -> str:
    if field.default_factory is not None:
        try:
            v = field.default_factory()
        except TypeError:
            return "(computed)"
        if isinstance(v, BaseModel):
            return "(defaults)"
        return f"`{v!r}`"
    if field.default is PydanticUndefined:
        return "**required**"
    return f"`{field.default!r}`"


def _table(model: type[BaseModel]) -> list[str]:
    lines = ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    for name, f in model.model_fields.items():
        desc = (f.description or "").replace("|", "\\|")
        lines.append(f"| `{name}` | {_type_name(f.annotation)} | {_default(f)} | {desc} |")
    return lines


def _nested(model: type[BaseModel], seen: set) -> list[type[BaseModel]]:
    out = []
    for f in model.model_fields.values():
        for ann in [f.annotation, *typing.get_args(f.annotation)]:
            if isinstance(ann, type) and issubclass(ann, BaseModel) and ann not in seen:
                seen.add(ann)
                out += [ann, *_nested(ann, seen)]
    return out


def render() -> str:
    from babelmill.pipeline.config import PipelineConfig
    from babelmill.pipeline.core.stage import get_stage_class, stage_names

    parts = ["# Configuration reference", "",
             "Generated from the pydantic schemas by `python -m babelmill.configref` — do not edit by hand.",
             "Unknown keys are errors everywhere; errors name the file, line and key.", "",
             "## Pipeline config (`babelmill run CONFIG`)", "", "### PipelineConfig", "", *_table(PipelineConfig), ""]
    seen: set = {PipelineConfig}
    for m in _nested(PipelineConfig, seen):
        doc = " ".join((m.__doc__ or "").strip().split("\n\n")[0].split())
        parts += [f"### {m.__name__}", "", *([doc, ""] if doc else []), *_table(m), ""]
    parts += ["## Stages (`stages: [{name, params}]`)", ""]
    for name in stage_names():
        cls = get_stage_class(name)
        doc = " ".join((cls.__doc__ or "").strip().split("\n\n")[0].split())
        parts += [f"### `{name}`", "", doc, "", f"Rejects reasons: {', '.join(f'`{r}`' for r in cls.reasons) or '–'}.", ""]
        if cls.Params.model_fields:
            parts += _table(cls.Params) + [""]
    from babelmill.pretrain.config import PretrainConfig

    parts += ["## Pretraining config (`babelmill pretrain train --config CFG`, configs/pretrain/*.yaml)", "",
              "### PretrainConfig", "", *_table(PretrainConfig), ""]
    for m in _nested(PretrainConfig, {PretrainConfig}):
        doc = " ".join((m.__doc__ or "").strip().split("\n\n")[0].split())
        parts += [f"### {m.__name__}", "", *([doc, ""] if doc else []), *_table(m), ""]
    return "\n".join(parts).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--output", default=None, help="default: docs/config.md of the checkout")
    args = ap.parse_args(argv)
    if args.output is None and DOC is None:
        ap.error("babelmill is not running from a checkout (installed as a package), so there is no "
                 "docs/config.md to regenerate: pass --output FILE")
    args.output = args.output or str(DOC)
    Path(args.output).write_text(render(), encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
