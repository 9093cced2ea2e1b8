"""CPU demo: preprocess, train the tiny model, stop, resume, print per-language validation loss.

    python -m demo.pretrain [--data DIR] [--tokenizer tokenizer.json] [--save DIR] [--train-iters N]

Each training leg runs in its own process (as a restarted job would), so the resume is real:
model, optimizer, scheduler, RNG and data position come back from the checkpoint only.
Step 5 of `make demo` (demo/run.py); demo/contamination.py trains its models with the same
helpers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from babelmill.paths import config_file

TINY = config_file("pretrain", "tiny.yaml")


def run_train(config: Path, data: Path, save: Path, extra: list[str]) -> dict:
    """`babelmill pretrain train` in its own process (as a restarted job would be); its result."""
    cmd = [sys.executable, "-m", "babelmill.pretrain.cli", "train", "--config", str(config),
           "--data", str(data), "--save", str(save), *extra]
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    out = proc.stdout
    return json.loads(out[out.index("\n{") + 1 if "\n{" in out else out.index("{"):])


def fresh_data_for(tokenizer_json: str, data_dir: Path) -> None:
    """The demo owns its DATA_DIR: data tokenized with an older tokenizer is discarded
    (`preprocess` itself refuses to mix tokenizers, rightly, for user directories)."""
    import shutil

    from babelmill.pretrain.data.preprocess import MANIFEST, file_sha256

    m = data_dir / MANIFEST
    if m.is_file() and json.loads(m.read_text())["tokenizer"]["sha256"] != file_sha256(str(Path(tokenizer_json).resolve())):
        shutil.rmtree(data_dir)


def fresh_run_for(manifest: dict, run_dir: Path) -> None:
    """A demo run trained on other data (a rebuilt corpus, another tokenizer) is started over:
    resuming it on new data would mix two runs. The demo owns the directory, so it marks it as
    a babelmill save dir before putting its own data_key.txt there (training refuses save dirs
    holding files it did not write, see savedir)."""
    import shutil

    from babelmill.pretrain.savedir import mark

    key = f"{manifest.get('inputs_fingerprint')}|{manifest['tokenizer']['sha256']}"
    marker = run_dir / "data_key.txt"
    if run_dir.exists() and (not marker.exists() or marker.read_text() != key):
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    mark(run_dir)
    marker.write_text(key)


def finished(run_dir: Path, train_iters: int) -> bool:
    """The run's `latest` checkpoint is its last step: nothing left to train (no process started)."""
    from babelmill.pretrain.checkpoint import read_latest

    latest = read_latest(run_dir) if run_dir.is_dir() else None
    return latest is not None and latest == f"iter_{train_iters:07d}"


def _last_valid(run_dir: Path) -> dict:
    """The last validation record of a run's metrics.jsonl, as {lang: {loss, ppl}}."""
    from babelmill.pretrain.metrics import METRICS_FILE, read_metrics

    last = {}
    if (run_dir / METRICS_FILE).exists():
        for rec in read_metrics(run_dir):
            if "valid" in rec:
                last = {k: {"loss": v, "ppl": rec["valid_ppl"][k]} for k, v in rec["valid"].items()}
    return last


def demo(data_dir: str, tokenizer_json: str, save_dir: str, balance_json: str | None = None,
         config: str | None = None, train_iters: int = 300, stop_at: int | None = None,
         quiet: bool = False) -> dict:
    """`data_dir` holds the corpus (Parquet/JSONL, e.g. balanced DIR/<lang>/*.parquet)."""
    from babelmill.pretrain.data.preprocess import preprocess

    save = Path(save_dir)
    save.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    fresh_data_for(tokenizer_json, save / "data")
    manifest = preprocess([data_dir], tokenizer_json, save / "data", workers=2)
    t_pre = time.perf_counter() - t0
    fresh_run_for(manifest, save / "run")
    stop_at = stop_at or train_iters // 2
    extra = ["--train-iters", str(train_iters)] + (["--balance", balance_json] if balance_json else [])
    cfg = Path(config or TINY)
    t1 = time.perf_counter()
    if finished(save / "run", train_iters):  # a rerun of a finished demo: reuse it
        first = second = {"iteration": train_iters, "resumed_from": None, "valid": {}}
    else:
        first = run_train(cfg, save / "data", save / "run", extra + ["--exit-after", str(stop_at)])
        second = run_train(cfg, save / "data", save / "run", extra)
    t_train = time.perf_counter() - t1
    valid = second["valid"] or _last_valid(save / "run")  # a finished run: reuse
    table = {lang: {"loss": round(v["loss"], 4), "ppl": round(v["ppl"], 2)} for lang, v in valid.items()}
    result = {"languages": {k: {"documents": v["documents"], "tokens": v["tokens"]}
                            for k, v in manifest["languages"].items()},
              "stopped_at": first["iteration"], "resumed_from": second["resumed_from"],
              "iterations": second["iteration"], "valid": table,
              "preprocess_seconds": round(t_pre, 1), "train_seconds": round(t_train, 1),
              "metrics": str(save / "run" / "metrics.jsonl")}
    if not quiet:
        print(f"stopped at {first['iteration']}, resumed from {second['resumed_from']}, "
              f"trained to {second['iteration']} in {t_train:.0f}s")
        print(f"{'language':>10} {'val loss':>9} {'ppl':>9}")
        for lang, v in table.items():
            print(f"{lang:>10} {v['loss']:>9.4f} {v['ppl']:>9.2f}")
    return result


if __name__ == "__main__":
    import argparse
    import tempfile

    from testing import pretrain_corpus

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", help="corpus dir/file (default: a generated one)")
    ap.add_argument("--tokenizer", help="tokenizer.json (default: a tiny trained one)")
    ap.add_argument("--save", default=None)
    ap.add_argument("--balance")
    ap.add_argument("--train-iters", type=int, default=300)
    a = ap.parse_args()
    work = Path(a.save or tempfile.mkdtemp(prefix="pretrain-demo-"))
    data = a.data or str(pretrain_corpus.write_corpus(work / "corpus", 150, layout="parquet"))
    tok = a.tokenizer or str(pretrain_corpus.train_tokenizer(work / "tokenizer.json", 400))
    demo(data, tok, str(work), a.balance, train_iters=a.train_iters)
