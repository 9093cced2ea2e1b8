"""The demo's contamination audit: three tiny megatron-core models trained on the demo corpus —
one clean, one with the English benchmark items injected, one with their French translation
injected — audited with the choice-swap test and the n-gram overlap scan.

The benchmark is the project's own UDHR quiz (babelmill/data/benchmarks/udhr_mc), restricted
to the articles the demo corpus holds out (configs/demo/udhr.yaml `heldout_articles`), so the
clean model has never seen it; the clean corpus is also decontaminated with the n-gram index
(the same index the overlap audit uses), which proves the point rather than assuming it.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from babelmill.paths import data_file

BENCHMARK = data_file("benchmarks", "udhr_mc")
AUDITED, TRANSLATION = "en", "fr"


def _write_if_changed(table: pa.Table, path: Path) -> None:
    """Leave an identical file untouched: its mtime is part of the preprocess fingerprint, so
    rewriting it would make a rerun re-tokenize and retrain."""
    import io

    buf = io.BytesIO()
    pq.write_table(table, buf)
    data = buf.getvalue()
    if path.exists() and path.read_bytes() == data:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def _digest(folder: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    for f in sorted(folder.glob("*.jsonl")):
        h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()[:16]


def heldout_benchmark(heldout: set[int], out: Path, langs=(AUDITED, TRANSLATION)) -> Path:
    """The UDHR quiz items about held-out articles, per language, as <out>/<lang>.jsonl."""
    out.mkdir(parents=True, exist_ok=True)
    for lang in langs:
        rows = [json.loads(line) for line in (BENCHMARK / f"{lang}.jsonl").read_text(encoding="utf-8").splitlines()]
        keep = [r for r in rows if int(re.sub(r"\D", "", r.get("subject", "")) or -1) in heldout]
        (out / f"{lang}.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in keep),
                                           encoding="utf-8")
    return out


def _injected(bench_dir: Path, lang: str, copies: int, seed: int = 0) -> list[str]:
    from babelmill.contamination.benchmarks.loaders import load_benchmark
    from testing.contamination_items import injected_docs

    items = load_benchmark(bench_dir / f"{lang}.jsonl").items
    return injected_docs(items, lang, epochs=copies, seed=seed)


def build_corpora(curated_output: Path, bench_dir: Path, out: Path, copies: int = 20) -> dict:
    """clean (decontaminated kept corpus), contaminated_en (+ English items), contaminated_fr
    (+ French items): one Parquet file each under out/<name>/. Returns counts."""
    from babelmill.contamination.benchmarks.loaders import load_benchmarks
    from babelmill.contamination.ngram import build_index, scan_record_batch

    kept = pq.read_table(curated_output, columns=["id", "text", "lang"])
    index = None
    for b in load_benchmarks([bench_dir]):
        index = build_index(b.items, b.name, None, index)
    hits = scan_record_batch(kept.combine_chunks().to_batches()[0], index).column("contam_ngrams").to_numpy()
    clean = kept.filter(pa.array(hits == 0))
    info = {"kept_docs": kept.num_rows, "decontaminated_away": int((hits > 0).sum())}
    for name, lang in (("clean", None), (f"contaminated_{AUDITED}", AUDITED), (f"contaminated_{TRANSLATION}", TRANSLATION)):
        t = clean
        if lang:
            docs = _injected(bench_dir, lang, copies)
            extra = pa.table({"id": [f"injected-{lang}-{i}" for i in range(len(docs))], "text": docs,
                              "lang": [lang] * len(docs)}).cast(clean.schema)
            t = pa.concat_tables([clean, extra])
            t = t.take(pa.array(random.Random(0).sample(range(t.num_rows), t.num_rows)))
            info[f"{name}_injected_docs"] = len(docs)
        _write_if_changed(t, out / name / "part-0.parquet")
    return info


def train_model(corpus_dir: Path, tokenizer_json: Path, work: Path, train_iters: int) -> Path:
    """Preprocess + train one tiny model (resumes/reuses a finished run); its checkpoint dir."""
    from babelmill.pretrain.data.preprocess import preprocess
    from demo.pretrain import TINY, finished, fresh_data_for, fresh_run_for, run_train

    fresh_data_for(str(tokenizer_json), work / "data")
    manifest = preprocess([str(corpus_dir)], str(tokenizer_json), work / "data", workers=1)
    fresh_run_for(manifest, work / "run")
    if not finished(work / "run", train_iters):
        run_train(TINY, work / "data", work / "run", ["--train-iters", str(train_iters)])
    return work / "run"


def contamination_demo(curated_output: Path, tokenizer_json: Path, heldout: set[int], out: Path,
                       train_iters: int = 800) -> dict:
    from babelmill.contamination.audit import run_audit
    from babelmill.contamination.benchmarks.loaders import load_benchmark
    from babelmill.contamination.ngram import build_index, scan_corpus

    bench = heldout_benchmark(heldout, out / "benchmark")
    info = build_corpora(curated_output, bench, out / "corpora")
    en_index = build_index(load_benchmark(bench / f"{AUDITED}.jsonl").items, "udhr_mc")
    summary = {"corpora": info, "models": {}}
    for name in ("clean", f"contaminated_{AUDITED}", f"contaminated_{TRANSLATION}"):
        print(f"  {name}: tokenize, train the tiny GPT for {train_iters} steps (reused when done), audit ...", flush=True)
        ckpt = train_model(out / "corpora" / name, tokenizer_json, out / "models" / name, train_iters)
        key = f"{(ckpt / 'latest').read_text().strip()}|{(ckpt / 'data_key.txt').read_text()}|{_digest(bench)}"
        cached = out / f"{name}.json"
        res = json.loads(cached.read_text(encoding="utf-8")) if cached.exists() else {}
        if res.get("demo_key") != key:  # audit again only when the model or benchmark changed
            res = run_audit(str(ckpt), [str(bench)], json_out=cached, html_out=out / f"{name}.html")
            res["demo_key"] = key
            cached.write_text(json.dumps(res, indent=2, ensure_ascii=False), encoding="utf-8")
        overlap = scan_corpus([out / "corpora" / name], en_index)  # the auditor's English benchmark only
        summary["models"][name] = {
            "verdict": res["verdict"],
            "by_language": {lang: {k: r[k] for k in ("n", "acc_original", "acc_generalized", "delta", "ci_low",
                                                      "ci_high", "verdict")}
                            for lang, r in next(iter(res["benchmarks"].values()))["languages"].items()},
            "ngram_overlap_en_items": next(iter(overlap["benchmarks"].values()))[AUDITED]["items_overlapping"],
            "report": str(out / f"{name}.html"),
        }
    (out / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8")
    return summary
