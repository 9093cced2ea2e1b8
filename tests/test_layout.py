"""The library packages import no demo, benchmark or test-fixture code, and import each other
in one style.

`demo/`, `bench/` and `testing/` sit beside the package, not in it: a wheel does not ship them,
so a library module importing one works in a checkout and breaks for every user who installed
babelmill (and `babelmill.demo` importing the library that imports it back was a cycle). The
import may be lazy, inside a function that only some command reaches, which is why this reads
every module's AST instead of importing the package.

One import style: absolute names under `babelmill` (`from babelmill.pretrain.config import
ModelConfig`), as nearly every module wrote them; no relative imports (`from .config import`),
and no bare folder names (`from pipeline.io import`, which only a checkout on sys.path resolves).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: repository folder -> the package it installs as (setup.py FOLDERS)
LIBRARY = {"babelmill": "babelmill", "pipeline": "babelmill.pipeline", "tokenizer": "babelmill.tokenizer",
           "pretrain": "babelmill.pretrain", "contamination": "babelmill.contamination"}
FORBIDDEN_TOP = {"demo", "bench", "testing"}
FORBIDDEN_PREFIXES = ("babelmill.demo",)
#: library folders whose modules exist only as babelmill.<folder>.* once installed
BARE_TOP = {folder for folder, package in LIBRARY.items() if package != folder}


def _module_name(path: Path, folder: str) -> tuple[str, bool]:
    """(dotted module name, is a package __init__) of a library file."""
    rel = path.relative_to(ROOT / folder).with_suffix("")
    parts = [*LIBRARY[folder].split("."), *rel.parts]
    is_init = parts[-1] == "__init__"
    return ".".join(parts[:-1] if is_init else parts), is_init


def _forbidden(name: str) -> bool:
    return name.split(".")[0] in FORBIDDEN_TOP or any(
        name == p or name.startswith(p + ".") for p in FORBIDDEN_PREFIXES)


def _imported(node: ast.AST, module: str, is_init: bool) -> list[str]:
    """The absolute names an import statement binds from, relative ones resolved against `module`
    (`from . import demo` in babelmill/cli.py is babelmill.demo)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:
        package = module.split(".") if is_init else module.split(".")[:-1]
        up = node.level - 1  # `from . import` is the module's own package, each further dot one up
        if up >= len(package):
            return []  # beyond the top-level package: an ImportError at run time, nothing to resolve
        base = package[: len(package) - up]
        source = ".".join([*base, *([node.module] if node.module else [])])
    else:
        source = node.module or ""
    return [source, *(f"{source}.{a.name}" for a in node.names if a.name != "*")]


def violations(source: str, module: str, is_init: bool = False, filename: str = "<string>") -> list[str]:
    """`file:line: imports NAME` for every import of demo, bench or testing code in `source`."""
    out = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        for name in _imported(node, module, is_init):
            if _forbidden(name):
                out.append(f"{filename}:{node.lineno}: imports {name}")
                break
    return out


def style_violations(source: str, module: str, is_init: bool = False, filename: str = "<string>") -> list[str]:
    """`file:line: ...` for every import of `source` written other than as an absolute
    `babelmill.` name: relative ones (with the absolute name to write instead) and bare folder
    names."""
    out = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        if isinstance(node, ast.ImportFrom) and node.level:
            rel = "." * node.level + (node.module or "")
            names = _imported(node, module, is_init)
            absolute = names[0] if names else "?"
            out.append(f"{filename}:{node.lineno}: relative import `from {rel} import`; write `from {absolute} import`")
            continue
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            continue
        bare = [n for n in names if n.split(".")[0] in BARE_TOP]
        if bare:
            out.append(f"{filename}:{node.lineno}: imports {bare[0]}; write babelmill.{bare[0]}")
    return out


def _library_files():
    for folder in LIBRARY:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if ".venv" not in path.parts and "__pycache__" not in path.parts:
                yield path, folder


