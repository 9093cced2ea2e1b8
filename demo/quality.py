"""Demo quality models, trained in seconds before curation so that the curate step can score
its documents with them (score-only; the data card shows the scores):

* a fastText quality classifier per target language (`babelmill quality-model train`):
  positives are runs of 2-3 consecutive UDHR paragraphs of articles the demo corpus does not
  contain (configs/demo/udhr.yaml `heldout_articles`, minus the tokenizer's parallel set
  28-30); negatives are web junk generated from the same paragraphs' words — the demo corpus
  has no junk of its own (its kinds are originals, planted duplicates and other languages).
  Four kinds, one after the other: navigation boilerplate, keyword spam, word salad (the
  paragraphs' units shuffled) and price lists. Units are words, or characters for languages
  the registry marks `space_delimited: false`;
* a KenLM 3-gram per target language (`babelmill quality-model train-lm`, the pure-Python
  trainer) over the same paragraphs, one sentence per paragraph.

Both are read back through the pipeline's readers from JSONL files written here. Everything is
seeded; a rerun with the same inputs and parameters reuses the models (`_key.json`).

    python -m demo.quality [OUT]      (default runs/demo/quality_models, what
                                                 configs/demo.yaml scores with)
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

from babelmill.pipeline.io.writers import atomic_write_bytes, atomic_write_json

FORMAT_VERSION = 1
PARALLEL_ARTICLES = (28, 29, 30)  # the tokenizer's evaluation set (demo.corpus)
#: small models for the demo: ~0.7 MB per language (bucket x dim x 4 bytes)
CLASSIFIER_ARGS = {"epoch": 50, "lr": 0.5, "dim": 16, "word_ngrams": 3, "bucket": 10_000, "holdout": 0.2, "seed": 0}
LM_ORDER = 3


def _units(text: str, spaced: bool) -> list[str]:
    return text.split() if spaced else [c for c in text if not c.isspace()]


def _join(units: list[str], spaced: bool) -> str:
    return (" " if spaced else "").join(units)


def junk_document(kind: str, paras: list[str], spaced: bool, rng: random.Random) -> str:
    """One generated low-quality document of `kind` from a language's paragraphs."""
    units = [u for p in paras for u in _units(p, spaced)]
    if not spaced:  # "words" of 2-4 characters
        words = ["".join(units[i:i + rng.randint(2, 4)]) for i in range(0, len(units), 3)]
    else:
        words = [w.strip(".,;:()«»\"'") for w in units]
    words = [w for w in words if w] or ["x"]
    if kind == "boilerplate":
        lines = [" | ".join(rng.sample(words, min(len(words), rng.randint(4, 7)))) for _ in range(rng.randint(5, 9))]
        lines.append(f"© {rng.randint(2003, 2024)} udhr.demo.invalid · {rng.choice(words)} · {rng.choice(words)}")
        return "\n".join(lines)
    if kind == "spam":
        few = rng.sample(words, min(len(words), 3))
        return "\n".join(_join([rng.choice(few) for _ in range(rng.randint(8, 14))], spaced) + " !!!"
                         for _ in range(rng.randint(4, 8)))
    if kind == "salad":
        shuffled = units[:]
        rng.shuffle(shuffled)
        return _join(shuffled, spaced)
    if kind == "prices":
        return "\n".join(f"{rng.choice(words)} {rng.randint(1, 999)}.{rng.randint(0, 99):02d} € -{rng.randint(5, 70)}%"
                         for _ in range(rng.randint(8, 16)))
    raise ValueError(f"unknown junk kind {kind!r}")


JUNK_KINDS = ("boilerplate", "spam", "salad", "prices")


