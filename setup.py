"""Maps the repository's top-level concern folders onto the `babelmill` namespace.

The repository keeps one folder per concern at the root (pipeline/, tokenizer/, pretrain/,
contamination/) as the design asks, while the installed package is importable as
`babelmill.pipeline`, `babelmill.tokenizer`, ... so that no generic top-level names
(`pipeline`, `tokenizer`) are put into site-packages.

`configs/` stays at the root too (users read and copy it there), and ships as the data-only
package `babelmill.configs`, so that a wheel installed outside the checkout finds its configs;
`babelmill.paths` is the one place that looks them up. It has no `__init__.py` on purpose: it
holds no code, and an `__init__.py` among the YAML would only confuse readers of `configs/`.
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


def _data_packages(name, folder):
    """`folder` and each folder under it as data-only packages named from `name`, holding every
    file there. Listing the subfolders as packages, rather than globbing them as data of the top
    one, is what setuptools asks for folders with importable names (it warns otherwise)."""
    base = ROOT / folder
    folders = [base, *sorted(d for d in base.rglob("*") if d.is_dir() and not d.name.startswith((".", "_")))]
    return {".".join([name, *d.relative_to(base).parts]): ["*"] for d in folders}


packages, package_dir = _packages()
# babelmill/data: the UDHR benchmark and dev texts; configs/: the YAML users read and copy.
data = {**_data_packages("babelmill.data", "babelmill/data"), **_data_packages("babelmill.configs", "configs")}
setup(
    packages=packages + list(data),
    package_dir={**package_dir, "babelmill.configs": "configs"},
    package_data=data,
    include_package_data=True,
)
