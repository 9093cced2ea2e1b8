"""Where babelmill finds the files it ships: the configs (`configs/` at the repository root,
which users read and copy) and its data (`babelmill/data/`: the UDHR benchmark, dev texts).

This is the one place that knows the layout, so that a checkout, an editable install and a
wheel installed outside the checkout all find the same files: the wheel ships `configs/` as the
package-data package `babelmill.configs` (setup.py), a checkout has it at the root.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


@cache
def configs_dir() -> Path:
    """The folder holding `languages.yaml`, `quality.yaml`, `pretrain/`, `contamination/`, ...

    Looked up as folders, not through `importlib.resources`: `babelmill.configs` has no
    `__init__.py` (it holds only YAML), and neither `resources.files` (a `MultiplexedPath` for
    a namespace package, not a `Path`) nor the editable finder (it maps only top-level packages
    of a `package_dir`, so `import babelmill.configs` fails in an editable install) gives a
    usable path for it. A wheel puts the files at `babelmill/configs/`; a checkout, editable
    or not, keeps them at `<checkout>/configs/`."""
    for candidate in (_PACKAGE / "configs", _PACKAGE.parent / "configs"):
        if (candidate / "languages.yaml").is_file():
            return candidate
    raise FileNotFoundError("babelmill's configs are missing: neither the package data "
                            f"{_PACKAGE / 'configs'} nor the checkout's {_PACKAGE.parent / 'configs'} "
                            "holds languages.yaml (a broken install?)")


def config_file(*parts: str) -> Path:
    """A shipped config, e.g. `config_file("pretrain", "tiny.yaml")`."""
    return configs_dir().joinpath(*parts)


def data_file(*parts: str) -> Path:
    """A shipped data file or folder, e.g. `data_file("benchmarks", "udhr_mc")`."""
    return _PACKAGE.joinpath("data", *parts)


def repo_root() -> Path | None:
    """The checkout this package runs from, or None when installed from a wheel (demo and bench
    helpers write under it; library code must not need it)."""
    root = _PACKAGE.parent
    return root if (root / "pyproject.toml").is_file() and (root / "configs").is_dir() else None
