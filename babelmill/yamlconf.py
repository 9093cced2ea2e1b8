"""Load YAML into pydantic models with errors that name the file, the key and the line.

Every config file of the project (pipeline runs, the language registry, model presets) goes
through here, so a typo such as `stages[0].parms` is reported as
`configs/demo.yaml:12: stages.0.parms: unknown key` instead of a stack trace.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from babelmill.errors import BabelmillError

M = TypeVar("M", bound=BaseModel)


class ConfigError(BabelmillError, ValueError):
    """A configuration file is missing, unparsable or does not match its schema."""


def _line_of(node: yaml.Node | None, loc: tuple) -> int | None:
    """Follow a pydantic error location through the YAML node tree; return a 1-based line."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            nxt = None
            for k, v in node.value:
                if k.value == str(part):
                    nxt, line = v, k.start_mark.line + 1
                    break
            if nxt is None:
                return line
            node = nxt
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


_FRIENDLY = {
    "extra_forbidden": "unknown key",
    "missing": "required key is missing",
}


def format_validation_error(err: ValidationError, path: str | Path, root: yaml.Node | None) -> str:
    lines = []
    for e in err.errors():
        loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        where = ".".join(str(p) for p in loc) or "(top level)"
        line = _line_of(root, loc)
        msg = _FRIENDLY.get(e["type"], e["msg"])
        prefix = f"{path}:{line}" if line else f"{path}"
        lines.append(f"{prefix}: {where}: {msg}")
    return "\n".join(lines)


def read_yaml(path: str | Path) -> tuple[Any, yaml.Node | None]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    text = path.read_text(encoding="utf-8")
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"{where}: invalid YAML: {getattr(e, 'problem', e)}") from None
    return data, root


def read_mapping(path: str | Path, what: str) -> dict:
    """A YAML file that must hold a mapping (an empty file: {}), else a ConfigError naming it."""
    d = read_yaml(path)[0] or {}
    if not isinstance(d, dict):
        raise ConfigError(f"{path}: expected a mapping of {what}")
    return d


def load_model(model: type[M], path: str | Path, data: Any = None, root: yaml.Node | None = None) -> M:
    """Validate the YAML file at `path` (or already-read `data`) against `model`."""
    if data is None:
        data, root = read_yaml(path)
    if data is None:
        data = {}
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, path, root)) from None


def apply_overrides(data: dict, overrides: dict[str, Any] | None) -> dict:
    """Set dotted keys (`train.lr`, `stages.0.params.drop`) in a config's raw mapping, in place,
    before validation, so that an override is checked like the file's own value. A list index
    must exist; a missing mapping level is created."""
    for key, value in (overrides or {}).items():
        node: Any = data
        *parents, leaf = key.split(".")
        for i, part in enumerate(parents):
            if isinstance(node, list):
                node = node[_index(node, part, key, parents[: i + 1])]
                continue
            nxt = node.setdefault(part, {})
            if nxt is None:
                nxt = node[part] = {}
            if not isinstance(nxt, dict | list):
                raise ConfigError(f"--set {key}: {'.'.join(parents[: i + 1])} is a value, not a mapping")
            node = nxt
        if isinstance(node, list):
            node[_index(node, leaf, key, [*parents, leaf])] = value
        else:
            node[leaf] = value
    return data


def _index(node: list, part: str, key: str, upto: list[str]) -> int:
    if not part.isdigit() or int(part) >= len(node):
        raise ConfigError(f"--set {key}: {'.'.join(upto)}: no such list item (the list has {len(node)})")
    return int(part)


def parse_set(items: list[str] | None) -> dict[str, Any]:
    """`--set key=value` arguments as a dict of dotted keys; values are read as YAML scalars
    (`3` an int, `true` a bool, `[a, b]` a list, `null` None), like the file's own values."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set output.dir=runs/x")
        try:
            out[key.strip()] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as e:
            raise ConfigError(f"--set {item!r}: the value is not valid YAML ({getattr(e, 'problem', e)})") from None
    return out


def add_set_argument(p) -> None:
    """The `--set KEY=VALUE` option of every command that reads a YAML config."""
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="set",
                   help="override a config key (dotted, e.g. engine.name=local or stages.0.params.drop=false); "
                        "repeatable; the value is read as YAML")
