"""Near-deduplication speed and quality: babelmill vs datatrove, side by side, same corpus.

- signatures: documents/s on one core, babelmill's `dedup_near` map part (shingles + MinHash)
  vs datatrove's MinhashDedupSignature (both on \\w+ words, 5-grams; 128 vs 112 hashes), both
  on documents already in memory;
- end to end, the headline: from the JSONL file to deduplicated Parquet (zstd) on disk, the
  removed documents' text kept. babelmill: `run_pipeline([dedup_near])` in-process (reads
  JSONL, writes staged shards, the rounds, writes output and rejects). datatrove: its four
  MinHash stages as its examples/minhash_deduplication.py runs them, `JsonlReader` into the
  signature stage and again into the filter, `ParquetWriter` (for the example's `JsonlWriter`)
  for the kept and (`exclusion_writer`) the removed documents. The best of `--repeat` runs of each;
- for reference: datatrove's four stages alone (documents parsed before its clock starts, no
  output written) against the same babelmill end-to-end time: the I/O is charged to
  babelmill only;
- quality on the planted corpus (bench/dedup_corpus.py): recall over every planted near pair
  (1-10% edited) and over those with character 5-gram Jaccard >= 0.8 by the ruler of
  bench/dedup_ruler.py (not the pipeline's shingles), and wrongly removed unique documents, per
  script family and per language.

datatrove runs in its own virtualenv (bench/envs/datatrove.txt: datatrove 0.10.1 needs
xxhash<4), created on first use under bench/_work/dtvenv and recreated when that file changes.

    python -m bench.dedup_speed [--docs N] [--json OUT]     (N scales with BENCH_SCALE)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from babelmill.pipeline.config import PipelineConfig
from babelmill.pipeline.runner.run import run_pipeline
from babelmill.pipeline.stages.dedup import NearDedupStage
from bench.dedup_corpus import generate, score

HERE = Path(__file__).resolve().parent


def datatrove_python() -> Path | None:
    venv = HERE / "_work" / "dtvenv"
    py = venv / "bin" / "python"
    reqs = HERE / "envs" / "datatrove.txt"
    stamp = venv / "requirements.txt"  # what the environment was built from
    if not py.exists() or not stamp.exists() or stamp.read_text() != reqs.read_text():
        print("creating the datatrove benchmark environment ...", flush=True)
        stamp.unlink(missing_ok=True)
        ok = subprocess.run([sys.executable, "-m", "venv", str(venv)], check=False).returncode == 0 and subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", "-r", str(reqs)], check=False).returncode == 0
        if not ok:
            return None
        stamp.write_text(reqs.read_text())
    return py


def run_datatrove(docs_path: Path, mode: str) -> dict | None:
    py = datatrove_python()
    if py is None:
        return None
    r = subprocess.run([str(py), str(HERE / "_datatrove_minhash.py"), str(docs_path), mode],
                       capture_output=True, text=True, check=False)
    if r.returncode != 0:
        print("datatrove failed:", r.stderr[-1500:])
        return None
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--docs", type=int, default=int(10000 * float(os.environ.get("BENCH_SCALE", "1"))))
    ap.add_argument("--json")
    ap.add_argument("--params", default="{}", help="dedup_near parameters as JSON (default: the stage's defaults)")
    ap.add_argument("--repeat", type=int, default=3, help="end-to-end runs of each side; the best is reported")
    ap.add_argument("--index", action="store_true", help="also write the run's dedup index (dedup.index: true)")
    args = ap.parse_args()
    params = json.loads(args.params)
    docs, truth = generate(args.docs, seed=11)
    n = len(docs)
    res: dict = {"docs": n, "unique_seed_docs": args.docs}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        raw = tmp / "raw"
        raw.mkdir()
        with open(raw / "docs.jsonl", "w", encoding="utf-8") as f:
            for d in docs:
                f.write(json.dumps(d, ensure_ascii=False) + "\n")

        # 1. signatures, one core, no I/O
        stage = NearDedupStage(**params)
        stage.ensure_setup()
        batches = [pa.RecordBatch.from_pylist(docs[i : i + 1000]) for i in range(0, n, 1000)]
        stage(batches[0])  # warm the token cache like a long-running worker
        t = time.perf_counter()
        for b in batches:
            stage(b)
        ours_sig = time.perf_counter() - t
        res["babelmill_signature_docs_per_s"] = round(n / ours_sig, 1)

        # 2. end to end
        cfg = PipelineConfig.model_validate({
            "input": {"paths": [str(raw)], "extra_fields": ["lang"], "split_mb": 4},
            "output": {"dir": str(tmp / "run")}, "stages": [{"name": "dedup_near", "params": params}],
            "engine": {"name": "local"}, "dedup": {"index": args.index}})
        ours_e2e, best = 1e9, None
        for r in range(args.repeat):  # best of N: this machine's other load only ever adds time
            c = cfg.model_copy(update={"output": cfg.output.model_copy(update={"dir": str(tmp / f"run{r}")})})
            t = time.perf_counter()
            m = run_pipeline(c, quiet=True)
            if (secs := time.perf_counter() - t) < ours_e2e:
                ours_e2e, best = secs, m
        cfg = c
        res["babelmill_end_to_end_s"] = round(ours_e2e, 2)
        # where the best run's time went, from its manifest
        res["babelmill_phase_seconds"] = best["phase_seconds"]
        res["babelmill_round_seconds"] = {r["round"]: r["seconds"]
                                          for r in best["global_phases"]["dedup_near"]["rounds"]}
        res["babelmill_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        rejects = pq.read_table(Path(cfg.output.dir) / "rejects").to_pylist()
        res["babelmill_quality"] = score(docs, truth, rejects)

        dt, dt_e2e = best_datatrove(raw / "docs.jsonl", "io", args.repeat)
        dt_stages, dt_stages_s = best_datatrove(raw / "docs.jsonl", "all", args.repeat) if dt else (None, 0.0)
        if dt:
            res["datatrove_signature_docs_per_s"] = round(n / dt_stages["signature_s"], 1)
            res["datatrove_end_to_end_s"] = round(dt_e2e, 2)
            res["datatrove_stages_only_s"] = round(dt_stages_s, 2)
            res["signature_speedup"] = round(res["babelmill_signature_docs_per_s"] / res["datatrove_signature_docs_per_s"], 2)
            res["end_to_end_speedup"] = round(dt_e2e / ours_e2e, 2)
            res["stages_only_speedup"] = round(dt_stages_s / ours_e2e, 2)
            res["datatrove_quality"] = score_removed(docs, truth, dt["removed"])
        else:
            res["datatrove_note"] = "datatrove environment unavailable"

    q = res["babelmill_quality"]
    print(f"corpus: {n} documents ({args.docs} distinct + planted exact/near duplicates and hard negatives), 9 languages")
    print(f"signatures, one core   : babelmill {res['babelmill_signature_docs_per_s']:>9.0f} docs/s", end="")
    if dt:
        print(f" | datatrove {res['datatrove_signature_docs_per_s']:>8.0f} docs/s | {res['signature_speedup']:.1f}x (target >= 10x)")
        print(f"near dedup end to end  : babelmill {ours_e2e:>8.2f} s      | datatrove {res['datatrove_end_to_end_s']:>8.2f} s      "
              f"| {res['end_to_end_speedup']:.1f}x (target >= 5x; both read the JSONL and write Parquet)")
        print(f"  datatrove stages only:                              {res['datatrove_stages_only_s']:>8.2f} s      "
              f"| {res['stages_only_speedup']:.1f}x (its documents parsed before its clock starts, no output)")
    else:
        print()
    ph = res["babelmill_phase_seconds"]
    rounds = ", ".join(f"{k.split('-', 1)[-1]} {v:.2f}" for k, v in res["babelmill_round_seconds"].items() if v >= 0.01)
    print(f"babelmill's best run by phase: read + signatures + staged shards {ph['map']:.2f} s, rounds {ph['global']:.2f} s "
          f"({rounds}), apply + output {ph['apply']:.2f} s")
    print(f"babelmill peak RSS: {res['babelmill_peak_rss_mb']} MB (whole benchmark process)")
    for name in ("babelmill_quality", "datatrove_quality"):
        if name in res:
            q = res[name]
            fams = ", ".join(f"{k}: recall {v['recall']:.3f} on {v['pairs']} pairs, wrongly removed {v['wrong']}/{v['unique']}"
                             for k, v in q["by_family"].items())
            langs = " ".join(f"{k} {v['recall']:.2f}" for k, v in q["by_lang"].items())
            print(f"{name.split('_')[0]:9} near recall {q['near_recall']:.3f} (ruler J>=0.8: {q['near_recall_j08']:.3f} "
                  f"on {q['near_pairs_j08']} pairs), wrongly removed {q['wrongly_removed_rate']:.4f}; {fams}")
            print(f"{'':9} recall by language: {langs}")
    res["headline"] = (f"signatures {res.get('signature_speedup', '?')}x datatrove; end to end {res.get('end_to_end_speedup', '?')}x "
                       f"(its stages alone: {res.get('stages_only_speedup', '?')}x); "
                       f"near recall {res['babelmill_quality']['near_recall']:.3f}, wrongly removed "
                       f"{res['babelmill_quality']['wrongly_removed_rate']:.4f}")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
    return 0


def best_datatrove(docs_path: Path, mode: str, repeat: int) -> tuple[dict | None, float]:
    """The fastest of `repeat` datatrove runs in `mode` (see _datatrove_minhash.py) and its
    four stages' total seconds."""
    best, best_s = None, 1e9
    for _ in range(repeat):
        d = run_datatrove(docs_path, mode)
        if d is None:
            break
        if (s := datatrove_seconds(d)) < best_s:
            best, best_s = d, s
    return best, best_s


def datatrove_seconds(d: dict) -> float:
    """A datatrove run's four stages' seconds, summed."""
    return d["signature_s"] + d["buckets_s"] + d["cluster_s"] + d["filter_s"]


def score_removed(docs, truth, removed_ids):
    """datatrove reports only which documents it removed: a removed document with a planted
    partner counts as that pair found (whichever of the two it removed)."""
    partner = {}
    for a, b, *_ in [*truth["exact"], *truth["near"]]:
        partner[a], partner[b] = b, a
    rej = [{"id": i, "reason": "dup_near", "kept_id": partner.get(i, "?" + i)} for i in removed_ids]
    return score(docs, truth, rej)


if __name__ == "__main__":
    raise SystemExit(main())
