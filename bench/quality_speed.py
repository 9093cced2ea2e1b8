"""Quality-filter throughput on one core: babelmill's `quality` stage (all filters, every
language, per-language thresholds) vs datatrove's GopherQualityFilter + GopherRepetitionFilter
(+ C4QualityFilter + FineWebQualityFilter) on the same UDHR-based documents (~2 KB each).

datatrove's filters tokenize words with spaCy for English (`spacy.blank("en")`, no model
download) and need other packages for most other languages, so the like-for-like comparison is
on the English documents; datatrove with its English tokenizer is also timed on the whole
multilingual set (what running it "as is" on a multilingual corpus costs). Every datatrove
filter is run on every document (a document that one filter drops would not reach the next in a
datatrove pipeline, but UDHR documents mostly pass, and our stage measures every statistic of
every document too).

    python -m bench.quality_speed [--docs N] [--json OUT]      (N scales with BENCH_SCALE)
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pyarrow as pa  # noqa: E402

from babelmill.pipeline.stages.quality import QualityStage  # noqa: E402
from bench.corpora import udhr_documents  # noqa: E402
from bench.timing import best_of  # noqa: E402


def to_batches(docs: list[tuple[str, str]], batch_size: int) -> list[pa.RecordBatch]:
    out = []
    for s in range(0, len(docs), batch_size):
        part = docs[s : s + batch_size]
        out.append(pa.RecordBatch.from_pydict({
            "id": [str(s + i) for i in range(len(part))],
            "text": pa.array([t for t, _ in part], pa.large_string()),
            "lang": [lang for _, lang in part],
        }))
    return out


def run_stage(stage: QualityStage, batches: list[pa.RecordBatch]) -> Counter:
    reasons: Counter = Counter()
    for b in batches:
        out = stage(b)
        reasons.update(out.column("drop_reason").to_pylist())
    return reasons


def datatrove_filters(names: tuple[str, ...]):
    """Instantiated datatrove filters that run offline here, and notes about the others."""
    try:
        from datatrove.data import Document
        from datatrove.pipeline import filters as F
    except Exception as e:  # noqa: BLE001
        return None, [], [f"datatrove not importable: {e}"]
    probe = Document(text="The quick brown fox jumps over the lazy dog. " * 20, id="probe")
    ok, notes = [], []
    for name in names:
        try:
            f = getattr(F, name)()
            f.filter(probe)
            ok.append((name, f))
        except Exception as e:  # noqa: BLE001
            notes.append(f"{name}: cannot run offline ({type(e).__name__}: {str(e)[:120]})")
    return Document, ok, notes


def time_datatrove(Document, filters, texts: list[str]) -> tuple[float, int]:
    """Seconds to run every filter on every document, and how many documents all filters keep."""
    docs = [Document(text=t, id=str(i)) for i, t in enumerate(texts)]
    kept = [True] * len(docs)

    def go():
        for _, f in filters:
            for i, d in enumerate(docs):
                r = f.filter(d)
                if r is False or (isinstance(r, tuple) and r[0] is False):
                    kept[i] = False

    return best_of(go, repeat=1), sum(kept)


def main() -> int:
    scale = float(os.environ.get("BENCH_SCALE", "1"))
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--docs", type=int, default=int(8000 * scale), help="multilingual documents")
    ap.add_argument("--en-docs", type=int, default=int(600 * scale), help="English documents (datatrove comparison)")
    ap.add_argument("--dt-docs", type=int, default=int(600 * scale), help="multilingual documents for datatrove")
    ap.add_argument("--batch-size", type=int, default=1000)
    ap.add_argument("--json")
    args = ap.parse_args()

    t0 = time.perf_counter()
    # 7-16 paragraphs: ~2 KB documents (UDHR paragraphs average ~170 characters)
    docs = udhr_documents(args.docs, seed=0, min_paras=7, max_paras=16)
    pool = udhr_documents(max(args.en_docs * 60, 2000), seed=1, min_paras=7, max_paras=16)
    en = [d for d in pool if d[1] == "en"][: args.en_docs]
    n, n_en = len(docs), len(en)
    avg = sum(len(t) for t, _ in docs) / n
    avg_en = sum(len(t) for t, _ in en) / max(n_en, 1)

    stage = QualityStage()
    batches = to_batches(docs, args.batch_size)
    en_batches = to_batches(en, args.batch_size)
    reasons = run_stage(stage, batches)  # warm-up: per-language thresholds, stop-word lists
    run_stage(stage, en_batches)
    ours = best_of(lambda: run_stage(stage, batches))
    ours_en = best_of(lambda: run_stage(stage, en_batches))

    Document, dt, notes = datatrove_filters(
        ("GopherQualityFilter", "GopherRepetitionFilter", "C4QualityFilter", "FineWebQualityFilter"))
    res: dict = {
        "docs": n,
        "avg_chars": round(avg, 1),
        "languages": len({lang for _, lang in docs}),
        "stage_docs_per_s": round(n / ours, 1),
        "stage_mb_per_s": round(sum(len(t.encode()) for t, _ in docs) / ours / 1e6, 2),
        "en_docs": n_en,
        "en_avg_chars": round(avg_en, 1),
        "stage_en_docs_per_s": round(n_en / ours_en, 1),
        "kept_fraction": round(reasons.get(None, 0) / n, 3),
        "top_reasons": dict(Counter({k: v for k, v in reasons.items() if k}).most_common(6)),
        "target_docs_per_s": 2000,
        "datatrove_filters": [name for name, _ in dt],
        "datatrove_notes": notes,
    }
    gopher = [x for x in dt if x[0].startswith("Gopher")]
    if Document is not None and len(gopher) == 2 and n_en:
        g_secs, g_kept = time_datatrove(Document, gopher, [t for t, _ in en])
        res["datatrove_gopher_en_docs_per_s"] = round(n_en / g_secs, 1)
        res["datatrove_gopher_en_kept_fraction"] = round(g_kept / n_en, 3)
        res["stage_en_kept_fraction"] = round(run_stage(stage, en_batches).get(None, 0) / n_en, 3)
        res["ratio_vs_gopher_en"] = round(g_secs / ours_en, 2)
    if Document is not None and dt and n_en:
        a_secs, _ = time_datatrove(Document, dt, [t for t, _ in en])
        res["datatrove_all_en_docs_per_s"] = round(n_en / a_secs, 1)
        res["ratio_vs_all_en"] = round(a_secs / ours_en, 2)
        mt = [t for t, _ in docs[: args.dt_docs]]
        m_secs, _ = time_datatrove(Document, dt, mt)
        res["datatrove_all_multilingual_docs_per_s"] = round(len(mt) / m_secs, 1)
        res["ratio_vs_all_multilingual"] = round((n / ours) / (len(mt) / m_secs), 2)
    head = (f"quality stage {res['stage_docs_per_s']:.0f} docs/s/core on {n} ~{avg / 1000:.1f} KB docs in "
            f"{res['languages']} languages (target >= 2000)")
    if "ratio_vs_gopher_en" in res:
        head += (f"; English: {res['stage_en_docs_per_s']:.0f} vs datatrove Gopher Q+R "
                 f"{res['datatrove_gopher_en_docs_per_s']:.0f} docs/s = {res['ratio_vs_gopher_en']:.1f}x")
    res["headline"] = head
    res["seconds"] = round(time.perf_counter() - t0, 1)

    print(f"documents: {n} in {res['languages']} languages (avg {avg:.0f} chars), one core, batches of {args.batch_size}")
    print(f"babelmill quality stage (all filters)      : {res['stage_docs_per_s']:>9.0f} docs/s"
          f"  ({res['stage_mb_per_s']} MB/s; target >= 2000 docs/s)")
    print(f"  kept {res['kept_fraction']:.1%}; top reasons {res['top_reasons']}")
    print(f"English subset: {n_en} documents (avg {avg_en:.0f} chars)")
    print(f"babelmill quality stage, English           : {res['stage_en_docs_per_s']:>9.0f} docs/s")
    if "datatrove_gopher_en_docs_per_s" in res:
        print(f"datatrove Gopher quality + repetition      : {res['datatrove_gopher_en_docs_per_s']:>9.0f} docs/s"
              f"  -> babelmill {res['ratio_vs_gopher_en']:.1f}x")
        print(f"  English documents kept: datatrove Gopher Q+R {res['datatrove_gopher_en_kept_fraction']:.1%}, "
              f"babelmill (all filters) {res['stage_en_kept_fraction']:.1%}")
    if "datatrove_all_en_docs_per_s" in res:
        print(f"datatrove {'+'.join(x[0].replace('Filter', '') for x in dt):<33s}: "
              f"{res['datatrove_all_en_docs_per_s']:>9.0f} docs/s  -> babelmill {res['ratio_vs_all_en']:.1f}x")
        print(f"datatrove all filters, multilingual docs   : {res['datatrove_all_multilingual_docs_per_s']:>9.0f} docs/s"
              f"  -> babelmill {res['ratio_vs_all_multilingual']:.1f}x (datatrove with its English tokenizer)")
    for note in notes:
        print(f"datatrove: {note}")
    print(f"headline: {head}")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
