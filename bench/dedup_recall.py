"""Near-duplicate recall measured with a ruler the pipeline does not use (issue 14, part 1).

The corpus (bench/dedup_ruler.py) is real text in every script: the UDHR declarations of the
*report* half (the defaults of `dedup_near` were chosen on the tune half), cut into
segments, with planted copies whose edit share and kind are known, and hard negatives that
share a long site boilerplate. Side by side, in the same run, on the same documents:

- babelmill `dedup_exact` + `dedup_near`, its defaults;
- babelmill with the old defaults (word 5-grams, 120 hashes in 20 x 6 bands, threshold 0.7);
- datatrove's four MinHash stages with its defaults (word 5-grams, 14 x 8 buckets; \\w+ words),
  in its own virtualenv (bench/dedup_speed.py creates it).

Printed: recall by edit share x kind per script family, recall by the ruler's own character
5-gram Jaccard, wrongly removed unique documents and hard negatives (by boilerplate length).
No language ID runs, so the stage picks word or character shingles from the script.

    python -m bench.dedup_recall [--half report] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

from babelmill.pipeline.config import PipelineConfig
from babelmill.pipeline.runner.run import run_pipeline
from bench.dedup_ruler import build_corpus, recall_upto, score, table, udhr_source
from bench.dedup_speed import datatrove_seconds, run_datatrove

OLD_DEFAULTS = {"word_ngram": 5, "char_ngram": 5, "num_perm": 120, "bands": 20, "rows": 6, "threshold": 0.7}
GOAL = "goal: recall >= 0.95 up to 5% edited, >= 0.90 at 10%; wrongly removed <= 0.5%"


def run_babelmill(raw: Path, out: Path, params: dict) -> tuple[list[dict], float]:
    cfg = PipelineConfig.model_validate({
        "input": {"paths": [str(raw)], "split_mb": 4}, "output": {"dir": str(out)},
        "stages": ["dedup_exact", {"name": "dedup_near", "params": params}], "engine": {"name": "local"}})
    t = time.perf_counter()
    run_pipeline(cfg, quiet=True)
    return pq.read_table(out / "rejects").to_pylist(), time.perf_counter() - t


def summary(sc: dict) -> dict:
    out = {}
    for fam in ("spaced", "unspaced", "both"):
        for cap in (0.05, 0.10):
            f, n = recall_upto(sc, fam, cap)
            out[f"recall_upto_{int(cap * 100)}pct_{fam}"] = round(f / n, 4) if n else None
        cells = sc["cells"]
        for s in (0.15, 0.2, 0.3):
            v = cells.get(f"share|{fam}|{s}")
            if v:
                out[f"recall_at_{int(s * 100)}pct_{fam}"] = round(v[0] / v[1], 4)
    out["wrongly_removed_rate"] = round(sc["wrongly_removed_rate"], 4)
    out["hard_by_boilerplate"] = sc["hard_by_boilerplate"]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--half", choices=["tune", "report"], default="report")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json")
    args = ap.parse_args()
    t0 = time.perf_counter()
    corpus = build_corpus(udhr_source(args.half), seed=args.seed)
    fams = {"spaced": 0, "unspaced": 0}
    for p in corpus.pairs:
        fams[p["family"]] += 1
    print(f"corpus ({args.half} half of the UDHR declarations, built in {time.perf_counter() - t0:.0f} s): "
          f"{len(corpus.docs)} documents, {len(corpus.pairs)} planted copies ({fams['spaced']} spaced, "
          f"{fams['unspaced']} unspaced), {len(corpus.unique)} unique documents, {len(corpus.hard_negatives)} hard negatives")
    print(GOAL)
    res: dict = {"half": args.half, "docs": len(corpus.docs), "pairs": len(corpus.pairs)}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        raw = tmp / "raw"
        raw.mkdir()
        with open(raw / "docs.jsonl", "w", encoding="utf-8") as f:
            for d in corpus.docs:
                f.write(json.dumps({"id": d["id"], "text": d["text"]}, ensure_ascii=False) + "\n")
        systems = {}
        for name, params in (("babelmill", {}), ("babelmill, old defaults", OLD_DEFAULTS)):
            rej, secs = run_babelmill(raw, tmp / name.replace(" ", "_").replace(",", ""), params)
            systems[name] = (score(corpus, rej), secs)
        dt = run_datatrove(raw / "docs.jsonl", "all")
        if dt:
            # datatrove names no kept document: a removed document with a planted partner counts
            # as that pair found, whichever of the two it removed
            partner = {}
            for p in corpus.pairs:
                partner[p["dup"]], partner[p["orig"]] = p["orig"], p["dup"]
            rej = [{"id": i, "reason": "dup_near", "kept_id": partner.get(i, "?" + i)} for i in dt["removed"]]
            sc = score(corpus, rej)
            systems["datatrove"] = (sc, datatrove_seconds(dt))
    for name, (sc, secs) in systems.items():
        s = summary(sc)
        res[name] = {**s, "seconds": round(secs, 2)}
        print(f"\n== {name} ({secs:.1f} s): recall up to 5% edited: spaced {s['recall_upto_5pct_spaced']}, unspaced "
              f"{s['recall_upto_5pct_unspaced']}; at 10%: spaced {s['recall_upto_10pct_spaced']}, unspaced "
              f"{s['recall_upto_10pct_unspaced']}; wrongly removed {sc['wrongly_removed']}/{sc['unique'] + sc['hard_negatives']} "
              f"({s['wrongly_removed_rate']:.4f}); hard negatives removed by boilerplate length: "
              + ", ".join(f"{r}: {a}/{b}" for r, (a, b) in sc["hard_by_boilerplate"].items()))
        print(table(sc))
        langs = {k.split("|", 1)[1]: v for k, v in sc["cells"].items() if k.startswith("lang|")}
        missed = sorted((k, f, n) for k, (f, n) in langs.items() if f < n)
        res[name]["languages_all_found_upto_10pct"] = [len(langs) - len(missed), len(langs)]
        print(f"  per language (declaration), copies up to 10% edited: all found in {len(langs) - len(missed)} of "
              f"{len(langs)}; " + ("missed in: " + ", ".join(f"{k} {f}/{n}" for k, f, n in missed[:25])
                                   + (f" (+{len(missed) - 25} more)" if len(missed) > 25 else "") if missed else "none missed"))
    b = res.get("babelmill", {})
    res["headline"] = (f"report half: recall up to 5% edited {b.get('recall_upto_5pct_spaced')} spaced / "
                       f"{b.get('recall_upto_5pct_unspaced')} unspaced, wrongly removed {b.get('wrongly_removed_rate')}"
                       + (f"; datatrove {res['datatrove']['recall_upto_5pct_spaced']} / "
                          f"{res['datatrove']['recall_upto_5pct_unspaced']}" if "datatrove" in res else ""))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
