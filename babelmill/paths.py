"""Where babelmill finds the files it ships: the configs (`configs/` at the repository root,
which users read and copy) and its data (`babelmill/data/`: the UDHR benchmark, dev texts).

This is the one place that knows the layout, so that a checkout, an editable install and a
wheel installed outside the checkout all find the same files: the wheel ships `configs/` as the
package-data package `babelmill.configs` (setup.py), a checkout has it at the root.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


@cache
def configs_dir() -> Path:
    """The folder holding `languages.yaml`, `quality.yaml`, `pretrain/`, `contamination/`, ..."""
    try:
        shipped = Path(str(resources.files("babelmill.configs")))
        if (shipped / "languages.yaml").is_file():
            return shipped
    except (ModuleNotFoundError, TypeError):
        pass
    checkout = _PACKAGE.parent / "configs"
    if (checkout / "languages.yaml").is_file():
        return checkout
    raise FileNotFoundError("babelmill's configs are missing: neither the package data `babelmill.configs` "
                            f"nor {checkout} holds languages.yaml (a broken install?)")


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