def training_sets(out: Path, seed: int = 0, cache_dir: Path | str = ".cache/udhr", config: Path | str | None = None,
                  declaration_dir: Path | str | None = None) -> dict:
    """Write out/train/{positive,negative,lm}.jsonl; return what was written."""
    from babelmill.languages import load_registry
    from demo.udhr import load_config, load_languages, udhr_paragraphs

    cfg = load_config(config)
    articles = sorted(int(a) for a in cfg["corpus"]["heldout_articles"] if int(a) not in PARALLEL_ARTICLES)
    langs = load_languages(cache_dir, config, include_distractors=False, declaration_dir=declaration_dir)
    reg = load_registry()
    pos, neg, lm = [], [], []
    for code in sorted(langs):
        spaced = code not in reg or reg.get(code).space_delimited
        rng = random.Random(f"babelmill-demo-quality/{seed}/{code}")
        paras = udhr_paragraphs(langs[code], articles, preamble=False)
        lm += [{"text": p, "lang": code} for p in paras]
        for i in range(max(1, len(paras) - 1)):  # sliding windows of 2-3 paragraphs
            chunk = paras[i:i + 2 + (i % 2)]
            if not chunk:
                continue
            pos.append({"text": "\n\n".join(chunk), "lang": code, "kind": "udhr"})
            kind = JUNK_KINDS[i % len(JUNK_KINDS)]
            neg.append({"text": junk_document(kind, chunk, spaced, rng), "lang": code, "kind": kind})
    train = out / "train"
    for name, rows in (("positive", pos), ("negative", neg), ("lm", lm)):
        atomic_write_bytes(train / f"{name}.jsonl",
                           "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8"))
    return {"articles": articles, "languages": len(langs), "positive": len(pos), "negative": len(neg),
            "lm_paragraphs": len(lm)}


def build_quality_models(out: Path | str, seed: int = 0, cache_dir: Path | str = ".cache/udhr",
                         config: Path | str | None = None, declaration_dir: Path | str | None = None) -> dict:
    """Train (or reuse) out/classifier/<lang>.bin and out/kenlm/<lang>.arpa; return a summary
    with each classifier's held-out metrics."""
    import time

    from babelmill.pipeline.quality_models.classifier import TrainParams
    from babelmill.pipeline.quality_models.cli import train_classifiers, train_lms

    out = Path(out)
    t0 = time.time()
    sets = training_sets(out, seed, cache_dir, config, declaration_dir)
    train = out / "train"
    digest = hashlib.sha256()
    for name in ("positive", "negative", "lm"):
        digest.update((train / f"{name}.jsonl").read_bytes())
    key = {"format": FORMAT_VERSION, "seed": seed, "classifier": CLASSIFIER_ARGS, "lm_order": LM_ORDER,
           "data": digest.hexdigest()[:16]}
    key_path = out / "_key.json"
    if key_path.exists():
        old = json.loads(key_path.read_text())
        if old.get("key") == key and (out / "classifier").is_dir() and (out / "kenlm").is_dir():
            return {**old["summary"], "reused": True}
    params = TrainParams(max_chars=10_000, **CLASSIFIER_ARGS)
    clf = train_classifiers([str(train / "positive.jsonl")], [str(train / "negative.jsonl")], out / "classifier",
                            params=params)
    lms = train_lms([str(train / "lm.jsonl")], out / "kenlm", order=LM_ORDER)
    held = {k: v["held_out"] for k, v in clf.items() if "held_out" in v}
    summary = {**sets, "classifiers": len(held), "kenlm_models": sum("skipped" not in v for v in lms.values()),
               "held_out": held, "seconds": round(time.time() - t0, 1),
               "classifier_dir": str(out / "classifier"), "kenlm_dir": str(out / "kenlm")}
    atomic_write_json(key_path, {"key": key, "summary": summary})
    return {**summary, "reused": False}


def main(argv: list[str] | None = None) -> int:
    """`python -m demo.quality [OUT]`: the models configs/demo.yaml scores with."""
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", nargs="?", default="runs/demo/quality_models")
    args = ap.parse_args(argv)
    s = build_quality_models(args.out)
    print(f"{'reused' if s['reused'] else 'trained'} {s['classifiers']} classifiers and {s['kenlm_models']} KenLM "
          f"models in {args.out}")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