def test_library_modules_import_no_demo_bench_or_testing_code():
    found = []
    files = 0
    for path, folder in _library_files():
        module, is_init = _module_name(path, folder)
        found += violations(path.read_text(encoding="utf-8"), module, is_init,
                            filename=str(path.relative_to(ROOT)))
        files += 1
    assert files > 50  # the walk did find the library
    assert not found, "library code imports demo/bench/testing code:\n" + "\n".join(found)


@pytest.mark.parametrize("source, module, is_init", [
    ("import demo.run", "babelmill.cli", False),
    ("import bench", "babelmill.pipeline.config", False),
    ("from testing.tinylm import make_tiny_lm", "babelmill.contamination.audit", False),
    ("import babelmill.demo.udhr as u", "babelmill.cli", False),
    ("from babelmill.demo import udhr", "babelmill.cli", False),
    ("from babelmill import demo", "babelmill.cli", False),
    ("def f():\n    from demo.pretrain import TINY\n", "babelmill.pretrain.loop", False),  # lazy
    ("from . import demo", "babelmill.cli", False),  # babelmill/cli.py -> babelmill.demo
    ("from .demo.udhr import load_languages", "babelmill", True),  # babelmill/__init__.py
    ("from ..demo import corpus", "babelmill.pipeline.config", False),  # pipeline/config.py
    ("from ...demo import corpus", "babelmill.pipeline.io.writers", False),
])
def test_the_check_sees_absolute_relative_and_lazy_imports(source, module, is_init):
    found = violations(source, module, is_init, filename="x.py")
    assert len(found) == 1 and found[0].startswith("x.py:"), found


@pytest.mark.parametrize("source, module, is_init", [
    ("from . import synthetic_data", "babelmill.pretrain.cli", False),
    ("from .data import preprocess", "babelmill.pretrain.cli", False),
    ("from babelmill.pipeline.stages import demo_stage", "babelmill.cli", False),
    ("import benchmark_tools", "babelmill.cli", False),
    ("from ..contamination.benchmarks import loaders", "babelmill.pipeline.stages.decontaminate", False),
])
def test_the_check_leaves_lookalike_names_alone(source, module, is_init):
    assert violations(source, module, is_init) == []


def test_library_modules_import_each_other_by_absolute_name():
    found = []
    for path, folder in _library_files():
        rel = path.relative_to(ROOT).as_posix()
        module, is_init = _module_name(path, folder)
        found += style_violations(path.read_text(encoding="utf-8"), module, is_init, filename=rel)
    assert not found, "library imports not written as absolute babelmill.* names:\n" + "\n".join(found)


@pytest.mark.parametrize("source, module, is_init, expected", [
    ("from .config import ModelConfig", "babelmill.pretrain.cli", False, "from babelmill.pretrain.config import"),
    ("from . import presets", "babelmill.pretrain.config", False, "from babelmill.pretrain import"),
    ("def f():\n    from ..safe_load import X\n", "babelmill.pretrain.data.blend", False,
     "from babelmill.pretrain.safe_load import"),  # lazy, two levels up
    ("from .stage import QualityStage", "babelmill.pipeline.stages.quality", True,
     "from babelmill.pipeline.stages.quality.stage import"),  # a package __init__
    ("import pipeline.io.readers", "babelmill.cli", False, "write babelmill.pipeline.io.readers"),
    ("from tokenizer.train import train", "babelmill.cli", False, "write babelmill.tokenizer.train"),
])
def test_the_style_check_names_file_line_and_the_absolute_import(source, module, is_init, expected):
    found = style_violations(source, module, is_init, filename="x.py")
    assert len(found) == 1 and found[0].startswith("x.py:") and expected in found[0], found


@pytest.mark.parametrize("source", [
    "from babelmill.pretrain.config import ModelConfig",
    "import babelmill.pipeline.io.readers as readers",
    "from tokenizers import Tokenizer",  # Hugging Face's package, not tokenizer/
    "import pipelines",
    "from babelmill import errors",
])
def test_the_style_check_leaves_absolute_and_third_party_imports_alone(source):
    assert style_violations(source, "babelmill.cli") == []

