"""Issue 18.7: babelmill works installed from a wheel, outside the checkout.

The wheel is built from a copy of the checkout (so that the build's `build/` and egg-info stay out
of the working tree), installed with `--no-deps` into a fresh virtualenv in tmp_path, and run
from tmp_path. The dependencies come from the project's .venv without a download: a `.pth` line
naming its site-packages. A plain path line does not run the .pth files of that folder, so the
checkout's editable finder stays off and every import of `babelmill` must come from the wheel;
a config or data file that the wheel does not ship therefore fails these commands.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
# Not part of a build's input: environments, caches, earlier builds, run outputs.
_SKIP = {".git", ".venv", "__pycache__", ".pytest_cache", ".ruff_cache", ".cache", "build", "dist", "runs", "_work"}
LANGS = ("de", "fr", "en", "es", "ru", "zh")


def _skip(folder: str, names: list[str]) -> set[str]:
    top = Path(folder) == REPO
    return {n for n in names if n in _SKIP or n.endswith((".egg-info", ".pyc")) or (top and n == "data")}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("src") / "babelmill"
    shutil.copytree(REPO, src, ignore=_skip)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(out), str(src)], check=True, capture_output=True, text=True)
    (whl,) = out.glob("babelmill-*.whl")
    return whl


def test_wheel_ships_configs_and_data_but_no_checkout_folders(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = [f"babelmill/configs/{p.relative_to(REPO / 'configs').as_posix()}"
               for p in (REPO / "configs").rglob("*") if p.is_file()]
    shipped += [f"babelmill/{p.relative_to(REPO / 'babelmill').as_posix()}"
                for p in (REPO / "babelmill" / "data").rglob("*") if p.is_file()]
    assert {"babelmill/configs/languages.yaml", "babelmill/configs/quality.yaml",
            "babelmill/configs/pretrain/tiny.yaml", "babelmill/configs/contamination/verdict.yaml",
            "babelmill/data/benchmarks/udhr_mc/en.jsonl"} <= set(shipped)
    assert sorted(set(shipped) - names) == []
    for sub in ("pipeline", "tokenizer", "pretrain", "contamination"):
        assert f"babelmill/{sub}/__init__.py" in names
    tops = {n.split("/", 1)[0] for n in names}
    assert tops == {"babelmill", wheel.name.split("-py")[0] + ".dist-info"}, tops
    assert not {"tests", "bench", "demo", "testing", "configs"} & tops


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    env = tmp_path_factory.mktemp("venv") / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    py = env / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps",
                    "--no-index", str(wheel)], check=True, capture_output=True, text=True)
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    deps = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    (site / "zz_babelmill_deps.pth").write_text("".join(f"{p}\n" for p in deps), encoding="utf-8")
    return env


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "BABELMILL_LANGUAGES")}
    env.pop("VIRTUAL_ENV", None)
    return env


def _run(venv: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    r = subprocess.run([str(venv / "bin" / args[0]), *args[1:]], cwd=cwd, env=_env(),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"{args}: rc {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r


def _sample(path: Path) -> Path:
    """One document per language (UDHR articles of the checkout's tokenizer dev set: long enough
    for the quality stage's 50-word minimum), an exact duplicate and a too-short document."""
    rows = [{"id": lang, "text": (REPO / "babelmill" / "data" / "tokenizer_dev" / f"{lang}.txt")
             .read_text(encoding="utf-8").strip()} for lang in LANGS]
    rows += [{"id": "de-copy", "text": rows[0]["text"]},
             {"id": "short", "text": "The committee published its annual report on water quality last week."}]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_imports_come_from_the_wheel_not_the_checkout(venv, tmp_path):
    code = ("import json, babelmill, babelmill.pipeline, babelmill.paths as p, babelmill.languages as L;"
            "print(json.dumps([babelmill.__file__, babelmill.pipeline.__file__, str(p.configs_dir()),"
            " str(L.DEFAULT_PATH), p.repo_root()]))")
    files = json.loads(_run(venv, tmp_path, "python", "-c", code).stdout)
    root = venv.resolve()
    for f in files[:4]:
        assert Path(f).resolve().is_relative_to(root), (f, root)
    assert not Path(files[0]).resolve().is_relative_to(REPO)
    assert files[4] is None  # not a checkout: no repo root
    # so the config reference has no docs/config.md to regenerate: it asks for --output instead
    r = subprocess.run([str(venv / "bin" / "python"), "-m", "babelmill.configref"], cwd=tmp_path, env=_env(),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "not running from a checkout" in r.stderr and "--output" in r.stderr, r.stderr
    _run(venv, tmp_path, "python", "-m", "babelmill.configref", "--output", "config.md")
    assert "### PipelineConfig" in (tmp_path / "config.md").read_text(encoding="utf-8")


def test_langid_and_run_from_the_installed_wheel(venv, tmp_path):
    sample = _sample(tmp_path / "sample.jsonl")

    _run(venv, tmp_path, "babelmill", "langid", "--input", sample.name, "--output", "langs.parquet",
         "--engine", "local")
    t = pq.read_table(tmp_path / "langs.parquet")
    found = dict(zip(t.column("id").to_pylist(), t.column("lang").to_pylist(), strict=True))
    assert {i: found[i] for i in LANGS} == {lang: lang for lang in LANGS}
    assert found["de-copy"] == "de" and found["short"] == "en"

    (tmp_path / "run.yaml").write_text(
        "name: wheel\n"
        "input: {paths: [sample.jsonl]}\n"
        "output: {dir: out}\n"
        "stages: [{name: langid}, {name: quality}, {name: dedup_exact}]\n"
        "engine: {name: local}\n", encoding="utf-8")
    _run(venv, tmp_path, "babelmill", "run", "run.yaml", "--engine", "local")
    m = json.loads((tmp_path / "out" / "manifest.json").read_text(encoding="utf-8"))
    c = m["counts"]
    assert m["engine"] == "local"
    assert c["docs_in"] == len(LANGS) + 2 == c["kept"] + c["dropped"] and c["balanced"]
    assert c["kept"] == len(LANGS) and c["by_stage"]["quality"]["reasons"] == {"q_word_count": 1}
    assert c["by_stage"]["dedup_exact"]["dropped"] == 1
    assert {lang: c["by_lang"][lang]["kept"] for lang in LANGS} == dict.fromkeys(LANGS, 1)
    kept = pq.read_table(tmp_path / "out" / "output").column("lang").to_pylist()
    assert sorted(kept) == sorted(LANGS)
