"""Maps the repository's top-level concern folders onto the `babelmill` namespace.

The repository keeps one folder per concern at the root (pipeline/, tokenizer/, pretrain/,
contamination/) as the design asks, while the installed package is importable as
`babelmill.pipeline`, `babelmill.tokenizer`, ... so that no generic top-level names
(`pipeline`, `tokenizer`) are put into site-packages.
"""

from pathlib import Path

from setuptools import setup

ROOT = Path(__file__).parent
FOLDERS = {
    "babelmill": "babelmill",
    "babelmill.pipeline": "pipeline",
    "babelmill.tokenizer": "tokenizer",
    "babelmill.pretrain": "pretrain",
    "babelmill.contamination": "contamination",
}


def _packages():
    packages, package_dir = [], {}
    for name, folder in FOLDERS.items():
        base = ROOT / folder
        if not (base / "__init__.py").exists():
            continue
        package_dir[name] = folder
        for init in sorted(base.rglob("__init__.py")):
            rel = init.parent.relative_to(base)
            if any(part.startswith((".", "_")) for part in rel.parts):
                continue
            packages.append(".".join([name, *rel.parts]))
    return packages, package_dir


packages, package_dir = _packages()
setup(
    packages=packages,
    package_dir=package_dir,
    package_data={"babelmill": ["data/*", "data/**/*"]},
    include_package_data=True,
)
